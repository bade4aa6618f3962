"""``/runs`` over real HTTP: list, filter, show, start (with and without a form), cancel, help.

Also the configuration the command depends on: the manifest's slash commands and request
URLs match the app, and settings errors name the variable that is wrong.
"""

from __future__ import annotations

import html
import json
import shlex
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
import yaml
from sqlalchemy import text as sql

from signoff.bot.config import BotSettings
from signoff.bot.errors import SettingsError
from signoff.bot.slack import ids
from signoff.bot.slack.sealing import Sealer
from signoff.bot.testing import SIGNING_SECRET, RunningBot, running_bot
from signoff.engine import Engine, RunState, flow, get_run_logger, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


class Go(RunInput):
    decision: Literal["approve", "reject"]
    note: str = ""


@flow(name="rc-deploy")
def rc_deploy(service: str, version: str = "latest") -> str:
    answer = pause_flow_run(wait_for_input=Go, timeout=600)
    get_run_logger().info("deploying %s %s: %s", service, version, answer.decision)
    return f"{service}@{version} {answer.decision}"


@flow(name="rc-quick")
def rc_quick(n: int = 1) -> int:
    return n * 2


@flow(name="rc-tags")
def rc_tags(tags: list[str], name: str = "", limits: dict[str, int] | None = None) -> int:
    return len(tags)


@flow(name="rc-report")
def rc_report(region: str, before: str = "today") -> str:
    return f"{region} before {before}"


@flow(name="rc-broken")
def rc_broken() -> None:
    raise RuntimeError("boom")


@flow(name="rc-<odd> & *bold*")
def rc_odd() -> None:
    return None


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def runs(bot: RunningBot, user: str, text: str = "", channel: str | None = None):
    """Type ``/runs text``; check it is acked within 3 s; return the ephemeral answer."""
    before = len(bot.slack.ephemeral(user))
    started = time.monotonic()
    reply = bot.driver.slash_command(user, "/runs", text, channel=channel)
    assert reply.status == 200, reply.text
    assert time.monotonic() - started < 3.0, "Slack shows a timeout after 3 s"
    return bot.slack.wait_for(lambda ws: ws.ephemeral(user)[before:][-1], timeout=10)


def shown(message) -> str:
    return message.text + json.dumps(message.blocks)


def buttons(message) -> list[dict]:
    return [e for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]


def finished(engine: Engine, run_id: str):
    return wait_for(lambda: (r := engine.get_run(run_id)).state.is_final and r, timeout=15)


def test_listing_waiting_runs_and_answering_from_the_list(engine: Engine, bot: RunningBot) -> None:
    waiting = engine.submit("rc-deploy", {"service": "api"}, started_by="U0CAROL")
    done = engine.submit("rc-quick", {"n": 2})
    bot.root_message(waiting.id)
    finished(engine, done.id)

    listing = runs(bot, "alice")
    assert "Runs waiting for input" in listing.text
    assert waiting.id[:8] in shown(listing) and done.id[:8] not in shown(listing)
    assert [b["text"]["text"] for b in buttons(listing)] == ["Provide input", "Show", "Cancel"]
    assert buttons(listing)[0]["value"] == waiting.id  # just the run id, no pause key

    bot.driver.click("alice", listing, action_id=ids.PROVIDE_INPUT, value=waiting.id)
    form = bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"))
    assert form.callback_id == ids.INPUT_VIEW
    assert bot.driver.submit("alice", {"decision": "approve"}).status == 200

    run = finished(engine, waiting.id)
    assert (run.state, run.result) == (RunState.COMPLETED, "'api@latest approve'")
    assert engine.detail(run.id).pauses[0].responder == "U0ALICE"


def test_filters_by_state_and_by_flow(engine: Engine, bot: RunningBot) -> None:
    quick = engine.submit("rc-quick", {"n": 1})
    broken = engine.submit("rc-broken", {})
    waiting = engine.submit("rc-deploy", {"service": "web"})
    finished(engine, quick.id)
    finished(engine, broken.id)
    bot.root_message(waiting.id)

    def listed(text: str) -> set[str]:
        answer = shown(runs(bot, "bob", text))
        return {r.id for r in (quick, broken, waiting) if r.id[:8] in answer}

    assert listed("all") == {quick.id, broken.id, waiting.id}
    assert listed("completed") == {quick.id}
    assert listed("failed") == {broken.id}
    assert listed("running") == set()
    assert listed("rc-quick") == {quick.id}
    assert listed("") == {waiting.id}
    assert "No runs." in shown(runs(bot, "bob", "cancelled"))


def test_show_gives_states_inputs_with_who_and_the_log_tail(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("rc-deploy", {"service": "db", "version": "7"}, started_by="U0CAROL")
    prompt = bot.root_message(run.id)
    bot.driver.click("bob", prompt, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("U0BOB"))
    bot.driver.submit("bob", {"decision": "reject", "note": "not today"})
    finished(engine, run.id)

    text = runs(bot, "alice", f"show {run.id[:8]}").text
    assert "is *completed*" in text
    assert "Started by <@U0CAROL>" in text
    assert "scheduled" in text.lower() and "Paused" in text and "Completed" in text
    assert "*Input* `1` accepted by <@U0BOB>" in text and "not today" in text
    assert "Log tail" in text and "deploying db 7: reject" in text

    # The Show button of a listing answers the same, without replacing the list.
    listing = runs(bot, "alice", "all")
    before = len(bot.slack.ephemeral("alice"))
    bot.driver.click("alice", listing, action_id=ids.SHOW_RUN, value=run.id)
    detail = bot.slack.wait_for(lambda ws: ws.ephemeral("alice")[before:][-1], timeout=10)
    assert detail.text == text
    assert bot.slack.ephemeral("alice")[before - 1].text == listing.text  # still there


def test_show_writes_text_as_typed_and_typed_markup_as_text(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("rc-deploy", {"service": "Zoë Müller 🎉"})
    prompt = bot.root_message(run.id)
    bot.driver.click("bob", prompt, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("U0BOB"))
    bot.driver.submit("bob", {"decision": "approve", "note": "café ✅ <!channel> <@U0ALICE>"})
    finished(engine, run.id)

    text = runs(bot, "alice", f"show {run.id[:8]}").text
    # As the thread shows them: characters as typed, not as \u escapes ...
    assert '"service": "Zoë Müller 🎉"' in text and "\\u" not in text
    # ... and markup someone typed shown as text, so that nobody is notified by it.
    assert '"note": "café ✅ &lt;!channel&gt; &lt;@U0ALICE&gt;"' in text
    assert "<!channel>" not in text and "<@U0ALICE>" not in text


def test_start_with_parameters_posts_the_prompt_where_it_was_typed(
    engine: Engine, bot: RunningBot
) -> None:
    bot.slack.add_channel("C0DEPLOYS", "deploys")
    answer = runs(bot, "alice", "start rc-deploy service=api version=1.10", channel="C0DEPLOYS")
    assert answer.text.startswith("Started *rc-deploy* run")

    run = wait_for(lambda: engine.list_runs(flow_name="rc-deploy"), timeout=5)[0]
    # "1.10" is a string parameter: it stays "1.10", not the number 1.1.
    assert run.parameters == {"service": "api", "version": "1.10"}
    assert (run.started_by, run.tags) == ("U0ALICE", {"slack.channel": "C0DEPLOYS"})
    prompt = bot.root_message(run.id, "C0DEPLOYS")
    assert buttons(prompt)
    assert bot.slack.channel(bot.channel).messages == ()


def test_a_parameter_named_before_is_a_parameter_to_start_not_a_page_cursor(
    engine: Engine, bot: RunningBot
) -> None:
    """`before=` paged lists wherever it was typed, so `/runs start` dropped it: the run
    started with the flow's default, or a form asked for what was typed."""
    answer = runs(bot, "alice", "start rc-report before=2026-01-01 region=eu")
    assert answer.text.startswith("Started *rc-report* run")
    (run,) = wait_for(lambda: engine.list_runs(flow_name="rc-report"), timeout=5)
    assert run.parameters == {"before": "2026-01-01", "region": "eu"}


def test_start_reads_values_typed_as_json_and_quoted_words_as_before(
    engine: Engine, bot: RunningBot
) -> None:
    def started(text: str) -> dict[str, object]:
        """The parameters the run got (an unset optional one left out)."""
        answer = runs(bot, "alice", text)
        assert answer.text.startswith("Started *rc-tags* run"), answer.text
        parameters = engine.get_run(answer.text.split("`")[1]).parameters
        return {k: v for k, v in parameters.items() if v is not None}

    # A list, an object, or a string in double quotes, as JSON reads them: spaces inside
    # a list do not split it.
    typed = 'start rc-tags tags=["a b","c"] limits={"cpu": 2, "gpu": 0} name="two words"'
    assert started(typed) == {
        "tags": ["a b", "c"],
        "limits": {"cpu": 2, "gpu": 0},
        "name": "two words",
    }
    # Single quotes work as a shell's, as they always did, for text and for JSON alike.
    assert started("""start rc-tags tags='["x"]' name='two words'""") == {
        "tags": ["x"],
        "name": "two words",
    }
    # Slack (and the sandbox) sends &, < and > as &amp;, &lt; and &gt;: the flow gets
    # what was typed.
    assert started('start rc-tags tags=["<b> & c"] name="R&D"') == {
        "tags": ["<b> & c"],
        "name": "R&D",
    }
    # Text for a text parameter stays text, even when it looks like JSON.
    assert started('start rc-tags tags=[] name=["draft"]')["name"] == '["draft"]'


def test_the_word_payload_in_a_command_or_its_channel_is_just_text(
    engine: Engine, bot: RunningBot
) -> None:
    """Bolt reads any form body holding "payload" as an interactivity payload; a command
    reaches it as JSON, so the word is just part of the text."""
    bot.slack.add_channel("C0PAYLOADS", "payload-team")
    answer = runs(bot, "alice", "start rc-quick n=payload", channel="C0PAYLOADS")
    assert answer.text.startswith(":warning: invalid parameters for flow 'rc-quick': n: ")
    answer = runs(bot, "alice", "start rc-quick n=3", channel="C0PAYLOADS")
    assert answer.text.startswith("Started *rc-quick* run")
    assert runs(bot, "alice", "payload").text.startswith("Unknown command `payload`.")


def test_start_with_a_parameter_the_flow_does_not_take_names_it_and_opens_nothing(
    engine: Engine, bot: RunningBot
) -> None:
    for text in ("start rc-deploy version=2 lable=x", "start rc-deploy service=api lable=x"):
        answer = runs(bot, "carol", text)
        assert answer.text == (
            ":warning: Flow *rc-deploy* has no parameter `lable`; it takes `service`, `version`"
        )
    assert bot.slack.open_view("U0CAROL") is None
    assert engine.list_runs(flow_name="rc-deploy") == []


def test_start_without_a_required_parameter_opens_a_form(engine: Engine, bot: RunningBot) -> None:
    bot.driver.slash_command("carol", "/runs", "start rc-deploy version=2", channel="C0OPS")
    form = bot.slack.wait_for(lambda ws: ws.open_view("U0CAROL"))
    assert form.callback_id == ids.START_VIEW
    inputs = {b["block_id"]: b for b in form.blocks if b["type"] == "input"}
    assert set(inputs) == {"field:service", "field:version"}
    assert inputs["field:version"]["element"]["initial_value"] == "2"  # what was typed

    reply = bot.driver.submit("carol", {"service": "search"})
    assert reply.status == 200 and reply.response_action is None and not reply.problems
    run = wait_for(lambda: engine.list_runs(flow_name="rc-deploy"), timeout=5)[0]
    assert run.parameters == {"service": "search", "version": "2"}
    assert (run.started_by, run.tags) == ("U0CAROL", {"slack.channel": "C0OPS"})
    bot.root_message(run.id, "C0OPS")
    note = bot.slack.wait_for(lambda ws: ws.ephemeral("U0CAROL"))
    assert note[-1].text.startswith("Started *rc-deploy* run") and note[-1].channel == "C0OPS"


def test_a_start_form_whose_note_slack_refuses_still_closes_at_once(
    engine: Engine, bot: RunningBot
) -> None:
    bot.driver.slash_command("carol", "/runs", "start rc-deploy", channel="C0OPS")
    bot.slack.wait_for(lambda ws: ws.open_view("U0CAROL"))
    # The run starts, then Slack refuses the note saying so (the channel was archived).
    bot.slack.fail_next("chat.postEphemeral", status=200, error="is_archived")
    began = time.monotonic()
    reply = bot.driver.submit("carol", {"service": "search"})
    assert reply.status == 200 and reply.response_action is None and not reply.problems
    assert time.monotonic() - began < 2.5  # within Slack's 3 s: the modal closes
    run = wait_for(lambda: engine.list_runs(flow_name="rc-deploy"), timeout=5)[0]
    assert run.parameters == {"service": "search", "version": "latest"}
    bot.root_message(run.id, "C0OPS")


def test_a_start_form_for_a_flow_that_is_gone_says_so(engine: Engine, bot: RunningBot) -> None:
    # A form opened before a deploy removed the flow: answered with a notice, not a 500.
    bot.slack.workspace.open_modal(
        "U0ALICE",
        {
            "type": "modal",
            "callback_id": ids.START_VIEW,
            "title": {"type": "plain_text", "text": "Start"},
            "submit": {"type": "plain_text", "text": "Start"},
            "private_metadata": Sealer(SIGNING_SECRET).seal(
                {"flow": "no-such-flow", "channel": "C0GENERAL"}
            ),
            "blocks": [
                {
                    "type": "input",
                    "block_id": "field:x",
                    "label": {"type": "plain_text", "text": "x"},
                    "element": {"type": "plain_text_input", "action_id": "value"},
                }
            ],
        },
    )
    reply = bot.driver.submit("alice", {"x": "1"})
    assert reply.status == 200 and reply.response_action == "update" and not reply.problems
    assert "no-such-flow" in json.dumps(bot.slack.open_view("alice").blocks)
    assert engine.list_runs() == []


def test_cancel_by_command_and_by_button(engine: Engine, bot: RunningBot) -> None:
    first = engine.submit("rc-deploy", {"service": "a"})
    second = engine.submit("rc-deploy", {"service": "b"})
    root = bot.root_message(first.id)
    bot.root_message(second.id)

    answer = runs(bot, "alice", f"cancel {first.id}")
    assert answer.text.startswith("Cancelled *rc-deploy* run")
    assert finished(engine, first.id).state is RunState.CANCELLED
    final = bot.slack.wait_for(
        lambda ws: (m := ws.channel(bot.channel).message(root.ts)) and "cancelled" in m.text and m
    )
    assert not buttons(final) and "cancelled by <@U0ALICE>" in final.text

    listing = runs(bot, "bob")
    bot.driver.click("bob", listing, action_id=ids.CANCEL_RUN, value=second.id)
    assert finished(engine, second.id).state is RunState.CANCELLED
    assert "cancelled by U0BOB" in (engine.get_run(second.id).state_message or "")

    # Cancelling what already ended is refused with the reason.
    assert f"run {first.id} is already cancelled" in runs(bot, "alice", f"cancel {first.id}").text


def test_cancel_by_a_prefix_too_short_to_be_sure_of_is_refused(
    engine: Engine, bot: RunningBot
) -> None:
    """`/runs cancel 1` cancelled the only run whose id starts with 1: a typo acted."""
    run = engine.submit("rc-deploy", {"service": "a"})
    bot.root_message(run.id)
    for typed in (run.id[:1], run.id[:3]):
        assert runs(bot, "alice", f"cancel {typed}").text == (
            f":warning: `/runs cancel`: '{typed}' is too short to act on a run: give at least "
            "4 characters of its id (as runs are listed), so that a typo names no other run."
        )
    assert engine.get_run(run.id).state is RunState.PAUSED
    # reading takes any unique prefix, as before: it changes nothing
    assert run.id[:8] in runs(bot, "alice", f"show {run.id[:1]}").text
    # differs within the 8 characters a list shows (with "00" there, both showed more)
    other = run.id[:6] + ("ff" if run.id[6:8] != "ff" else "00") + "0" * 24
    engine.store.create_run(
        other, "rc-quick", None, b"", {}, RunState.RUNNING, owner=None, started_by=None
    )
    # a prefix of both names them, and cancels neither
    assert runs(bot, "alice", f"cancel {run.id[:4]}").text == (
        f":warning: more than one run id starts with '{run.id[:4]}' "
        f"({', '.join(sorted([run.id[:8], other[:8]]))}); give more of it"
    )
    assert engine.get_run(run.id).state is RunState.PAUSED
    assert runs(bot, "alice", f"cancel {run.id[:8]}").text.startswith("Cancelled *rc-deploy*")
    assert finished(engine, run.id).state is RunState.CANCELLED


def test_help_and_unknown_subcommands(engine: Engine, bot: RunningBot) -> None:
    help_text = runs(bot, "alice", "help").text
    for usage in ("`/runs show RUN`", "`/runs start FLOW [k=v ...]`", "`/runs cancel RUN`"):
        assert usage in help_text
    unknown = runs(bot, "alice", "frobnicate everything").text
    assert unknown.startswith("Unknown command `frobnicate everything`") and help_text in unknown
    # one word is most likely a flow's name mistyped: the flows are listed
    mistyped = runs(bot, "alice", "rc_deploy").text
    assert mistyped.startswith("Unknown command `rc_deploy`. No flow has that name; flows: ")
    assert "`rc-deploy`" in mistyped.split("\n", 1)[0] and help_text in mistyped
    assert "`rc-&lt;odd&gt; &amp; *bold*`" in mistyped  # as written, as /runs start lists it
    # A command word mistyped is named; so is a flow's name mistyped after start.
    strat = runs(bot, "alice", "strat rc-deploy").text
    assert strat.startswith(
        "Unknown command `strat rc-deploy`. Did you mean `/runs start rc-deploy`?"
    )
    refnd = runs(bot, "alice", "start rc-deplyo").text
    assert refnd.startswith(":warning: No flow named `rc-deplyo`. Did you mean `rc-deploy`")
    # (or another flow with a close name, which other tests in the process may register)
    assert "needs a run id" in runs(bot, "alice", "show").text
    # It said "needs a run id" to someone who gave two.
    assert runs(bot, "alice", "cancel 1a 1b").text.startswith(
        "`/runs cancel` takes one run id, not 2.\n"
    )
    assert "no run with id 'nope'" in runs(bot, "alice", "show nope").text
    assert "No flow named `nope`" in runs(bot, "alice", "start nope").text
    # `/runs start` alone said only that it needs a flow, not which there are.
    which = runs(bot, "alice", "start").text
    assert which.startswith("`/runs start` needs a flow; flows: ") and "`rc-deploy`" in which
    # Flow names and the typed name read as written, not as Slack markup.
    known = runs(bot, "alice", "start <x>").text
    assert "No flow named `&lt;x&gt;`" in known
    assert "`rc-&lt;odd&gt; &amp; *bold*`" in known and "`rc-deploy`" in known
    assert "Could not read that" in runs(bot, "alice", 'start "unclosed').text
    twice = runs(bot, "alice", "start rc-deploy service=api version=1 version=2").text
    assert twice == ":warning: `version` is given twice; give each parameter once"
    # A value without a name read "has no parameter ``", an empty name in its code span.
    nameless = runs(bot, "alice", "start rc-deploy service=api =3").text
    assert nameless == (
        ":warning: `=3` is not `name=value`: type `/runs start rc-deploy name=value ...`;"
        " *rc-deploy* takes `service`, `version`"
    )
    assert engine.list_runs(flow_name="rc-deploy") == []  # nothing was started


# -- configuration ------------------------------------------------------------------------


def test_words_after_a_filter_are_named_not_suggested_back(engine: Engine, bot: RunningBot) -> None:
    """`/runs all foo` answered "Did you mean `/runs all foo`?", the command that had just
    failed; `/runs all before=RUN x` suggested `/runs all x`, which dropped the page."""
    help_text = runs(bot, "alice", "help").text
    for typed, verb, extra in (
        ("all foo", "all", "foo"),
        ("waiting 2", "waiting", "2"),
        ("all before=6155 x", "all", "x"),
    ):
        assert runs(bot, "alice", typed).text == (
            f"`/runs {verb}` takes no more words, not `{extra}` (only `before=RUN`, for the next "
            "page). To list a flow's runs: `/runs FLOW`, or `/runs flow FLOW` for a flow named "
            f"like a word here.\n{help_text}"
        )
    # A filter mistyped is still named, with the page that was typed ...
    assert runs(bot, "alice", "al before=6155").text.startswith(
        "Unknown command `al before=6155`. Did you mean `/runs all before=6155`?\n"
    )
    # ... but never with words that filter would refuse again.
    mistyped = runs(bot, "alice", "al foo").text
    assert mistyped.startswith("Unknown command `al foo`.") and "Did you mean" not in mistyped


def test_manifest_commands_and_request_urls_match_the_app(engine: Engine, bot: RunningBot) -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    commands = manifest["features"]["slash_commands"]
    declared = {name: value for name, value in vars(ids).items() if name.endswith("_COMMAND")}
    assert sorted(c["command"] for c in commands) == sorted(declared.values())

    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    paths = {c["url"].split("/", 3)[3] for c in commands} | {
        interactivity["request_url"].split("/", 3)[3]
    }
    assert paths == {"slack/events"}
    # The app served at that path answers every declared command.
    driver = bot.slack.driver(f"{bot.server.url}/{paths.pop()}", "sandbox-signing-secret")
    for command in commands:
        assert driver.slash_command("alice", command["command"], "help").status == 200
    # A command that is not the app's is answered (never a 404 after a wait) and named.
    other = driver.slash_command("alice", "/not-ours", "")
    assert other.status == 200 and b"no command /not-ours" in other.body


def test_settings_errors_name_each_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as missing:
        BotSettings.load()
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SIGNOFF_CHANNEL"):
        assert f"{name} is not set" in str(missing.value)

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxp-user-token-secret")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cr3t")
    monkeypatch.setenv("SIGNOFF_CHANNEL", "C0GENERAL")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-not-an-app-token")
    monkeypatch.setenv("SLACK_API_URL", "slack.example.com/api")
    with pytest.raises(SettingsError) as malformed:
        BotSettings.load()
    message = str(malformed.value)
    assert "SLACK_BOT_TOKEN must be a bot token starting with xoxb-" in message
    assert "SLACK_APP_TOKEN must be an app-level token starting with xapp-" in message
    assert "SLACK_API_URL must be an http(s) URL" in message
    assert "xoxp-user-token-secret" not in message  # values (tokens) are never echoed
    assert "xoxb-not-an-app-token" not in message

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.delenv("SLACK_APP_TOKEN")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    settings = BotSettings.load()
    assert (settings.bot_token, settings.api_url) == ("xoxb-1", "http://127.0.0.1:9/api/")


def test_lists_page_with_a_more_button_and_before(engine: Engine, bot: RunningBot) -> None:
    made = [
        engine.store.create_run(
            uuid.uuid4().hex,
            "rc-quick",
            None,
            b"",
            {"n": i},
            RunState.COMPLETED,
            owner=None,
            started_by="U0CAROL",
        )
        for i in range(18)
    ]
    newest_first = sorted(made, key=lambda r: (r.created_at, r.id), reverse=True)

    def ids_in(message) -> list[str]:
        return [
            b["block_id"].removeprefix("run:")
            for b in message.blocks
            if b.get("block_id", "").startswith("run:")
        ]

    first = runs(bot, "alice", "completed")
    assert ids_in(first) == [r.id for r in newest_first[:15]]
    more = [e for e in buttons(first) if e["action_id"] == ids.MORE_RUNS]
    assert [e["text"]["text"] for e in more] == ["More"]
    assert f"/runs completed before={newest_first[14].id}" in shown(first)

    before = len(bot.slack.ephemeral("alice"))
    bot.driver.click("alice", first, action_id=ids.MORE_RUNS, value=more[0]["value"])
    second = bot.slack.wait_for(lambda ws: ws.ephemeral("U0ALICE")[before:][-1], timeout=10)
    assert ids_in(second) == [r.id for r in newest_first[15:]]
    assert "older than" in second.text
    assert not [e for e in buttons(second) if e["action_id"] == ids.MORE_RUNS]  # the last page

    # the same page typed by hand, with a run id prefix as the cursor
    typed = runs(bot, "alice", f"completed before={newest_first[14].id[:10]}")
    assert ids_in(typed) == [r.id for r in newest_first[15:]]
    refused = runs(bot, "alice", "completed before=nope")
    assert "`before=`: no run `nope`" in refused.text


@pytest.mark.parametrize("flow_name", ["deploy|prod", "nightly backup", "it's <odd> & |x|"])
def test_more_pages_a_flow_whose_name_has_a_bar_or_spaces(
    engine: Engine, bot: RunningBot, flow_name: str
) -> None:
    made = [
        engine.store.create_run(
            uuid.uuid4().hex,
            flow_name,
            None,
            b"",
            {},
            RunState.COMPLETED,
            owner=None,
            started_by=None,
        )
        for _ in range(17)
    ]
    newest_first = [r.id for r in sorted(made, key=lambda r: (r.created_at, r.id), reverse=True)]

    def ids_in(message) -> list[str]:
        return [b["block_id"][4:] for b in message.blocks if b.get("block_id", "")[:4] == "run:"]

    quoted = shlex.quote(flow_name)
    first = runs(bot, "alice", quoted)
    assert ids_in(first) == newest_first[:15]
    more = next(e for e in buttons(first) if e["action_id"] == ids.MORE_RUNS)
    before = len(bot.slack.ephemeral("alice"))
    bot.driver.click("alice", first, action_id=ids.MORE_RUNS, value=more["value"])
    second = bot.slack.wait_for(lambda ws: ws.ephemeral("U0ALICE")[before:][-1], timeout=10)
    assert ids_in(second) == newest_first[15:], second.text

    # The command the list shows for the next page, typed as shown, lists that page too.
    hint = next(b for b in first.blocks if b["type"] == "context")["elements"][0]["text"]
    typed = html.unescape(hint.split("`")[1]).removeprefix("/runs ")
    assert ids_in(runs(bot, "alice", typed)) == newest_first[15:]


def test_a_before_that_starts_several_run_ids_says_so(engine: Engine, bot: RunningBot) -> None:
    for run_id in ("1a" + "0" * 30, "1b" + "0" * 30, "2c" + "0" * 30):
        engine.store.create_run(
            run_id, "rc-quick", None, b"", {}, RunState.COMPLETED, owner=None, started_by=None
        )
    ambiguous = runs(bot, "alice", "all before=1").text
    # the runs it could be are named, to pick one
    assert ambiguous == (
        ":warning: `before=`: more than one run id starts with `1` (1a000000, 1b000000); "
        "give more of it."
    )
    unknown = runs(bot, "alice", "all before=3").text
    assert unknown == ":warning: `before=`: no run `3` to list after."
    assert "1a000000" in shown(runs(bot, "alice", "all before=1b"))


def test_a_long_flow_name_full_of_markup_still_lists_with_its_cancel_button(
    engine: Engine, bot: RunningBot
) -> None:
    name = "R&D <ops> & go " * 13  # 195 characters; twice that once <, > and & are escaped
    run = engine.store.create_run(
        uuid.uuid4().hex, name, None, b"", {}, RunState.RUNNING, owner=None, started_by=None
    )
    listing = runs(bot, "alice", "all")
    assert run.id[:8] in shown(listing)
    [cancel] = [e for e in buttons(listing) if e["action_id"] == ids.CANCEL_RUN]
    asked = cancel["confirm"]["text"]["text"]
    assert len(asked) <= 300 and asked.startswith("*R&amp;D &lt;ops&gt; &amp; go")
    assert asked.endswith(f"…* run `{run.id[:8]}` stops where it is. This cannot be undone.")


def test_show_of_a_run_changed_by_hand_names_it_and_other_runs_still_answer(
    engine: Engine, bot: RunningBot
) -> None:
    """It said "the embedded backend is unavailable", as if the database were down."""
    broken = engine.submit("rc-deploy", {"service": "api"})
    bot.root_message(broken.id)
    fine = engine.submit("rc-quick", {"n": 3})
    finished(engine, fine.id)
    with engine.store.engine.begin() as conn:
        conn.execute(
            sql("UPDATE pauses SET status = 'exploded' WHERE run_id = :id"), {"id": broken.id}
        )

    reply = runs(bot, "alice", f"show {broken.id}").text
    assert f"run {broken.id} cannot be read" in reply
    assert "status 'exploded' of its pause '1'" in reply
    assert "unavailable" not in reply
    assert "is *completed*" in runs(bot, "alice", f"show {fine.id}").text
