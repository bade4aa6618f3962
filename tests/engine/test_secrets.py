"""A secret field of an answer (``SecretStr``): the flow gets it, but the audit trail, which
can never be changed, and whatever shows the answer to people record it masked."""

from __future__ import annotations

import pydantic
import pytest

from signoff.engine import (
    Engine,
    InputInvalid,
    PauseStatus,
    ResponderNotAllowed,
    flow,
    hide_secrets,
    pause_flow_run,
    resume_flow_run,
)
from signoff.engine.input import RunInput
from tests.support.running import start, waiting


class Vault(pydantic.BaseModel):
    token: pydantic.SecretStr


class Unlock(RunInput):
    user: str
    password: pydantic.SecretStr
    pin: pydantic.SecretStr | None = None
    vault: Vault
    approved: bool = True

    @pydantic.field_validator("user")
    @classmethod
    def not_root(cls, user: str) -> str:
        if user == "root":
            raise ValueError("root may not unlock")
        return user


@flow(name="unlocks", approvers=["U0ALICE"])
def unlocks() -> str:
    answer = pause_flow_run(wait_for_input=Unlock)
    return f"{answer.user}:{answer.password.get_secret_value()}:{answer.vault.token.get_secret_value()}"


def test_the_flow_gets_the_secret_and_the_audit_trail_never_holds_it(engine: Engine) -> None:
    thread, box = start(unlocks)
    pause = waiting(engine, "unlocks")
    # The pin is not hex, so it can never turn up inside a run id or a hash by chance.
    given = {"user": "ada", "password": "hunter2", "pin": "pin-wxyz", "vault": {"token": "t0k"}}
    with pytest.raises(InputInvalid):  # refused by the schema: recorded as tried
        resume_flow_run(pause.run_id, {**given, "vault": {}}, "U0ALICE")
    with pytest.raises(ResponderNotAllowed):  # refused for who gave it: recorded too
        resume_flow_run(pause.run_id, given, "U0MALLORY")
    resume_flow_run(pause.run_id, given, "U0ALICE")
    thread.join(10)
    assert box == {"result": "ada:hunter2:t0k"}
    trail = engine.audit_trail(pause.run_id)
    inputs = [record.data["input"] for record in trail if "input" in record.data]
    assert len(inputs) == 3
    for shown in inputs:
        assert shown["password"] == shown["pin"] == "**********"
        assert shown["user"] == "ada"
    assert inputs[-1]["vault"] == {"token": "**********"}
    assert "hunter2" not in repr(trail) and "pin-wxyz" not in repr(trail)
    assert engine.verify_audit().ok


def test_a_refused_answer_is_shown_to_the_thread_without_its_secret(engine: Engine) -> None:
    """The flow's model refused the answer: its event, from which the run's thread says what
    was sent, carries the secret masked."""
    thread, box = start(unlocks)
    pause = waiting(engine, "unlocks")
    answered = {"user": "root", "password": "hunter2", "vault": {"token": "t0k"}}
    resume_flow_run(pause.run_id, answered, "U0ALICE")
    thread.join(10)
    assert engine.get_pause(pause.run_id, pause.key).status is PauseStatus.REJECTED
    events = engine.store.events_after(0, limit=1000)
    (rejected,) = [
        e for e in events if e.run_id == pause.run_id and e.kind.value == "input_rejected"
    ]
    assert rejected.data["response"]["password"] == "**********"
    assert rejected.data["response"]["vault"] == {"token": "**********"}


def test_hide_secrets_leaves_an_answer_without_secret_fields_as_it_is() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    answer = {"n": 1}
    assert hide_secrets(schema, answer) is answer
    assert hide_secrets(None, answer) is answer
    secret = Unlock.model_json_schema()
    assert hide_secrets(secret, {"user": "ada", "pin": None}) == {"user": "ada", "pin": None}


def test_runs_show_and_the_slack_side_see_the_secret_masked(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from signoff.bot.backends.embedded import EmbeddedBackend
    from tests.cli.in_process import run_cli

    thread, _ = start(unlocks)
    pause = waiting(engine, "unlocks")
    given = {"user": "ada", "password": "hunter2", "vault": {"token": "t0k"}}
    resume_flow_run(pause.run_id, given, "U0ALICE")
    thread.join(10)
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", engine.settings.database_url)
    status, out, _ = run_cli(capsys, "runs", "show", pause.run_id)
    assert status == 0
    (response,) = [line.strip() for line in out.splitlines() if "response" in line]
    assert response == (
        'response   {"user": "ada", "password": "**********", "vault": {"token": "**********"}}'
    )
    # Only where the flow itself returned it, which is the flow's to choose.
    assert [line for line in out.splitlines() if "hunter2" in line] == [
        line for line in out.splitlines() if "'ada:hunter2:t0k'" in line
    ]
    # What /runs show and the Home tab read (the Slack side never sees an engine object).
    (shown,) = EmbeddedBackend(engine).detail(pause.run_id).pauses
    assert shown.response == {**given, "password": "**********", "vault": {"token": "**********"}}
    assert [a.input["password"] for a in shown.answers] == ["**********"]
