"""What every benchmark scenario measures with: waiting runs collected from the engine's
events, the resumers, the latencies paired by tag, and a process's RSS and CPU time.

Example::

    with engine_on("sqlite:///bench.db") as engine:
        paused = Paused(engine)
        ...  # start runs that pause
        ids = paused.wait_for(100)
        tags = tags_of(engine, ids)
        starts = by_tag(tags, resume_all(ids))
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import flows  # noqa: E402
import peers.common  # noqa: E402  (the resumers the peers use too)

from signoff.engine import (  # noqa: E402
    Engine,
    EngineSettings,
    Event,
    EventKind,
    RunState,
    resume_flow_run,
    set_engine,
)

#: resumer threads, as the peers are measured
RESUMERS = 8
#: waits between checks every 5 ms: a check reads the worker's marks file
wait_until = functools.partial(peers.common.wait_until, every=0.005)


def rss_kib(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Paused:
    """Collects the ids of runs that start waiting for input, from the engine's events."""

    def __init__(self, engine: Engine) -> None:
        self.ids: list[str] = []
        self.done: set[str] = set()
        self._lock = threading.Lock()
        self.arrived = threading.Condition(self._lock)
        self._engine = engine
        engine.add_observer(self)

    def on_event(self, event: Event) -> None:
        with self.arrived:
            if event.kind is EventKind.WAITING_FOR_INPUT:
                self.ids.append(event.run_id)
            elif event.kind is EventKind.STATE_CHANGED and event.data.get("state") in (
                RunState.COMPLETED.value,
                RunState.FAILED.value,
                RunState.CRASHED.value,
            ):
                self.done.add(event.run_id)
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 600) -> list[str]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.ids) >= count, timeout):
                raise TimeoutError(f"only {len(self.ids)} of {count} runs paused")
            return list(self.ids)

    def detach(self) -> None:
        """Stop listening, once the ids are in hand: a process running flows need not offer
        every event to anyone (the peers' have no such listener), and while one listens,
        the engine reads every event, not just those it acts on (about 7% of a burst's CPU
        on SQLite)."""
        self._engine.remove_observer(self)


def resume_all(ids: list[str], threads: int = RESUMERS) -> dict[str, float]:
    """Resume every run from ``threads`` threads at once, as the peers are resumed; the
    wall-clock start of each call."""
    return peers.common.resume_all(
        ids, lambda run_id: resume_flow_run(run_id, flows.ANSWER, "bench"), threads
    )


@contextlib.contextmanager
def engine_on(url: str) -> Iterator[Engine]:
    engine = Engine(EngineSettings.load(database_url=url))
    set_engine(engine)
    try:
        yield engine
    finally:
        set_engine(None)
        engine.close()


def tags_of(engine: Engine, ids: list[str]) -> dict[str, str]:
    """Each run's tag, read before the resumes start: reading them after would put the
    bench's own queries beside the flows still finishing, in the measured window."""
    return {run_id: engine.get_run(run_id).parameters["tag"] for run_id in ids}


def by_tag(tags: dict[str, str], starts: dict[str, float]) -> dict[str, float]:
    return {tags[run_id]: at for run_id, at in starts.items()}
