"""The SIGINT note async flows keep: it sees Ctrl-C, hands it on to the handler that was
there, and leaves the process's handlers as it found them (``engine.interrupts``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from signoff.engine import interrupts


@pytest.fixture
def heard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The process's own SIGINT handler, for the test: it records each signal it gets.
    What the note stands in front of is put back too, with the process's handler."""
    monkeypatch.setattr(interrupts, "_previous", interrupts._previous)
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
