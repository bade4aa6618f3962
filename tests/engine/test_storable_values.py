"""Values the store cannot keep, on both stores alike: numbers JSON text cannot hold
(infinite and NaN floats, integers too long for Python to write out) and names longer than
their columns. Each is refused by name where it would be stored, or shown in words where
only a preview is stored, and never reaches the database: PostgreSQL would refuse it
there with a driver error (failing the run), and a SQLite file would keep JSON other
readers cannot parse, or a name PostgreSQL would not take."""

from __future__ import annotations

import math
import threading

import pydantic
import pytest
from sqlalchemy import text

from signoff.engine import (
    Actor,
    Engine,
    InputInvalid,
    InvalidParameters,
    ResponderNotAllowed,
    RunState,
    RunSuspended,
    flow,
    get_run_logger,
    suspend_flow_run,
    task,
)
from signoff.engine.input import RunInput
from tests.support.running import start
from tests.support.waiting import wait_for

INF, NAN = float("inf"), float("nan")


class Refund(RunInput):
    amount: float
    note: str = ""


@flow(name="json-limits-refund", approvers=["U_FIN"])
def refund(limit: float) -> float:
    answer = suspend_flow_run(wait_for_input=Refund)
    return min(answer.amount, limit)


@flow(name="json-limits-count")
def count(n: int) -> int:
    return n


@flow(name="json-limits-bad-default")
def bad_default() -> None:
    suspend_flow_run(wait_for_input=Refund.with_initial_data(amount=NAN))


def suspended(engine: Engine, limit: float) -> str:
    with pytest.raises(RunSuspended) as stopped:
        refund(limit)
    return stopped.value.run_id


def stored_json_is_standard(engine: Engine) -> None:
    """Every JSON value the database holds parses as standard JSON (no Infinity, no NaN)."""
    with engine.store.engine.connect() as conn:
        for table, column in [("runs", "parameters_json"), ("pauses", "response")]:
            for (value,) in conn.execute(text(f"SELECT {column} FROM {table}")):
                assert "Infinity" not in str(value) and "NaN" not in str(value)
        for (data,) in conn.execute(text("SELECT data FROM audit_records")):
            assert "Infinity" not in str(data) and "NaN" not in str(data)


def test_a_parameter_json_cannot_hold_is_kept_and_shown_by_its_name(engine: Engine) -> None:
    run_id = suspended(engine, INF)
    assert engine.get_run(run_id).parameters == {"limit": "inf"}
    queued = engine.submit("json-limits-refund", {"limit": NAN})
    assert queued.parameters == {"limit": "nan"}
    huge = engine.submit("json-limits-count", {"n": 10**5000})
    assert huge.parameters == {"n": "(a number too long to show)"}
    assert [r.data["parameters"] for r in engine.audit_trail(queued.id)] == [{"limit": "nan"}]
    # The flow itself gets the real value back (it is pickled, not JSON).
    engine.resume(run_id, {"amount": 12.5}, "U_FIN")
    assert engine.get_run(run_id).state is RunState.SCHEDULED
    stored_json_is_standard(engine)


def test_an_answer_json_cannot_hold_is_refused_by_field_and_the_run_waits(
    engine: Engine,
) -> None:
    run_id = suspended(engine, 100.0)
    for amount in (INF, -INF, NAN):
        with pytest.raises(InputInvalid) as refused:
            engine.resume(run_id, {"amount": amount, "note": "x"}, "U_FIN")
        assert refused.value.errors == {"amount": "must be a finite number"}
    with pytest.raises(InputInvalid) as nested:
        engine.resume(run_id, {"amount": 1.0, "note": [1.0, NAN]}, "U_FIN")
    assert nested.value.errors["note.1"] == "must be a finite number"
    with pytest.raises(InputInvalid) as long:
        engine.resume(run_id, {"amount": 10**5000}, "U_FIN")
    assert long.value.errors == {"amount": "must have at most 4,300 digits"}
    # Someone who may not answer is refused, and the refusal is recorded with what they sent.
    with pytest.raises(ResponderNotAllowed):
        engine.resume(run_id, {"amount": INF}, "U_SOMEONE")
    trail = engine.audit_trail(run_id)
    invalid = [r for r in trail if r.action == "answer.invalid"]
    assert [r.data["input"]["amount"] for r in invalid][:4] == ["inf", "-inf", "nan", 1.0]
    assert invalid[3].data["input"]["note"] == [1.0, "nan"]
    assert invalid[4].data["input"]["amount"] == "(a number too long to show)"
    refused_record = next(r for r in trail if r.action == "refused")
    assert refused_record.data["input"] == {"amount": "inf"}
    assert engine.get_run(run_id).state is RunState.SUSPENDED
    engine.resume(run_id, {"amount": 40.0}, "U_FIN")
    assert engine.get_pause(run_id, "1").response == {"amount": 40.0}
    stored_json_is_standard(engine)
    assert engine.verify_audit().ok


def test_a_model_whose_schema_json_cannot_hold_is_refused_at_the_pause(engine: Engine) -> None:
    with pytest.raises(
        ValueError,
        match=r"^Refund's JSON schema cannot be stored: the number at properties\.amount\.default "
        r"must be a finite number",
    ):
        bad_default()
    (run,) = engine.list_runs(flow_name="json-limits-bad-default")
    assert run.state is RunState.FAILED and "properties.amount.default" in (run.state_message or "")


def test_metadata_json_cannot_hold_is_refused_by_key(engine: Engine) -> None:
    run_id = suspended(engine, 1.0)
    with pytest.raises(
        ValueError,
        match=r"^metadata 'ticket' of run \w+ cannot be stored: the "
        r"number at refs\.1 must be a finite number$",
    ):
        engine.set_metadata(run_id, "ticket", {"refs": [1, NAN]})
    with pytest.raises(
        ValueError,
        match=r"^metadata 'score' of run \w+ cannot be stored: its "
        r"number must be a finite number$",
    ):
        engine.add_metadata(run_id, "score", INF)
    with pytest.raises(ValueError, match=r"the number at 0 must have at most 4,300 digits$"):
        engine.set_metadata(run_id, "big", [10**5000])
    assert engine.get_metadata(run_id, "ticket") is None
    engine.set_metadata(run_id, "score", 0.5)
    assert math.isclose(engine.get_metadata(run_id, "score"), 0.5)


class Unshowable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr today")


@task
def huge_result() -> int:
    return 10**5000


@flow(name="json-limits-unshowable")
def unshowable() -> Unshowable:
    huge_result()
    return Unshowable()


def test_a_result_that_cannot_be_written_out_does_not_fail_the_run(engine: Engine) -> None:
    assert isinstance(unshowable(), Unshowable)
    (run,) = engine.list_runs(flow_name="json-limits-unshowable")
    assert run.state is RunState.COMPLETED
    assert run.result == "<Unshowable that cannot be shown: no repr today>"
    (step,) = engine.detail(run.id).tasks
    assert step.result is not None and step.result.startswith("<int that cannot be shown: ")


def test_a_flow_or_task_name_longer_than_the_store_keeps_is_refused_when_decorated() -> None:
    with pytest.raises(
        ValueError, match=r"^flow name 'ffff.*'\.\.\. is 201 characters; at most 200$"
    ):
        flow(name="f" * 201)(lambda: None)
    with pytest.raises(
        ValueError, match=r"^task name 'tttt.*'\.\.\. is 300 characters; at most 200$"
    ):
        task(name="t" * 300)(lambda: None)
    assert flow(name="f" * 200)(lambda: None).name == "f" * 200


class LongTitled(RunInput):
    model_config = pydantic.ConfigDict(title="Approve " + "x" * 200)
    approved: bool


@flow(name="json-limits-long-title")
def long_title() -> None:
    suspend_flow_run(wait_for_input=LongTitled)


def test_a_model_title_longer_than_a_pause_keeps_is_refused_at_the_pause(engine: Engine) -> None:
    with pytest.raises(
        ValueError,
        match=r"^LongTitled's title 'Approve x+'\.\.\. is 208 characters; a "
        r"pause keeps at most 200$",
    ):
        long_title()
    (run,) = engine.list_runs(flow_name="json-limits-long-title")
    assert run.state is RunState.FAILED


def test_a_metadata_key_longer_than_the_store_keeps_is_refused(engine: Engine) -> None:
    run_id = suspended(engine, 1.0)
    with pytest.raises(
        ValueError, match=r"^metadata key 'k+'\.\.\. is 301 characters; at most 300$"
    ):
        engine.set_metadata(run_id, "k" * 301, 1)
    engine.set_metadata(run_id, "k" * 300, 1)
    assert engine.get_metadata(run_id, "k" * 300) == 1


def test_an_actor_id_or_name_longer_than_the_audit_keeps_is_refused(engine: Engine) -> None:
    run_id = suspended(engine, 1.0)
    with pytest.raises(ValueError, match=r"^actor id 'u+'\.\.\. is longer than 200 characters$"):
        engine.resume(run_id, {"amount": 1.0}, "u" * 201)
    with pytest.raises(ValueError, match=r"^actor name 'n+'\.\.\. is longer than 200 characters$"):
        engine.resume(run_id, {"amount": 1.0}, Actor("U_FIN", name="n" * 201))
    assert engine.get_run(run_id).state is RunState.SUSPENDED
    engine.resume(run_id, {"amount": 1.0}, Actor("U_FIN", name="n" * 200))
    assert engine.audit_trail(run_id)[-1].actor_name == "n" * 200


@flow(name="json-limits-nul")
def nul_bytes(fail: bool) -> str:
    get_run_logger().info("read b'\x00\x01'")
    if fail:
        raise ValueError("bad byte \x00 at 3")
    answer = suspend_flow_run(wait_for_input=Refund.with_initial_data(description="a\x00b"))
    return answer.note


def test_a_nul_character_in_text_the_store_keeps_is_written_out_not_fatal(
    engine: Engine,
) -> None:
    # PostgreSQL's text columns cannot hold NUL: the run's failure and its log line were
    # lost with the write that carried them, leaving the run RUNNING.
    with pytest.raises(ValueError, match="bad byte \x00 at 3"):
        nul_bytes(True)
    with pytest.raises(RunSuspended) as stopped:
        nul_bytes(False)
    failed, waiting = (
        next(r for r in engine.list_runs(flow_name="json-limits-nul") if r.parameters["fail"] is f)
        for f in (True, False)
    )
    assert failed.state is RunState.FAILED
    assert failed.state_message == "ValueError: bad byte \\x00 at 3"
    assert [log.message for log in engine.detail(failed.id).logs] == [
        "read b'\\x00\x01'"
    ]  # only NUL is written out
    assert engine.get_pause(waiting.id, "1").description == "a\\x00b"
    # JSON keeps it as it is (\u0000): the answer and its audit record are whole.
    engine.resume(stopped.value.run_id, {"amount": 1.0, "note": "x\x00y"}, "U_FIN")
    assert engine.get_pause(waiting.id, "1").response == {"amount": 1.0, "note": "x\x00y"}
    for refused in (
        lambda: engine.set_metadata(waiting.id, "k\x00", 1),
        lambda: engine.resume(waiting.id, {"amount": 1.0}, "U\x00FIN"),
        lambda: flow(name="a\x00b")(lambda: None),
    ):
        with pytest.raises(ValueError, match="has a NUL character"):
            refused()


ASKED = threading.Event()


@flow(name="json-limits-nul-asked")
def nul_asked() -> str:
    ASKED.wait(10)
    return nul_step()


@task
def nul_step() -> str:
    return "stepped"


def test_a_nul_character_in_a_description_asked_for_by_id_is_written_out(
    engine: Engine,
) -> None:
    """The same through suspend_flow_run(flow_run_id=...): on PostgreSQL the asked run
    failed at its next task with "database write failed: ... cannot contain NUL"."""
    ASKED.clear()
    thread, box = start(nul_asked)
    run = wait_for(lambda: engine.list_runs(flow_name="json-limits-nul-asked")[:1])[0]
    suspend_flow_run(Refund.with_initial_data(description="a\x00b"), flow_run_id=run.id, key="k")
    wait_for(lambda: engine.suspend_requests(run.id), what="the request to reach the engine")
    ASKED.set()
    thread.join(10)
    assert isinstance(box.get("error"), RunSuspended), box
    assert engine.get_run(run.id).state is RunState.SUSPENDED
    assert engine.get_pause(run.id, "k").description == "a\\x00b"


@flow(name="json-limits-surrogate")
def surrogate_text(label: str, fail: bool) -> str:
    if fail:
        raise ValueError("cannot read " + UNREADABLE)
    return label


UNREADABLE = b"\xff".decode("utf-8", "surrogateescape")


def test_text_with_a_lone_surrogate_is_refused_by_field_or_written_out(engine: Engine) -> None:
    """Bytes that are not UTF-8 reach Python as lone surrogates (\\udcff), which neither the
    store nor the audit trail's hash can encode: "unexpected UnicodeEncodeError" before."""
    bad = "caf\udce9"
    with pytest.raises(InvalidParameters) as parameters:
        surrogate_text(bad, False)
    assert parameters.value.errors == {
        "label": "must be text (it holds a lone surrogate, as from bytes that are not UTF-8)"
    }
    run_id = suspended(engine, 100.0)
    with pytest.raises(InputInvalid) as answer:
        engine.resume(run_id, {"amount": 1.0, "note": bad}, "U_FIN")
    assert list(answer.value.errors) == ["note"]
    with pytest.raises(ValueError, match="lone surrogate") as metadata:
        engine.set_metadata(run_id, "note", {"text": bad})
    assert "text" in str(metadata.value)
    # A failure's message is kept, its surrogate written out as repr would.
    with pytest.raises(ValueError):
        surrogate_text("ok", True)
    failed = engine.list_runs([RunState.FAILED], flow_name="json-limits-surrogate")[0]
    assert failed.state_message == "ValueError: cannot read \\udcff"
    assert engine.verify_audit().ok


def test_an_answer_larger_than_an_answer_holds_is_refused_whole_and_not_kept(
    engine: Engine,
) -> None:
    # A 50 MB note was checked, stored with the pause, in the audit trail and in the
    # result: 200 MB of database for one command.
    run_id = suspended(engine, 100.0)
    huge = {"amount": 1.0, "note": "x" * 1_200_000}
    size = len('{"amount": 1.0, "note": ""}') + 1_200_000
    with pytest.raises(InputInvalid) as refused:
        engine.resume(run_id, huge, "U_FIN")
    assert refused.value.errors == {
        "": f"is {size:,} characters as JSON; an answer holds at most 1,000,000"
    }
    with pytest.raises(ResponderNotAllowed):
        engine.resume(run_id, huge, "U_SOMEONE")
    kept = [r.data["input"] for r in engine.audit_trail(run_id) if "input" in r.data]
    assert kept == [f"(an answer of {size:,} characters as JSON, not kept)"] * 2
    assert engine.get_run(run_id).state is RunState.SUSPENDED
    # Just under the limit is an answer like any other.
    engine.resume(run_id, {"amount": 40.0, "note": "y" * 999_000}, "U_FIN")
    assert len(engine.get_pause(run_id, "1").response["note"]) == 999_000
