"""An events row edited outside Signoff (data not JSON, nor of its shape, a time that is
not one, text that is not UTF-8, a kind that is none): every reader steps past it, says so
once, and still hands on the events after it, in order. Nothing stored is changed."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from signoff.engine import Engine, Event, EventKind, flow, pause_flow_run
from tests.support.running import start, waiting
from tests.support.stores import on_each_store
from tests.support.waiting import wait_for

#: (kind, data, at) as SQL, and whether PostgreSQL can store it (it refuses non-JSON in a
#: json column, and text that is not UTF-8)
POISONS = {
    "data-not-json": ("'input_received'", "'{not json'", "CURRENT_TIMESTAMP", False),
    "state-not-json": ("'state_changed'", "'{not json'", "CURRENT_TIMESTAMP", False),
    "data-a-list": ("'input_received'", "'[1, 2]'", "CURRENT_TIMESTAMP", True),
    "data-a-string": ("'input_received'", "'\"yes\"'", "CURRENT_TIMESTAMP", True),
    "kind-none": ("'exploded'", "'{}'", "CURRENT_TIMESTAMP", True),
    "at-not-a-time": ("'input_received'", "'{}'", "'yesterday'", False),
    "data-not-utf8": ("'input_received'", "CAST(X'C3' AS TEXT)", "CURRENT_TIMESTAMP", False),
}
POISONED_RUN = "0" * 31 + "1"


def poison(engine: Engine, database_url: str, name: str) -> int:
    """Store the poison event ``name`` as an edit outside Signoff would; its id."""
    kind, data, at, _on_postgres = POISONS[name]
    if not database_url.startswith("sqlite"):
        data = f"CAST({data} AS json)"
    with engine.store.engine.begin() as conn:
        return int(
            conn.execute(
                text(
                    f"INSERT INTO events (run_id, kind, data, at) "
                    f"VALUES (:run, {kind}, {data}, {at}) RETURNING id"
                ),
                {"run": POISONED_RUN},
            ).scalar_one()
        )


def stored(engine: Engine, row: int) -> object:
    as_ = "BLOB" if engine.store.is_sqlite else "TEXT"
    with engine.store.engine.begin() as conn:
        return conn.execute(
            text(f"SELECT CAST(data AS {as_}), kind, CAST(at AS TEXT) FROM events WHERE id = :r"),
            {"r": row},
        ).one()


def said(caplog: pytest.LogCaptureFixture, row: int) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if getattr(r, "action", "") == "event_unreadable" and getattr(r, "event_id", 0) == row
    ]


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.seen.append(event)


@flow(name="poison-event-ask")
def poison_event_ask() -> bool:
    return pause_flow_run(wait_for_input=bool, timeout=60)


@pytest.mark.parametrize(
    ("database_url", "name"),
    on_each_store(POISONS, on_postgres=lambda name: POISONS[name][3]),
    indirect=["database_url"],
)
def test_a_flow_waiting_elsewhere_gets_its_answer_past_a_poison_event(
    engine: Engine, make_engine, database_url: str, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    observer = Recorder()  # this process reads every event; the other, what it acts on
    engine.add_observer(observer)
    thread, box = start(poison_event_ask)
    pause = waiting(engine)
    other = make_engine()  # another process, which reads the poison event too
    row = poison(engine, database_url, name)
    before = stored(engine, row)
    other.resume(pause.run_id, {"value": True}, "dana")
    thread.join(10)
    assert box.get("result") is True
    wait_for(lambda: any(e.data.get("state") == "completed" for e in observer.seen))
    ids = [e.id for e in observer.seen]
    assert ids == sorted(ids) and row not in ids and max(ids) > row
    # Each process's reader said it once, naming the event and its run, not its payload
    # (a kind that is none is not what the other process acts on: it reads no such row).
    readers = 1 if name == "kind-none" else 2
    wait_for(lambda: len(said(caplog, row)) >= readers, what="each reader to say so")
    logged = said(caplog, row)
    assert len(logged) == readers, [r.getMessage() for r in logged]
    for record in logged:
        assert record.levelno >= logging.WARNING and record.run_id == POISONED_RUN
        assert str(row) in record.getMessage() and POISONED_RUN in record.getMessage()
        assert "not json" not in record.getMessage()
    # Later events still come, and the poison event is not said again.
    again = other.store.last_event_id()
    wait_for(lambda: engine.dispatcher.position >= again and other.dispatcher.position >= again)
    assert len(said(caplog, row)) == readers
    assert [r.levelname for r in caplog.records if "event_read_failed" in str(r.__dict__)] == []
    assert stored(engine, row) == before  # reading changed nothing


@pytest.mark.parametrize(
    ("database_url", "name"),
    on_each_store(POISONS, on_postgres=lambda name: POISONS[name][3]),
    indirect=["database_url"],
)
def test_a_durable_consumer_gets_the_events_after_a_poison_event_in_order(
    engine: Engine, database_url: str, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    recorder = Recorder()
    consumer = engine.subscribe("poison-consumer", recorder)
    wait_for(lambda: consumer.position is not None, what="the lease")
    row = poison(engine, database_url, name)
    thread, box = start(poison_event_ask)
    pause = waiting(engine)
    engine.resume(pause.run_id, {"value": True}, "dana")
    thread.join(10)
    assert box.get("result") is True
    wait_for(
        lambda: any(e.data.get("state") == "completed" for e in recorder.seen),
        what="the run's events, after the poison event",
    )
    kinds = [(e.kind, e.data.get("state")) for e in recorder.seen]
    assert kinds[:3] == [
        (EventKind.STATE_CHANGED, "running"),
        (EventKind.STATE_CHANGED, "paused"),
        (EventKind.WAITING_FOR_INPUT, None),
    ]
    ids = [e.id for e in recorder.seen]
    assert ids == sorted(ids) and min(ids) > row
    assert {e.run_id for e in recorder.seen} == {pause.run_id}
    # Skipped, and the cursor moved past it: the consumer said so once, and reads it no more.
    consumer_said = [r for r in said(caplog, row) if r.reader == "consumer poison-consumer"]
    assert len(consumer_said) == 1, [r.getMessage() for r in said(caplog, row)]
    wait_for(lambda: consumer.position == max(ids), what="the cursor past every event")
