"""``answer_late(..., when=...)``: only the calls it names are answered late; with
``until=``, they are answered once it is set."""

from __future__ import annotations

import threading

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


def test_answer_late_until_answers_as_soon_as_it_is_released(slack_sandbox: SlackSandbox) -> None:
    released = threading.Event()
    slack_sandbox.answer_late("chat.postMessage", 60, until=released)
    client = slack_sandbox.client(timeout=30)
    answered: list[bool] = []

    def post() -> None:
        answered.append(client.chat_postMessage(channel="C0GENERAL", text="held")["ok"])

    poster = threading.Thread(target=post)
    poster.start()
    slack_sandbox.wait_for(lambda ws: ws.channel("C0GENERAL").messages, timeout=10)
    # Taken effect, and held until it is released: answered then, long before the 60 s.
    assert poster.is_alive() and answered == []
    released.set()
    poster.join(10)
    assert not poster.is_alive() and answered == [True]
    assert [m.text for m in slack_sandbox.channel("C0GENERAL").messages] == ["held"]
