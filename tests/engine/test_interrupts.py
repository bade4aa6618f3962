"""The SIGINT note async flows keep: it sees Ctrl-C, hands it on to the handler that was
there, and leaves the process's handlers as it found them (``engine.interrupts``)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from signoff.engine import Engine, PauseStatus, RunState, flow, interrupts, pause_flow_run
from tests.support.running import start
from tests.support.waiting import wait_for

pytestmark = pytest.mark.usefixtures("tasks_left_on_closed_loops_collected")


@pytest.fixture
def heard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The process's own SIGINT handler, for the test: it records each signal it gets.
    What the note stands in front of is put back too, with the process's handler. The test
    starts with no flow counted: one an earlier test left (its loop closed under it, as
    test_async_edges does) would be counted out at this test's first flow, after this
    handler replaced the note, which then reads as one that hands the signal on to it."""
    monkeypatch.setattr(interrupts, "_previous", None)
    monkeypatch.setattr(interrupts, "_watchers", {})
    monkeypatch.setattr(interrupts, "_ended_elsewhere", [])
    got: list[int] = []

    def record(signum: int, _frame: FrameType | None) -> None:
        got.append(signum)

    before = signal.signal(signal.SIGINT, record)
    try:
        yield got
    finally:
        signal.signal(signal.SIGINT, before)


def test_ctrl_c_is_noted_and_handed_on_while_a_flow_runs(heard: list[int]) -> None:
    handler = signal.getsignal(signal.SIGINT)
    with interrupts.watching():
        assert not interrupts.interrupted()
        signal.raise_signal(signal.SIGINT)
        assert interrupts.interrupted()
        assert heard == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is handler
    # Noted afresh for the next flow.
    with interrupts.watching():
        assert not interrupts.interrupted()


def test_flows_running_together_put_the_handler_back_when_the_last_ends(
    heard: list[int],
) -> None:
    handler = signal.getsignal(signal.SIGINT)
    first, second = interrupts.watching(), interrupts.watching()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert signal.getsignal(signal.SIGINT) is not handler  # the second still runs
    signal.raise_signal(signal.SIGINT)
    assert interrupts.interrupted() and heard == [signal.SIGINT]
    second.__exit__(None, None, None)
    assert signal.getsignal(signal.SIGINT) is handler


def test_a_handler_set_during_a_flow_stays_and_the_signal_goes_round_once(
    heard: list[int],
) -> None:
    """A handler set while the flow ran, which hands the signal on to the one it found,
    stays after the flow; Ctrl-C then reaches it, the note, and the first handler, each
    once (the note is not put in front of it again, to be handed the signal twice)."""
    later: list[int] = []
    with interrupts.watching():
        found = signal.getsignal(signal.SIGINT)
        assert callable(found)

        def chained(signum: int, frame: FrameType | None) -> None:
            later.append(signum)
            found(signum, frame)

        signal.signal(signal.SIGINT, chained)
    assert signal.getsignal(signal.SIGINT) is chained
    with interrupts.watching():  # the next flow: the later handler is not replaced
        assert signal.getsignal(signal.SIGINT) is chained
        signal.raise_signal(signal.SIGINT)
        assert interrupts.interrupted()
    assert (later, heard) == ([signal.SIGINT], [signal.SIGINT])


def test_outside_the_main_thread_nothing_is_touched(heard: list[int]) -> None:
    handler = signal.getsignal(signal.SIGINT)
    seen: list[object] = []

    def in_a_thread() -> None:
        with interrupts.watching():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join(10)
    assert seen == [handler]


def test_where_sigint_is_ignored_it_stays_ignored() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts.watching():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


#: lets the flow below end once the test has seen its pause end
_go_on = threading.Event()


@flow(name="gives-up-off-the-main-thread")
async def gives_up_off_the_main_thread() -> str:
    try:
        await asyncio.wait_for(pause_flow_run(int, timeout=60), 0.2)
    except TimeoutError:
        await asyncio.to_thread(_go_on.wait, 30)
        return "went on"
    return "answered"


def test_a_ctrl_c_noted_earlier_is_not_taken_for_one_by_a_flow_on_another_thread(
    engine: Engine, heard: list[int]
) -> None:
    """After a Ctrl-C the process caught and went on from, the note stayed set: a flow on
    another thread's loop (which Ctrl-C never cancels) took its own wait_for running out for
    Ctrl-C, and left its pause open while it went on."""
    with interrupts.watching():
        signal.raise_signal(signal.SIGINT)
    assert interrupts.interrupted() and heard == [signal.SIGINT]
    _go_on.clear()
    thread, box = start(lambda: asyncio.run(gives_up_off_the_main_thread()))
    try:
        run = wait_for(
            lambda: next(iter(engine.list_runs(flow_name="gives-up-off-the-main-thread")), None),
            10,
        )
        wait_for(
            lambda: (
                (pause := engine.get_pause(run.id, "1")) is not None
                and pause.status is PauseStatus.TIMED_OUT
                and engine.get_run(run.id).state is RunState.RUNNING
            ),
            10,
            "the pause the flow gave up on to end while it goes on",
        )
    finally:
        _go_on.set()
        thread.join(30)
    assert box == {"result": "went on"}


def test_a_flow_whose_loop_was_closed_under_it_counts_no_more(heard: list[int]) -> None:
    """A flow in the main thread whose event loop was closed under it never ends: it
    counted as running for good (until collected, on whatever thread), so the note of a
    Ctrl-C the process caught and went on from stayed set for every later flow, whose own
    wait_for running out then read as Ctrl-C (its pause left open), and the process's
    handler was never put back."""
    handler = signal.getsignal(signal.SIGINT)
    loop = asyncio.new_event_loop()
    inside = asyncio.Event()

    async def waits_for_good() -> None:
        with interrupts.watching():
            inside.set()
            await asyncio.Event().wait()

    try:
        left = loop.create_task(waits_for_good())
        loop.run_until_complete(inside.wait())
    finally:
        loop.close()
    with interrupts.watching():
        signal.raise_signal(signal.SIGINT)  # caught, and the process goes on
    assert heard == [signal.SIGINT]
    with interrupts.watching():
        assert not interrupts.interrupted()
    assert signal.getsignal(signal.SIGINT) is handler
    assert not left.done()  # kept: not collected (and counted no more) meanwhile
