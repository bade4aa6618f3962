"""``SIGNOFF_OPERATOR`` names one person, as ``--as`` does: a user group's id, a blank
name or one with spaces around it is an invalid setting, named by the command it stops and
by ``config show``; an operator of any other name acts as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signoff.engine import Engine, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.cli.in_process import run_cli
from tests.support.running import start, waiting


class Approval(RunInput):
    approve: bool
    reason: str


# As the README's deploy-production: Bob, or a member of the SRE group.
@flow(name="op-deploy", approvers=["U0BOB", "S0SRE"])
def op_deploy() -> str:
    answer = pause_flow_run(wait_for_input=Approval, timeout=60)
    return f"{answer.approve}: {answer.reason}"


ANSWER = '{"approve": true, "reason": "tested"}'
GROUP = (
    "error: invalid setting: SIGNOFF_OPERATOR: the operator name 'S0SRE' is a Slack user "
    "group's id, not one person's: rules may name a group, but a person acts (name one of "
    "its members)\n"
)


def test_a_group_as_the_operator_is_refused_and_a_person_answers(
    engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`SIGNOFF_OPERATOR=S0SRE signoff runs resume` answered as the group itself, with
    nobody in it, and the trail named the group as who decided."""
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", engine.settings.database_url)
    thread, box = start(op_deploy)
    pause = waiting(engine, "op-deploy")
    trail = engine.audit_trail(pause.run_id)

    monkeypatch.setenv("SIGNOFF_OPERATOR", "S0SRE")
    for command_line in (
        ("runs", "resume", pause.run_id, "--input", ANSWER),
        ("runs", "cancel", pause.run_id),
        ("runs", "reassign", pause.run_id, "--to", "U0CAROL"),
    ):
        assert run_cli(capsys, *command_line) == (1, "", GROUP), command_line
    assert engine.audit_trail(pause.run_id) == trail
    assert engine.get_run(pause.run_id).state is RunState.PAUSED

    monkeypatch.setenv("SIGNOFF_OPERATOR", "U0BOB")
    status, out, err = run_cli(capsys, "runs", "resume", pause.run_id, "--input", ANSWER)
    assert (status, out) == (
        0,
        f"resumed {pause.run_id} (input '1') as U0BOB; the flow accepted it\n",
    ), err
    thread.join(10)
    assert box == {"result": "True: tested"}
    assert [r.actor_id for r in engine.audit_trail(pause.run_id)][len(trail)] == "U0BOB"


@pytest.mark.parametrize(
    ("value", "why", "person"),
    [
        (" ", "is blank; name who the CLI acts as, or leave the variable out for your login name", "alice"),
        (" bob", "the operator name ' bob' has spaces around it: it would be another person than 'bob'", "bob"),
        # a name in capitals holds no digit, as Slack's ids do: no group
        ("S0SRE", GROUP.removeprefix("error: invalid setting: SIGNOFF_OPERATOR: ").rstrip(), "SAM"),
    ],
)  # fmt: skip
def test_an_operator_who_is_no_one_person_is_an_invalid_setting_named_once(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    why: str,
    person: str,
) -> None:
    """`SIGNOFF_OPERATOR=' '` stopped a command with "unexpected ValueError", and `config
    show` found nothing wrong with it; an operator of another name acts as before."""
    start_a_run = ("run", "access-request", "--flows", "flows.py", "--param", "user=ada")
    monkeypatch.setenv("SIGNOFF_OPERATOR", value)
    line = f"invalid setting: SIGNOFF_OPERATOR: {why}"
    assert run_cli(capsys, *start_a_run) == (1, "", f"error: {line}\n")
    status, out, _ = run_cli(capsys, "config", "show")
    assert status == 1 and f"problem: {line}" in out.splitlines()
    status, out, _ = run_cli(capsys, "config", "show", "--json")
    assert status == 1 and json.loads(out)["problems"][0] == line

    monkeypatch.setenv("SIGNOFF_OPERATOR", person)
    status, out, err = run_cli(capsys, *start_a_run)
    assert status == 0, err
    status, out, _ = run_cli(capsys, "runs", "show", out.split()[0], "--json")
    assert status == 0 and json.loads(out)["run"]["started_by"] == person
    # (serve's Slack settings are not set here: config show names those alone)
    _, out, _ = run_cli(capsys, "config", "show", "--json")
    shown = json.loads(out)
    assert shown["settings"]["SIGNOFF_OPERATOR"]["value"] == person
    assert not [problem for problem in shown["problems"] if "SIGNOFF_OPERATOR" in problem]
