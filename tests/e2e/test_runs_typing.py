"""``/runs`` typed as people type it: curly quotes from Slack on macOS and iOS, spaces that
are not plain spaces, and flow names with spaces left unquoted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.e2e.test_runs_command import finished, runs


class Ok(RunInput):
    ok: bool


@flow(name="rt-deploy")
def rt_deploy(service: str, note: str = "") -> str:
    pause_flow_run(wait_for_input=Ok, timeout=600)
    return f"{service}: {note}"


@flow(name="rt two words")
def rt_two_words() -> int:
    return 2


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def test_curly_quotes_from_a_mac_read_as_the_quotes_typed(engine: Engine, bot: RunningBot) -> None:
    # Slack on macOS makes 'two words' into \u2018two words\u2019 and "api" into \u201capi\u201d.
    started = runs(bot, "alice", "start \u2018rt two words\u2019").text
    assert started.startswith("Started *rt two words* run"), started
    started = runs(bot, "alice", "start rt-deploy service=\u201capi\u201d note=it\u2019s").text
    assert started.startswith("Started *rt-deploy* run"), started
    [run] = engine.list_runs(flow_name="rt-deploy")
    # The quotes are gone, the apostrophe stays.
    assert run.parameters == {"service": "api", "note": "it\u2019s"}

    shown = runs(bot, "alice", f"show \u201c{run.id[:8]}\u201d").text
    assert f"run `{run.id[:8]}`" in shown and "no run" not in shown


def test_a_non_breaking_space_or_a_tab_separates_words(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("rt-deploy", {"service": "web"})
    bot.root_message(run.id)
    # Option-Space on a Mac types a non-breaking space; it read as part of one word.
    shown = runs(bot, "alice", f"show\u00a0{run.id[:8]}").text
    assert shown.startswith(":raised_hand: *rt-deploy* run"), shown
    assert runs(bot, "alice", f"cancel\t{run.id[:8]}").text.startswith("Cancelled *rt-deploy*")
    assert finished(engine, run.id).state is RunState.CANCELLED


def test_a_flow_name_with_spaces_typed_without_quotes_says_to_quote_it(
    engine: Engine, bot: RunningBot
) -> None:
    hint = "A flow's name with spaces goes in quotes: `/runs start 'rt two words'`."
    assert runs(bot, "alice", "start rt two words").text == f":warning: No flow named `rt`. {hint}"
    listed = runs(bot, "alice", "rt two words").text
    assert listed.startswith(
        "Unknown command `rt two words`. A flow's name with spaces goes in quotes: "
        "`/runs 'rt two words'`.\n"
    )
    # It said "takes one run id" of a flow's name.
    by_flow = runs(bot, "alice", "flow rt two words").text
    assert by_flow.startswith(
        "`/runs flow` takes one flow's name, not 3. A flow's name with spaces goes in quotes: "
        "`/runs flow 'rt two words'`.\n"
    )
    assert engine.list_runs() == []
    # Typed as the hints say, each works.
    assert runs(bot, "alice", "start 'rt two words'").text.startswith("Started *rt two words*")
    assert runs(bot, "alice", "flow 'rt two words'").text == "Runs of rt two words"


def test_a_word_that_is_not_a_parameter_or_an_empty_before_says_how_to_type_it(
    engine: Engine, bot: RunningBot
) -> None:
    # It said only "`extra` is not `name=value`", not what the flow takes.
    assert runs(bot, "alice", "start 'rt two words' extra").text == (
        ":warning: `extra` is not `name=value`: type "
        "`/runs start 'rt two words' name=value ...`; *rt two words* takes no parameters"
    )
    assert runs(bot, "alice", "start rt-deploy api").text.endswith(
        "*rt-deploy* takes `service`, `note`"
    )
    assert engine.list_runs() == []
    # It said "no run `` to list after".
    empty = runs(bot, "alice", "all before=").text
    assert empty == ":warning: `before=`: give the id of the last run listed (`before=RUN`)."


def test_words_after_a_flows_name_are_named_with_the_forms_that_take_them(
    engine: Engine, bot: RunningBot
) -> None:
    # It answered "Unknown command `rt-deploy extra words`." and the help, nothing more.
    help_text = runs(bot, "alice", "help").text
    assert runs(bot, "alice", "rt-deploy extra words").text == (
        "`/runs rt-deploy` takes no more words, not `extra words` (only `before=RUN`, for the "
        "next page). To list its runs: `/runs rt-deploy`; to start it with parameters: "
        f"`/runs start rt-deploy k=v ...`; to see a run: `/runs show RUN`.\n{help_text}"
    )
    # A flow whose name has spaces is named quoted, as it must be typed.
    assert runs(bot, "alice", "'rt two words' service=api").text.startswith(
        "`/runs 'rt two words'` takes no more words, not `service=api`"
    )
    assert engine.list_runs() == []
    # A word that is no flow's still says what it says.
    assert runs(bot, "alice", "nothing here").text.startswith("Unknown command `nothing here`.")
