"""Cases from Prefect's own tests and experiments (prefect-semantics.md §1.4, §1.6, §2.3,
§4.1, §4.3) that the other engine tests do not cover: how strictly an answer is read, an
optional field's initial value, a tuple, a pause inside a task that times out or is
retried, an async flow asking an answered key again, and an answer's metadata."""

from __future__ import annotations

import asyncio
from typing import Tuple  # noqa: UP035 - Prefect's own test spells it so

import pytest

from signoff.engine import (
    Engine,
    FlowPauseTimeout,
    InputInvalid,
    RunState,
    RunSuspended,
    Worker,
    apause_flow_run,
    flow,
    pause_flow_run,
    resume_flow_run,
    suspend_flow_run,
    task,
)
from signoff.engine.input import RunInput, RunInputMetadata
from tests.support.running import start, waiting
from tests.support.waiting import wait_for


def test_an_answer_is_read_as_strictly_as_prefects_schema_check(engine: Engine) -> None:
    """Prefect [exp]: {"value": "7"} for an int is refused ("'7' is not of type
    'integer'"), though pydantic would coerce it; 7.0 is an integer to JSON Schema."""

    @flow(name="asks-a-number")
    def asks_a_number() -> int:
        return pause_flow_run(int, timeout=60)

    thread, box = start(asks_a_number)
    pause = waiting(engine, "asks-a-number")
    with pytest.raises(InputInvalid) as refused:
        resume_flow_run(pause.run_id, {"value": "7"})
    assert refused.value.errors == {"value": "must be a whole number"}
    resume_flow_run(pause.run_id, {"value": 7.0})
    thread.join(10)
    assert box == {"result": 7} and isinstance(box["result"], int)


class Person(RunInput):
    name: str
    email: str | None = None


def test_with_initial_data_keeps_an_optional_field_optional(engine: Engine) -> None:
    """Prefect's test_with_initial_data_preserves_optional_type_annotations (PR #19176):
    None may be the initial value, and an answer may leave it or replace it."""
    model = Person.with_initial_data(email=None)
    assert model.model_json_schema()["properties"]["email"]["anyOf"] == [
        {"type": "string"},
        {"type": "null"},
    ]

    @flow(name="asks-a-person")
    def asks_a_person(initial: str | None) -> Person:
        return pause_flow_run(Person.with_initial_data(email=initial), timeout=60)

    answers = []
    for initial, answer in ((None, {"name": "Ada"}), ("a@x.io", {"name": "Bo", "email": None})):
        thread, box = start(asks_a_person, initial)
        resume_flow_run(waiting(engine, "asks-a-person").run_id, answer)
        thread.join(10)
        answers.append((box["result"].name, box["result"].email))
    assert answers == [("Ada", None), ("Bo", None)]


def test_a_tuple_comes_back_as_a_tuple(engine: Engine) -> None:
    """Prefect's automatic input for Tuple[str, str] (test_automatic_input_receive_*)."""

    @flow(name="asks-a-pair")
    def asks_a_pair() -> tuple[str, str]:
        return pause_flow_run(Tuple[str, str], timeout=60)  # noqa: UP006

    thread, box = start(asks_a_pair)
    pause = waiting(engine, "asks-a-pair")
    assert pause.title == "tupleAutomaticRunInput"
    with pytest.raises(InputInvalid):
        resume_flow_run(pause.run_id, {"value": ["only one"]})
    resume_flow_run(pause.run_id, {"value": ["eu", "prod"]})
    thread.join(10)
    assert box == {"result": ("eu", "prod")}


def test_a_pause_in_a_task_that_times_out_fails_the_flow_as_timed_out(engine: Engine) -> None:
    """Prefect's test_pause_flow_run_from_task_pauses_parent_flow."""

    @task
    def waits_briefly() -> None:
        pause_flow_run(timeout=0.1)

    @flow(name="task-times-out")
    def task_times_out() -> None:
        waits_briefly()

    with pytest.raises(FlowPauseTimeout):
        task_times_out()
    run = engine.list_runs(flow_name="task-times-out")[0]
    assert (run.state, run.state_name) == (RunState.FAILED, "TimedOut")


SEEN: list[int] = []


@task(retries=2)
def needs_eleven() -> int:
    value = pause_flow_run(int, timeout=60)
    SEEN.append(value)
    if value < 11:
        raise ValueError(f"{value} is too small")
    return value


@flow(name="retried-question")
def retried_question() -> int:
    return needs_eleven()


def test_a_task_retried_after_its_answer_asks_again_rather_than_reuse_it(
    engine: Engine,
) -> None:
    """Prefect [exp], retries=3: attempt 2 paused under paused-1 again and could reuse the
    first answer until 3.9.1 deleted it. Here the retry asks a new question."""
    SEEN.clear()
    thread, box = start(retried_question)
    first = waiting(engine, "retried-question")
    resume_flow_run(first.run_id, {"value": 10})
    second = wait_for(
        lambda: (p := engine.waiting_pause(first.run_id)) and p.key != first.key and p,
        what="the retry's question",
    )
    resume_flow_run(second.run_id, {"value": 11})
    thread.join(10)
    assert (box, SEEN, [first.key, second.key]) == ({"result": 11}, [10, 11], ["1", "2"])


def test_an_async_flow_asking_an_answered_key_again_gets_the_answer(engine: Engine) -> None:
    """Prefect's async "already fired" path returned None instead of the stored input
    (fixed in 3.9.1); test_pause.py covers the sync one."""

    @flow(name="async-same-key")
    async def async_same_key() -> tuple[int, int]:
        first = await pause_flow_run(int, timeout=60, key="once")
        return first, await apause_flow_run(int, timeout=60, key="once")

    thread, box = start(lambda: asyncio.run(async_same_key()))
    resume_flow_run(waiting(engine, "async-same-key").run_id, {"value": 5})
    thread.join(10)
    assert box == {"result": (5, 5)}


class Approval(RunInput):
    approved: bool


def test_an_answer_says_which_pause_of_which_run_it_answered(engine: Engine) -> None:
    """Prefect's test_load_populates_metadata: after a pause, metadata is (key, sender=None,
    receiver=the run). The key is the pause's ("1", or the key= given), which Signoff's
    resume and CLI take; Prefect's is its keyset's "paused-1-response"."""

    @flow(name="metadata-pause")
    def metadata_pause() -> tuple[Approval, Approval]:
        return pause_flow_run(Approval, timeout=60), pause_flow_run(
            Approval, timeout=60, key="final"
        )

    thread, box = start(metadata_pause)
    first = waiting(engine, "metadata-pause")
    resume_flow_run(first.run_id, {"approved": True})
    wait_for(lambda: (p := engine.waiting_pause(first.run_id)) and p.key == "final")
    resume_flow_run(first.run_id, {"approved": False})
    thread.join(10)
    answer, final = box["result"]
    assert answer.metadata == RunInputMetadata(key="1", sender=None, receiver=first.run_id)
    assert final.metadata == RunInputMetadata(key="final", sender=None, receiver=first.run_id)
    # Where it came from is not what it is: the answer equals the model made by hand.
    assert (answer, answer.model_dump()) == (Approval(approved=True), {"approved": True})
    with pytest.raises(AttributeError, match=r"^Approval.metadata: only an answer that "):
        Approval(approved=True).metadata  # noqa: B018 - the access is the test


@flow(name="metadata-suspend")
def metadata_suspend() -> RunInputMetadata:
    return suspend_flow_run(Approval).metadata


def test_a_suspended_or_async_answer_has_metadata_too(engine: Engine) -> None:
    with pytest.raises(RunSuspended) as suspended:
        metadata_suspend()
    run_id = suspended.value.run_id
    resume_flow_run(run_id, {"approved": True})
    worker = Worker(engine)  # the re-run, which gets the stored answer back
    worker.start()
    try:
        done = wait_for(lambda: (r := engine.get_run(run_id)).state.is_final and r)
    finally:
        worker.stop()
    assert (done.state, done.result) == (
        RunState.COMPLETED,
        f"RunInputMetadata(key='1', sender=None, receiver='{run_id}')",
    )

    @flow(name="metadata-async")
    async def metadata_async() -> list[RunInputMetadata]:
        paused = await pause_flow_run(Approval, timeout=60)
        explicit = await apause_flow_run(Approval, timeout=60, key="twin")
        return [paused.metadata, explicit.metadata]

    thread, box = start(lambda: asyncio.run(metadata_async()))
    pause = waiting(engine, "metadata-async")
    resume_flow_run(pause.run_id, {"approved": True})
    wait_for(lambda: (p := engine.waiting_pause(pause.run_id)) and p.key == "twin")
    resume_flow_run(pause.run_id, {"approved": True})
    thread.join(10)
    assert [(m.key, m.receiver) for m in box["result"]] == [
        ("1", pause.run_id),
        ("twin", pause.run_id),
    ]


def test_each_answer_of_a_quorum_has_metadata(engine: Engine) -> None:
    @flow(name="metadata-quorum")
    def metadata_quorum() -> list[RunInputMetadata]:
        return [a.value.metadata for a in pause_flow_run(Approval, timeout=60, quorum=2)]

    thread, box = start(metadata_quorum)
    pause = waiting(engine, "metadata-quorum")
    resume_flow_run(pause.run_id, {"approved": True}, responder="alice")
    resume_flow_run(pause.run_id, {"approved": False}, responder="bob")
    thread.join(10)
    assert box == {"result": [RunInputMetadata("1", None, pause.run_id)] * 2}


class Note(RunInput):
    metadata: str


def test_a_field_named_metadata_is_the_field() -> None:
    assert Note(metadata="from the form").metadata == "from the form"
