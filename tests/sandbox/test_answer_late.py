"""``answer_late(..., when=...)``: only the calls it names are answered late."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackClientError

from signoff.bot.sandbox import SlackSandbox


def test_answer_late_when_holds_only_the_calls_it_accepts(slack_sandbox: SlackSandbox) -> None:
    slack_sandbox.answer_late(
        "chat.postMessage", 60, when=lambda args: "slow" in str(args.get("text"))
    )
    client = slack_sandbox.client(timeout=2)
    assert client.chat_postMessage(channel="C0GENERAL", text="quick")["ok"]
    with pytest.raises((SlackClientError, TimeoutError, OSError)):
        client.chat_postMessage(channel="C0GENERAL", text="slow")  # the client gives up
    # Taken effect all the same, and the next call is answered as usual.
    assert client.chat_postMessage(channel="C0GENERAL", text="slow again")["ok"]
    texts = [m.text for m in slack_sandbox.channel("C0GENERAL").messages]
    assert texts == ["quick", "slow", "slow again"]
