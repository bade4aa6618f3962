"""Signoff's benchmark scenarios; each runs in a fresh process and prints one JSON line.

Usage: python bench/scenarios.py SCENARIO DATABASE_URL [--count N]

Scenarios (latency = wall-clock from the resume call to the flow's line after its pause):

- ``cold``: one run in a fresh process, its first resume.
- ``warm``: one run at a time in the same process, 50 rounds.
- ``burst``: N sync flows waiting in this process (a thread each), 8 resumer threads.
- ``burst-async``: N async flows waiting on one event loop, 8 resumer threads.
- ``worker``: N runs waiting in a ``signoff worker`` process, resumed from this one by 8
  threads (``--resumers``); also the worker's idle CPU and RSS growth per waiting run,
  one-at-a-time cross-process resumes, and the server sessions the resumes opened.
- ``throughput``: N runs that each start, pause, get resumed and complete, with
  ``--workers`` worker processes.
- ``memory-async``: RSS growth per waiting async run with N waiting.
- ``overhead``: a no-op flow and a flow with 10 tasks, and process memory per suspended run.
- ``listing``: N suspended runs stored; time to list the first page and a later page.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy

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
    RunSuspended,
    resume_flow_run,
    set_engine,
    suspend_flow_run,
)
from signoff.engine import flow as flow_decorator  # noqa: E402

RESUMERS = 8


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


def wait_until(condition: Callable[[], bool], timeout: float = 600, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.005)


class Paused:
    """Collects the ids of runs that start waiting for input, from the engine's events."""

    def __init__(self, engine: Engine) -> None:
        self.ids: list[str] = []
        self.done: set[str] = set()
        self._lock = threading.Lock()
        self.arrived = threading.Condition(self._lock)
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


def by_tag(engine: Engine, starts: dict[str, float]) -> dict[str, float]:
    return {engine.get_run(rid).parameters["tag"]: at for rid, at in starts.items()}


def latencies(starts_by_tag: dict[str, float], marks: dict[str, float]) -> list[float]:
    return [marks[tag] - start for tag, start in starts_by_tag.items()]


# -- in this process ----------------------------------------------------------------------


def cold(url: str, _count: int) -> dict[str, object]:
    with engine_on(url) as engine:
        paused = Paused(engine)
        thread = threading.Thread(target=flows.wait_once, args=("cold",))
        thread.start()
        (run_id,) = paused.wait_for(1)
        began = time.time()
        resume_flow_run(run_id, flows.ANSWER, "bench")
        thread.join()
        return {"latencies": [flows.MARKS["cold"] - began]}


def warm(url: str, count: int) -> dict[str, object]:
    out = []
    with engine_on(url) as engine:
        paused = Paused(engine)
        for i in range(count + 1):
            tag = f"warm-{i}"
            thread = threading.Thread(target=flows.wait_once, args=(tag,))
            thread.start()
            run_id = paused.wait_for(i + 1)[i]
            began = time.time()
            resume_flow_run(run_id, flows.ANSWER, "bench")
            thread.join()
            if i:  # the first round is the cold one
                out.append(flows.MARKS[tag] - began)
    return {"latencies": out}


def burst(url: str, count: int) -> dict[str, object]:
    with engine_on(url) as engine:
        paused = Paused(engine)
        gc.collect()
        before = rss_kib()
        threads = [threading.Thread(target=flows.wait_once, args=(f"b{i}",)) for i in range(count)]
        for thread in threads:
            thread.start()
        ids = paused.wait_for(count)
        grown = rss_kib() - before
        starts = by_tag(engine, resume_all(ids))
        for thread in threads:
            thread.join()
        return {"latencies": latencies(starts, flows.MARKS), "rss_kib_per_run": grown / count}


def burst_async(url: str, count: int) -> dict[str, object]:
    with engine_on(url) as engine:
        paused = Paused(engine)

        async def main() -> dict[str, object]:
            gc.collect()
            before = rss_kib()
            tasks = [asyncio.ensure_future(flows.wait_once_async(f"a{i}")) for i in range(count)]
            ids = await asyncio.to_thread(paused.wait_for, count)
            grown = rss_kib() - before
            starts = await asyncio.to_thread(resume_all, ids)
            await asyncio.gather(*tasks)
            return {
                "latencies": latencies(by_tag(engine, starts), flows.MARKS),
                "rss_kib_per_run": grown / count,
            }

        return asyncio.run(main())


def memory_async(url: str, count: int) -> dict[str, object]:
    with engine_on(url) as engine:
        paused = Paused(engine)

        async def main() -> dict[str, object]:
            gc.collect()
            before = rss_kib()
            began = time.perf_counter()
            tasks = [asyncio.ensure_future(flows.wait_once_async(f"m{i}")) for i in range(count)]
            ids = await asyncio.to_thread(paused.wait_for, count)
            waiting_after = time.perf_counter() - began
            gc.collect()
            grown = rss_kib() - before
            began = time.perf_counter()
            await asyncio.to_thread(resume_all, ids)
            await asyncio.gather(*tasks)
            return {
                "rss_kib_per_run": grown / count,
                "all_waiting_after_s": waiting_after,
                "all_resumed_after_s": time.perf_counter() - began,
            }

        return asyncio.run(main())


@flow_decorator(name="bench-suspend")
def suspend_once() -> None:
    suspend_flow_run(wait_for_input=flows.Approval)


def overhead(url: str, count: int) -> dict[str, object]:
    def timed(fn: Callable[[], object]) -> list[float]:
        fn()
        out = []
        for _ in range(count):
            began = time.perf_counter()
            fn()
            out.append(time.perf_counter() - began)
        return out

    def suspend_many() -> None:
        for _ in range(1000):
            with contextlib.suppress(RunSuspended):
                suspend_once()

    with engine_on(url):
        noop = timed(flows.noop)
        ten = timed(flows.ten_tasks)
        # The first thousand fill bounded caches (SQLite's page cache grows with the file up
        # to its 2 MiB); what a suspended run costs is the growth over the next thousand.
        suspend_many()
        gc.collect()
        before = rss_kib()
        suspend_many()
        gc.collect()
        per_suspended = (rss_kib() - before) / 1000
    return {"noop": noop, "ten_tasks": ten, "rss_kib_per_suspended_run": per_suspended}


# -- across processes ---------------------------------------------------------------------


class WorkerProcess:
    """A ``signoff worker`` in its own process, running the bench flows."""

    def __init__(self, url: str, marks: Path) -> None:
        env = {**os.environ, "SIGNOFF_DATABASE_URL": url, "BENCH_MARKS": str(marks)}
        # A file, not a pipe: nobody reads a pipe here, and once its 64 KiB fill with the
        # worker's log lines every thread that logs blocks (1,000 runs did it).
        self.log = marks.with_name(f"worker-{os.getpid()}-{id(self)}.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from signoff.bot.cli.main import main; sys.exit(main())",
                "worker",
                "--flows",
                str(ROOT / "bench" / "flows.py"),
            ],
            env=env,
            cwd=str(ROOT),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def read_marks(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    marks = {}
    for line in path.read_text().splitlines():
        tag, at = line.split()
        marks[tag] = float(at)
    return marks


def worker_alive(engine: Engine) -> bool:
    return len(engine.store.live_processes(engine.settings.owner_timeout_seconds)) >= 1


def worker(
    url: str, count: int, idle_seconds: float = 10.0, resumers: int = RESUMERS
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, engine_on(url) as engine:
        marks = Path(tmp) / "marks"
        paused = Paused(engine)
        proc = WorkerProcess(url, marks)
        try:
            wait_until(lambda: worker_alive(engine), 60, "the worker to start")
            time.sleep(1.0)  # let its start-up work finish before judging it idle
            cpu_before, wall_before = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(idle_seconds)
            idle = (cpu_seconds(proc.pid) - cpu_before) / (time.monotonic() - wall_before)

            # One at a time: the cross-process wake-up alone.
            single = []
            for i in range(30):
                tag = f"one-{i}"
                engine.submit("bench-wait", {"tag": tag})
                run_id = paused.wait_for(i + 1)[i]
                began = time.time()
                resume_flow_run(run_id, flows.ANSWER, "bench")
                wait_until(lambda tag=tag: tag in read_marks(marks), 30, "the worker's mark")
                single.append(read_marks(marks)[tag] - began)

            before = rss_kib(proc.pid)
            first = len(paused.ids)
            for i in range(count):
                engine.submit("bench-wait", {"tag": f"w{i}"})
            ids = paused.wait_for(first + count)[first:]
            grown = rss_kib(proc.pid) - before
            opened: list[object] = []  # each a new server session on PostgreSQL
            sqlalchemy.event.listen(
                engine.store.engine.pool, "connect", lambda *_: opened.append(1)
            )
            starts = by_tag(engine, resume_all(ids, resumers))
            wait_until(lambda: len(read_marks(marks)) >= 30 + count, 120, "every mark")
            return {
                "latencies": latencies(starts, read_marks(marks)),
                "single": single,
                "idle_cpu_share": idle,
                "rss_kib_per_run": grown / count,
                "sessions_opened": len(opened),
                "pool_size": engine.settings.pool_size,
            }
        finally:
            proc.stop()


def throughput(url: str, count: int, workers: int = 1) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, engine_on(url) as engine:
        marks = Path(tmp) / "marks"
        paused = Paused(engine)
        procs = [WorkerProcess(url, marks) for _ in range(workers)]
        try:
            wait_until(
                lambda: len(engine.store.live_processes(60)) >= workers, 60, "workers to start"
            )
            time.sleep(0.5)
            began = time.perf_counter()
            stop = threading.Event()
            resumed: set[str] = set()

            def resumer(index: int) -> None:
                # Each resumer answers every 8th run that pauses, as soon as it pauses.
                seen = 0
                while not stop.is_set():
                    with paused.arrived:
                        paused.arrived.wait_for(
                            lambda seen=seen: len(paused.ids) > seen or stop.is_set()
                        )
                        fresh = paused.ids[seen:]
                    seen += len(fresh)
                    for run_id in fresh:
                        if hash(run_id) % RESUMERS == index and run_id not in resumed:
                            resumed.add(run_id)
                            resume_flow_run(run_id, flows.ANSWER, "bench")

            pool = [threading.Thread(target=resumer, args=(i,)) for i in range(RESUMERS)]
            for thread in pool:
                thread.start()
            for i in range(count):
                engine.submit("bench-wait", {"tag": f"t{i}"})
            with paused.arrived:
                finished = paused.arrived.wait_for(lambda: len(paused.done) >= count, 600)
            elapsed = time.perf_counter() - began
            stop.set()
            with paused.arrived:
                paused.arrived.notify_all()
            for thread in pool:
                thread.join()
            if not finished:
                raise TimeoutError(f"only {len(paused.done)} of {count} runs completed")
            return {"seconds": elapsed, "runs": count, "workers": workers}
        finally:
            for proc in procs:
                proc.stop()


# -- scale --------------------------------------------------------------------------------


def listing(url: str, count: int) -> dict[str, object]:
    """Store ``count`` suspended runs in bulk, then time listing them page by page."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from signoff.engine.store.sql import RUNS

    with engine_on(url) as engine:
        now = datetime.now(UTC)
        batch = 10_000
        with engine.store.engine.begin() as conn:
            for first in range(0, count, batch):
                conn.execute(
                    insert(RUNS),
                    [
                        {
                            "id": uuid.uuid4().hex,
                            "flow_name": "bench-wait",
                            "flow_ref": None,
                            "parameters": b"",
                            "parameters_json": {"tag": f"s{i}"},
                            "state": RunState.SUSPENDED.value,
                            "state_name": "Suspended",
                            "state_message": None,
                            "started_by": None,
                            "owner": None,
                            "result": None,
                            "tags": {},
                            "created_at": now - timedelta(seconds=i),
                            "updated_at": now - timedelta(seconds=i),
                        }
                        for i in range(first, min(count, first + batch))
                    ],
                )
        with engine.store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")  # what a database does by itself after a bulk load
        first_page, later_page = [], []
        for _ in range(20):
            began = time.perf_counter()
            page = engine.list_runs([RunState.SUSPENDED], limit=50)
            first_page.append(time.perf_counter() - began)
            began = time.perf_counter()
            for _ in range(10):
                page = engine.list_runs([RunState.SUSPENDED], limit=50, before=page[-1])
            later_page.append((time.perf_counter() - began) / 10)
        return {"first_page": first_page, "later_page": later_page, "stored": count}


SCENARIOS: dict[str, Callable[..., dict[str, object]]] = {
    "cold": cold,
    "warm": warm,
    "burst": burst,
    "burst-async": burst_async,
    "memory-async": memory_async,
    "overhead": overhead,
    "worker": worker,
    "throughput": throughput,
    "listing": listing,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--resumers", type=int, default=RESUMERS)
    args = parser.parse_args()
    kwargs: dict[str, object] = {}
    if args.scenario == "throughput":
        kwargs["workers"] = args.workers
    if args.scenario == "worker":
        kwargs.update(idle_seconds=args.idle_seconds, resumers=args.resumers)
    result = SCENARIOS[args.scenario](args.url, args.count, **kwargs)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
