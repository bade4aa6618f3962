"""`signoff demo` as a newcomer runs it: a subprocess whose transcript tells the whole story."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Protocol
from urllib.parse import unquote

import click
import pytest

from signoff.bot.demo.transcript import Demo
from signoff.bot.sandbox.render import BLOCK_KIT_BUILDER as BUILDER
from signoff.bot.testing import running_bot
from tests.support.cli_forks import CliForks


class Signoff(Protocol):
    def __call__(
        self, *args: str, cwd: Path, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def signoff(cli_forks: CliForks) -> Signoff:
    """``signoff ARGS`` as a process of its own, forked from one that imported Signoff
    already (``tests/support/cli_forks.py``); ``test_demo_prints_the_whole_loop`` and the
    README's quick start run it from scratch."""

    def run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return cli_forks.run(args, env=os.environ, cwd=cwd, input=stdin, timeout=120)

    return run


def test_demo_prints_the_whole_loop(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "signoff.bot.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # the channel messages, with the prompt button
    assert "*greet-user* run" in out and "[ Provide input ]" in out
    # each modal as a readable form, prefilled (and still required: the model requires a
    # name), with a Block Kit Builder link
    assert 'Name: [text: "anonymous"]' in out
    links = re.findall(r"^\[\d+\] [\w-]+ run \w{8}: (https://\S+)$", out, re.MULTILINE)
    assert len(links) == out.count("── modal ") == 4
    first = json.loads(unquote(links[0].removeprefix(BUILDER)))  # whole, so it opens
    assert first["type"] == "modal" and first["title"]["text"] == "greet-user"
    # the in-thread error for the model's own validator, and the prefilled re-prompt
    assert "@alice's answer was not accepted" in out
    assert "Green is only in-stock for medium, large, and XL sizes." in out
    assert "needs input again" in out
    assert "Size: (x) Small" in out and "Color: ( ) Red  (x) Green" in out
    # a structural error inside the modal, and a refused non-approver
    assert "field:reason: must be at least 3 characters long" in out
    assert "(only alice sees) Only @bob may answer this." in out
    # the deploy's reminder before its deadline, naming who may answer
    assert (
        ":bell: Reminder: *deploy-production* run" in out
        and "@bob: please answer before" in out
        and "(not @carol" not in out  # carol is no approver: not mentioned
    )
    # the final states, with who answered
    assert "greet-user         completed  result='Hello, Ada!'  input 1 accepted by @alice" in out
    assert "input 1 rejected by @alice, input 2 accepted by @bob" in out
    assert "deploy-production  completed" in out
    assert "demo finished in" in done.stderr
    # and where to go next
    assert done.stderr.rstrip().endswith("to write a flow of your own")


def test_demo_prints_to_a_stdout_whose_encoding_lacks_its_marks(tmp_path: Path) -> None:
    # Output redirected under a non-UTF-8 locale: "▶" and "─" ended the demo after its
    # first line with "unexpected UnicodeEncodeError".
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    done = subprocess.run(
        [sys.executable, "-m", "signoff.bot.cli", "demo"],
        capture_output=True,
        text=True,
        encoding="cp1252",
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "\\u2500\\u2500 #general" in done.stdout
    assert "deploy-production  completed" in done.stdout
    assert "demo finished in" in done.stderr


def test_the_transcript_follows_the_order_people_see_things_in_slack(
    tmp_path: Path, cli_forks: CliForks
) -> None:
    # Steps go to stderr, Slack to stdout: one pipe for both keeps their order.
    done = cli_forks.run(
        ["demo"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,
        timeout=120,
        stderr_to_stdout=True,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    out = done.stdout

    def at(text: str, after: int = 0) -> int:
        found = out.find(text, after)
        assert found >= 0, f"{text!r} not in the transcript after position {after}"
        return found

    # An accepted answer shows where it appears: the prompt marked with who answered and
    # how the run ended, before the next flow starts.
    submitted = at("alice types “Ada” and submits")
    marked = at("• `1` :white_check_mark: Answered by @alice", submitted)
    assert at("*greet-user* run", submitted) < marked < at("starting get-shirt-order")
    # The refusal note comes before the prompt that asks again, as in the thread.
    picked = at("alice picks small + green")
    assert at("@alice's answer was not accepted", picked) < at("needs input again", picked)
    # A message is shown before anyone clicks on it.
    deploy = at("starting deploy-production")
    assert at("*deploy-production* run", deploy) < at("but is not an approver", deploy)
    # The fixed answer's outcome, then the summary.
    fixed = at("bob fixes the reason in the open modal")
    assert at("*deploy-production* run", fixed) < at("is *completed*", fixed) < at("final states")


def test_demo_runs_your_flows_with_answers_from_a_file(signoff: Signoff, tmp_path: Path) -> None:
    flows = tmp_path / "myflows.py"
    flows.write_text(
        textwrap.dedent(
            """
            from signoff.engine import flow, pause_flow_run
            from signoff.engine.input import RunInput

            class Refund(RunInput):
                amount: int
                approve: bool = False

            @flow
            def refund_customer() -> str:
                answer = pause_flow_run(wait_for_input=Refund)
                return f"refunded {answer.amount}" if answer.approve else "kept"
            """
        )
    )
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"refund-customer": [{"amount": 30, "approve": True}]}))
    done = signoff("demo", "--flows", str(flows), "--answers", str(answers), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Amount: [number" in done.stdout
    assert "refund-customer    completed  result='refunded 30'" in done.stdout


def test_demo_asks_at_the_prompt_for_flows_without_answers(
    signoff: Signoff, tmp_path: Path
) -> None:
    flows = tmp_path / "ask.py"
    flows.write_text(
        textwrap.dedent(
            """
            from signoff.engine import flow, pause_flow_run

            @flow
            def ask_twice(greeting: str) -> str:
                first = pause_flow_run(wait_for_input=int)
                second = pause_flow_run(wait_for_input=int)
                return f"{greeting} {first + second}"
            """
        )
    )
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"ask-twice": {"parameters": {"greeting": "sum"}}}))
    done = signoff(
        "demo",
        "--flows",
        str(flows),
        "--answers",
        str(answers),
        cwd=tmp_path,
        stdin='{"value": 2}\n{"value": 40}\n',
    )
    assert done.returncode == 0, done.stderr
    assert "JSON answer for ask-twice input 1" in done.stderr
    assert "ask-twice          completed  result='sum 42'" in done.stdout


def test_an_answer_typed_at_the_prompt_may_be_given_as_another_sandbox_user(
    signoff: Signoff,
    tmp_path: Path,
) -> None:
    """A pause only bob may answer: the prompt answered as alice, and nothing typed there
    could change that (only an answers file could)."""
    flows = tmp_path / "bobs.py"
    flows.write_text(
        "from signoff.engine import flow, pause_flow_run\n\n"
        "@flow\ndef bobs() -> int:\n"
        "    return pause_flow_run(wait_for_input=int, approvers=['U0BOB'])\n"
    )
    done = signoff("demo", "--flows", str(flows), cwd=tmp_path, stdin='bob {"value": 7}\n')
    assert done.returncode == 0, done.stderr
    assert "JSON answer for bobs input 1, as alice (or 'bob {...}'" in done.stderr
    assert "bobs               completed  result=7  input 1 accepted by @bob" in done.stdout


def test_an_answer_typed_as_someone_the_sandbox_lacks_names_them(
    signoff: Signoff,
    tmp_path: Path,
) -> None:
    """``dave {"value": 7}`` was refused as "not valid JSON: Expecting value (column 1)",
    which said nothing of the name."""
    flows = tmp_path / "bobs.py"
    flows.write_text(
        "from signoff.engine import flow, pause_flow_run\n\n"
        "@flow\ndef bobs() -> int:\n"
        "    return pause_flow_run(wait_for_input=int, approvers=['U0BOB'])\n"
    )
    stdin = 'dave {"value": 7}\nbob {"value": 7}\n'
    done = signoff("demo", "--flows", str(flows), cwd=tmp_path, stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert "no sandbox user 'dave'; answer as one of alice, bob, carol; try again" in done.stderr
    assert "not valid JSON" not in done.stderr
    assert "bobs               completed  result=7  input 1 accepted by @bob" in done.stdout


def test_answers_the_flow_never_asked_for_are_reported(signoff: Signoff, tmp_path: Path) -> None:
    """A file with more answers than the run asked for (the flow took another branch):
    the rest were dropped without a word, and the demo said it finished."""
    flows = tmp_path / "once.py"
    flows.write_text(
        "from signoff.engine import flow, pause_flow_run\n\n"
        "@flow\ndef once() -> int:\n    return pause_flow_run(wait_for_input=int)\n"
    )
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"once": [{"value": 1}, {"value": 2}, {"value": 3}]}))
    done = signoff("demo", "--flows", str(flows), "--answers", str(answers), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        f"warning: {answers}: once: the run asked for 1 input(s); its last 2 answer(s) went unused"
    ) in done.stderr
    assert "once               completed  result=1" in done.stdout


def test_answers_that_end_with_standard_input_are_reported_not_taken_for_ctrl_c(
    signoff: Signoff,
    tmp_path: Path,
) -> None:
    """In CI or a script (stdin at its end) it said "interrupted", exit 130, as for Ctrl-C."""
    flows = tmp_path / "ask.py"
    flows.write_text(
        "from signoff.engine import flow, pause_flow_run\n\n"
        "@flow\ndef ask() -> int:\n    return pause_flow_run(wait_for_input=int)\n"
    )
    done = signoff("demo", "--flows", str(flows), cwd=tmp_path, stdin="")
    assert done.returncode == 1, done.stderr
    assert "error: no answer for ask input 1: standard input ended." in done.stderr
    assert "--answers FILE" in done.stderr and "interrupted" not in done.stderr


def test_demo_reports_a_missing_flows_file_in_one_line(signoff: Signoff, tmp_path: Path) -> None:
    done = signoff("demo", "--flows", str(tmp_path / "nope.py"), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: cannot load flows from")
    assert len(done.stderr.strip().splitlines()) == 1


REFUND = """
from signoff.engine import flow, pause_flow_run
from signoff.engine.input import RunInput


class Refund(RunInput):
    amount: int
    approve: bool = False


@flow(approvers=["U0BOB"])
def refund_customer(currency: str) -> str:
    answer = pause_flow_run(wait_for_input=Refund)
    return f"refunded {answer.amount} {currency}" if answer.approve else "kept"
"""


def test_the_answers_file_chooses_who_answers_and_param_sets_parameters(
    signoff: Signoff, tmp_path: Path
) -> None:
    (tmp_path / "flows.py").write_text(REFUND)
    answers = tmp_path / "answers.json"
    answers.write_text(
        json.dumps(
            {
                "refund-customer": {
                    "as": "bob",  # only bob may answer this flow
                    "answers": [{"amount": 30, "approve": True}],
                    "paramters": {"currency": "USD"},  # misspelt: reported, not used
                },
                "refund-customers": [],  # no such flow: reported
            }
        )
    )
    done = signoff(
        "demo", "--flows", "flows.py", "--answers", "answers.json", "--param", "currency=EUR",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "warning: answers.json: refund-customer: ignored key 'paramters'" in done.stderr
    assert "warning: answers.json: no flow named 'refund-customers'" in done.stderr
    assert "bob clicks" in done.stderr and "alice clicks" not in done.stderr
    assert "refund-customer    completed  result='refunded 30 EUR'  input 1 accepted by @bob" in (
        done.stdout
    )


def test_a_parameter_left_out_says_how_the_demo_takes_parameters(
    signoff: Signoff, tmp_path: Path
) -> None:
    """The demo asks for answers at the prompt, not for parameters: "currency: Field
    required" alone left a newcomer with no way to give one."""
    (tmp_path / "flows.py").write_text(REFUND)
    done = signoff("demo", "--flows", "flows.py", cwd=tmp_path, stdin="")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: invalid parameters for flow 'refund-customer': currency: Field required "
        '(give them with --param NAME=VALUE, or as "parameters" in --answers)'
    ]


def test_an_answer_from_someone_the_flow_does_not_accept_says_who_and_how_to_choose(
    signoff: Signoff,
    tmp_path: Path,
) -> None:
    """The demo answers as alice unless told: here only bob may, and it timed out waiting
    for a form that never opened (exit 1, "unexpected ConditionTimeout")."""
    (tmp_path / "flows.py").write_text(REFUND)
    answers = tmp_path / "answers.json"
    answers.write_text(
        json.dumps(
            {
                "refund-customer": {
                    "answers": [{"amount": 30, "approve": True}],
                    "parameters": {"currency": "USD"},
                }
            }
        )
    )
    began = time.monotonic()
    done = signoff("demo", "--flows", "flows.py", "--answers", str(answers), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "error: alice cannot answer refund-customer run" in done.stderr
    assert "Only @bob may answer this." in done.stderr
    assert '(choose who answers with "as" in the --answers file)' in done.stderr
    assert "ConditionTimeout" not in done.stderr
    assert time.monotonic() - began < 60


def test_param_keeps_a_text_parameters_value_as_typed_for_each_flow(
    signoff: Signoff, tmp_path: Path
) -> None:
    # "--param version=3" was read as the number 3 for every flow, and a flow taking
    # "version: str" refused it ("Input should be a valid string"); each flow now reads it
    # as its own parameter takes it.
    (tmp_path / "flows.py").write_text(
        textwrap.dedent(
            """
            from signoff.engine import flow

            @flow
            def release(version: str) -> str:
                return f"release {version!r}"

            @flow
            def scale(version: int) -> str:
                return f"scale {version!r}"
            """
        )
    )
    done = signoff("demo", "--flows", "flows.py", "--param", "version=3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "release            completed  result=\"release '3'\"" in done.stdout
    assert "scale              completed  result='scale 3'" in done.stdout


DEPLOY = """
import pydantic
from signoff.engine import flow, pause_flow_run
from signoff.engine.input import RunInput


class Approval(RunInput):
    approve: bool
    reason: str = pydantic.Field(min_length=3)


@flow
def deploy() -> str:
    answer = pause_flow_run(wait_for_input=Approval)
    return f"{answer.approve} {answer.reason}"
"""


@pytest.mark.parametrize("source", ["file", "prompt"])
def test_an_answer_the_form_refuses_is_fixed_in_the_open_form_by_the_next_one(
    signoff: Signoff, tmp_path: Path, source: str
) -> None:
    # The form's own check keeps the modal open and the run waiting on the same input: the
    # next answer goes into that form, as a person fixes what the errors point at, rather
    # than the demo waiting for a new question that never comes.
    (tmp_path / "flows.py").write_text(DEPLOY)
    answers = [{"approve": True, "reason": "ok"}, {"reason": "soak was clean"}]
    if source == "file":
        (tmp_path / "answers.json").write_text(json.dumps({"deploy": answers}))
        args, stdin = ("--answers", "answers.json"), None
    else:
        args, stdin = (), "".join(json.dumps(a) + "\n" for a in answers)
    started = time.monotonic()
    done = signoff("demo", "--flows", "flows.py", *args, cwd=tmp_path, stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 15  # no wait for a prompt that never comes
    out = done.stdout
    assert "field:reason: must be at least 3 characters long" in out
    assert "deploy             completed  result='True soak was clean'" in out
    assert 'alice submits {"reason": "soak was clean"}' in done.stderr
    assert out.count("── modal ") == 1  # fixed in the form that stayed open


def test_answers_that_run_out_while_the_form_shows_errors_are_reported(
    signoff: Signoff, tmp_path: Path
) -> None:
    (tmp_path / "flows.py").write_text(DEPLOY)
    (tmp_path / "answers.json").write_text(json.dumps({"deploy": [{"approve": True}]}))
    done = signoff("demo", "--flows", "flows.py", "--answers", "answers.json", cwd=tmp_path)
    assert done.returncode == 1
    assert "field:reason: is required" in done.stdout
    assert "✘ deploy: answers.json has no answer for input 1" in done.stderr
    assert "timed out" not in done.stderr


def test_a_flows_file_without_a_flow_is_reported_not_played_as_nothing(
    signoff: Signoff, tmp_path: Path
) -> None:
    (tmp_path / "flows.py").write_text("def deploy() -> str:\n    return 'done'\n")
    done = signoff("demo", "--flows", "flows.py", cwd=tmp_path, stdin="")
    assert done.returncode == 1
    assert "demo finished" not in done.stderr
    assert "error: no flows in flows.py: a flow is a function decorated with @flow" in done.stderr


@pytest.mark.parametrize("source", ["file", "prompt"])
def test_an_answer_naming_a_field_the_form_lacks_names_the_fields_it_has(
    signoff: Signoff, tmp_path: Path, source: str
) -> None:
    (tmp_path / "flows.py").write_text(DEPLOY)
    typo, right = {"aprove": True, "reason": "okay"}, {"approve": True, "reason": "okay"}
    if source == "file":
        (tmp_path / "answers.json").write_text(json.dumps({"deploy": [typo]}))
        args, stdin = ("--answers", "answers.json"), None
    else:
        args, stdin = (), f"{json.dumps(typo)}\n{json.dumps(right)}\n"
    done = signoff("demo", "--flows", "flows.py", *args, cwd=tmp_path, stdin=stdin)
    assert "unexpected" not in done.stderr
    said = "no input 'aprove' in this view; it has: approve, reason"
    if source == "file":
        assert done.returncode == 1
        assert f"✘ deploy: answers.json, input 1: {said}" in done.stderr
    else:
        assert done.returncode == 0, done.stderr  # asked again, and fixed
        assert f"deploy input 1: {said}; try again" in done.stderr
        assert "deploy             completed  result='True okay'" in done.stdout


GUARDED = """
from signoff.engine import flow, pause_flow_run
from signoff.engine.input import RunInput


class Approval(RunInput):
    approve: bool


@flow(approvers=["U0BOB"], forbid_starter=True)
def guarded() -> str:
    return str(pause_flow_run(wait_for_input=Approval).approve)
"""


@pytest.mark.parametrize("source", ["file", "prompt"])
def test_a_run_the_demo_gives_up_on_is_cancelled_whoever_its_flow_lets_cancel(
    signoff: Signoff, tmp_path: Path, source: str
) -> None:
    # Skipping at the prompt, or answers that run out, cancel the run: also one whose flow
    # names approvers, which no sandbox user the demo is not playing may cancel.
    (tmp_path / "flows.py").write_text(GUARDED)
    if source == "file":
        (tmp_path / "answers.json").write_text(
            json.dumps({"guarded": {"as": "bob", "answers": []}})
        )
        args, stdin = ("--answers", "answers.json"), None
    else:
        args, stdin = (), "skip\n"
    done = signoff("demo", "--flows", "flows.py", *args, cwd=tmp_path, stdin=stdin)
    assert "may not cancel" not in done.stderr
    assert "guarded            cancelled" in done.stdout
    if source == "file":
        assert done.returncode == 1
        assert "✘ guarded: answers.json has no answer for input 1" in done.stderr
        assert "cancelled by the demo: the answers file has no more answers" in done.stdout
    else:
        assert done.returncode == 0, done.stderr
        assert "cancelled by the demo: skipped at the prompt" in done.stdout


PROBLEMS = """
import pydantic
from signoff.engine import flow, pause_flow_run

Huge = pydantic.create_model("Huge", **{f"f{i}": (int, ...) for i in range(120)})


@flow
def ask(greeting: str) -> str:
    return f"{greeting} {pause_flow_run(wait_for_input=int)}"


@flow
def boom() -> None:
    raise RuntimeError("the deploy script failed")


@flow
def huge() -> None:
    pause_flow_run(wait_for_input=Huge)
"""


def test_bad_typed_json_is_asked_again_unshowable_models_and_failures_exit_1(
    signoff: Signoff,
    tmp_path: Path,
) -> None:
    (tmp_path / "flows.py").write_text(PROBLEMS)
    done = signoff(
        "demo", "--flows", "flows.py", "--param", "greeting=hi",
        cwd=tmp_path, stdin='oops\n[1]\n{"value": 2}\n',
    )  # fmt: skip
    assert done.returncode == 1
    assert "not valid JSON: Expecting value (column 1); try again" in done.stderr
    assert "an answer is a JSON object of form values" in done.stderr
    assert "ask                completed  result='hi 2'" in done.stdout
    # why the model cannot be shown, in the transcript and in the reasons for exiting 1
    assert "cannot be shown as a Slack form" in done.stdout and "a modal holds 100" in done.stdout
    assert "✘ huge: " in done.stderr and "✘ boom failed: RuntimeError" in done.stderr
    assert done.stderr.strip().endswith("but not every run completed")
    # the prompt message comes before the answer typed for it
    out = done.stdout
    assert out.index("*ask* run") < out.index("── modal")


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("{", (), "error: answers.json: not valid JSON: Expecting property name"),
        ("\udcff\udcfe", (), "error: answers.json: not UTF-8 text (byte 0)"),
        ('["x"]', (), "error: answers.json: expected a JSON object of flow names"),
        (
            '{"refund-customer": {"answers": {"amount": 1}}}',
            (),
            "error: answers.json: refund-customer: 'answers' must be a list of answers",
        ),
        (
            '{"refund-customer": {"as": "dave", "answers": []}}',
            (),
            "error: answers.json: refund-customer: 'as' must be one of the sandbox's users",
        ),
        ("{}", ("--param", "region=eu"), "error: --param region: no flow takes a parameter"),
    ],
)
def test_errors_name_the_answers_file_or_the_option(
    signoff: Signoff, tmp_path: Path, content: str, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "flows.py").write_text(REFUND)
    (tmp_path / "answers.json").write_bytes(content.encode("utf-8", "surrogateescape"))
    done = signoff("demo", "--flows", "flows.py", "--answers", "answers.json", *args, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_transcript_waits_for_a_prompt_as_long_as_it_is_told() -> None:
    # The Prefect demo gives a flow run's process minutes to ask; a run that never asks
    # ends the demo, after the time given, with an error naming the flow.
    with running_bot(["signoff.bot.demo.flows"]) as bot:
        demo = Demo(bot.engine, bot.slack, bot.server, prompt_seconds=0.5)
        never_asks = SimpleNamespace(id="0" * 32, flow_name="greet-user")
        started = time.monotonic()
        with pytest.raises(click.ClickException, match="waiting for a prompt for greet-user"):
            demo.prompt_for(never_asks)
        assert 0.5 <= time.monotonic() - started < 10
