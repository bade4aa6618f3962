"""A new durable consumer made with a backlog steps past a waiting question whose event
was edited outside Signoff: it hears the other questions, in order, then what happens
after, and the one that cannot be read is said once. Nothing stored is changed."""

from __future__ import annotations

import logging
import threading

import pytest
from sqlalchemy import text

from signoff.engine import Engine, Event, EventKind, RunSuspended, flow, suspend_flow_run
from signoff.engine.events import DurableConsumer
from tests.engine.test_poison_events import stored
from tests.support.stores import on_each_store
from tests.support.waiting import wait_for

#: ``{"key": "go", "x": "`` + a byte that is not UTF-8 + ``"}``: JSON, but not text
_NOT_UTF8_INSIDE = "7b226b6579223a2022676f222c202278223a2022" + "c3" + "227d"
#: (column, value as SQL, whether PostgreSQL can store it, whether the consumer says so:
#: data that is JSON but not an object names no pause, so it is in no backlog)
EDITS = {
    "data-not-json": ("data", "'{not json'", False, True),
    "data-not-utf8": ("data", "CAST(X'C3' AS TEXT)", False, True),
    "text-in-data-not-utf8": ("data", f"CAST(X'{_NOT_UTF8_INSIDE}' AS TEXT)", False, True),
    "at-not-a-time": ("at", "'yesterday'", False, True),
    "data-a-list": ("data", "'[1, 2]'", True, False),
    "data-a-string": ("data", "'\"yes\"'", True, False),
}


@flow(name="corrupt-backlog-asks")
def corrupt_backlog_asks() -> bool:
    return suspend_flow_run(wait_for_input=bool, key="go", timeout=600)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Event] = []
        self.lock = threading.Lock()

    def on_event(self, event: Event) -> None:
        with self.lock:
            self.seen.append(event)

    def questions(self) -> list[str]:
        with self.lock:
            return [e.run_id for e in self.seen if e.kind is EventKind.WAITING_FOR_INPUT]


def suspended() -> str:
    with pytest.raises(RunSuspended) as raised:
        corrupt_backlog_asks()
    return raised.value.run_id


def question(engine: Engine, run_id: str) -> int:
    with engine.store.engine.begin() as conn:
        return int(
            conn.execute(
                text("SELECT id FROM events WHERE run_id = :r AND kind = 'waiting_for_input'"),
                {"r": run_id},
            ).scalar_one()
        )


def said(caplog: pytest.LogCaptureFixture, row: int) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if getattr(r, "action", "") == "event_unreadable"
        and getattr(r, "event_id", 0) == row
        and getattr(r, "reader", "").startswith("consumer corrupt-backlog-slack")
    ]


@pytest.mark.parametrize(
    ("database_url", "edit"),
    on_each_store(EDITS, on_postgres=lambda edit: EDITS[edit][2]),
    indirect=["database_url"],
)
def test_a_new_consumer_hears_the_readable_questions_waiting_past_a_corrupt_one(
    engine: Engine, database_url: str, edit: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    column, value, _on_postgres, says = EDITS[edit]
    first, bad, last = suspended(), suspended(), suspended()
    row = question(engine, bad)
    # This process's reader of every event has read it already, as it was.
    newest = engine.store.last_event_id()
    wait_for(lambda: engine.dispatcher.position >= newest, what="the dispatcher")
    if column == "data" and not database_url.startswith("sqlite"):
        value = f"CAST({value} AS json)"
    with engine.store.engine.begin() as conn:
        conn.execute(text(f"UPDATE events SET {column} = {value} WHERE id = :r"), {"r": row})
    before = stored(engine, row)

    heard = Recorder()
    consumer = engine.subscribe("corrupt-backlog-slack", heard, backlog=10)
    wait_for(lambda: len(heard.questions()) == 2, what="the readable questions")
    assert heard.questions() == [first, last]
    # What happens after still comes, after them.
    later = suspended()
    wait_for(lambda: later in heard.questions(), what="a question asked after")
    assert heard.questions() == [first, last, later]
    ids = [e.id for e in heard.seen]
    assert ids[:2] == sorted(ids[:2]) and row not in ids
    # The cursor is stored once the observer has taken the event: wait for it.
    wait_for(
        lambda: consumer.position is not None and consumer.position >= ids[-1],
        what="the cursor past the last event heard",
    )
    # Said once, with the event and its run, never its payload.
    logged = said(caplog, row)
    assert len(logged) == (1 if says else 0), [r.getMessage() for r in logged]
    for record in logged:
        assert record.levelno >= logging.WARNING and record.run_id == bad
        assert str(row) in record.getMessage() and bad in record.getMessage()
        assert "not json" not in record.getMessage()
    assert stored(engine, row) == before  # reading changed nothing


# SQLite only: PostgreSQL cannot hold either edit.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("edit", ["data-not-json", "at-not-a-time"])
def test_a_backlog_read_one_question_at_a_time_steps_past_a_corrupt_one_once(
    engine: Engine,
    database_url: str,
    edit: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pages of one: a page may hold only the row stepped past; the backlog moves past it."""
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(DurableConsumer, "BATCH", 1)
    column, value, _, _ = EDITS[edit]
    first, bad, last = suspended(), suspended(), suspended()
    row = question(engine, bad)
    newest = engine.store.last_event_id()
    wait_for(lambda: engine.dispatcher.position >= newest, what="the dispatcher")
    with engine.store.engine.begin() as conn:
        conn.execute(text(f"UPDATE events SET {column} = {value} WHERE id = :r"), {"r": row})
    heard = Recorder()
    engine.subscribe("corrupt-backlog-slack", heard, backlog=10)
    wait_for(lambda: len(heard.questions()) == 2, what="the readable questions")
    later = suspended()
    wait_for(lambda: later in heard.questions(), what="a question asked after")
    assert heard.questions() == [first, last, later]
    assert len(said(caplog, row)) == 1


#: (column, value as SQL, whether PostgreSQL can store it)
PAUSE_EDITS = {
    "approvers-a-number": ("approvers", "'7'", True),
    "deadline-not-a-time": ("deadline", "'0 days'", False),
    "title-not-utf8": ("title", "CAST(X'C3' AS TEXT)", False),
}


@pytest.mark.parametrize(
    ("database_url", "edit"),
    on_each_store(PAUSE_EDITS, on_postgres=lambda edit: PAUSE_EDITS[edit][2]),
    indirect=["database_url"],
)
def test_a_corrupt_pause_does_not_fail_the_backlog(
    engine: Engine, database_url: str, edit: str
) -> None:
    """The backlog reads only the events (a pause's columns are compared in SQL, never
    decoded): a pause edited outside Signoff still has its question handed on, for the
    observer, reading the pause, to meet ``RunUnreadable`` naming it."""
    column, value, _on_postgres = PAUSE_EDITS[edit]
    if column == "approvers" and not database_url.startswith("sqlite"):
        value = f"CAST({value} AS json)"
    first, bad, last = suspended(), suspended(), suspended()
    with engine.store.engine.begin() as conn:
        conn.execute(text(f"UPDATE pauses SET {column} = {value} WHERE run_id = :r"), {"r": bad})
    heard = Recorder()
    engine.subscribe("corrupt-backlog-pause", heard, backlog=10)
    wait_for(lambda: len(heard.questions()) == 3, what="the questions")
    assert heard.questions() == [first, bad, last]
