"""A claim bounded in time (``claim_once(within=)``) says the database is busy, rather than
wait, while another writer holds it; and the writers queued behind it are served after."""

from __future__ import annotations

import threading
import time

import pytest

from signoff.engine import DatabaseBusy, Engine
from tests.support.holding import writes_held
from tests.support.running import start
from tests.support.waiting import wait_for


def test_a_bounded_claim_is_refused_while_another_writer_holds_the_database(
    engine: Engine, database_url: str
) -> None:
    """It waited for as long as the other writer wrote (an upgrade, a busy replica)."""
    with writes_held(database_url, table="once_keys"):
        started = time.monotonic()
        with pytest.raises(DatabaseBusy) as busy:
            engine.claim_once("request:abc", 60, within=0.3)
        assert time.monotonic() - started < 2.0
        assert busy.value.key == "request:abc"
        # A writer with no bound waits its turn, and gets it once the other is done.
        thread, claimed = start(engine.claim_once, "request:other", 60)
    thread.join(30)
    assert claimed == {"result": True}
    # Nothing was claimed by the claim refused: it can be claimed now, once.
    assert engine.claim_once("request:abc", 60, within=0.3) is True
    assert engine.claim_once("request:abc", 60, within=0.3) is False


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_claim_that_gave_up_leaves_the_queue_to_the_writers_behind_it(engine: Engine) -> None:
    """A thread of this process holding the write turn: the bounded claim queued behind it
    gives up, and the writer queued after it still gets the turn when it frees."""
    writer = engine.store.writer
    assert writer is not None
    holding, free = threading.Event(), threading.Event()

    def hold() -> None:
        with writer.turn():
            holding.set()
            free.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(30)
    try:
        gave_up, gave_up_box = start(lambda: engine.claim_once("a", 60, within=0.5))
        wait_for(writer._threads.waiting, what="the bounded claim queued for the turn")
        after, after_box = start(engine.claim_once, "b", 60)  # queued behind it
        gave_up.join(30)
        assert isinstance(gave_up_box.get("error"), DatabaseBusy)
    finally:
        free.set()
    after.join(30)
    assert after_box == {"result": True}
    assert engine.claim_once("a", 60, within=0.5) is True
