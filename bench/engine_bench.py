"""Engine benchmarks: resume latency, flow overhead, memory per waiting run.

Usage::

    python bench/engine_bench.py                     # SQLite and PostgreSQL
    python bench/engine_bench.py --store postgresql  # one of them

Prints a Markdown table; the README quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from engine import (
    Engine,
    EngineSettings,
    RunState,
    RunSuspended,
    flow,
    pause_flow_run,
    resume_flow_run,
    set_engine,
    suspend_flow_run,
    task,
)

MARKS: dict[str, float] = {}


@task
def step(i: int) -> int:
    return i


@flow
def noop() -> None:
    return None


@flow
def ten_tasks() -> int:
    return sum(step(i) for i in range(10))


@flow
def wait_once(tag: str) -> None:
    pause_flow_run()
    MARKS[tag] = time.perf_counter()


@flow
async def wait_once_async(tag: str) -> None:
    await pause_flow_run()
    MARKS[tag] = time.perf_counter()


@flow
def suspend_once() -> None:
    suspend_flow_run()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def wait_paused(engine: Engine, count: int) -> list[str]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        runs = engine.list_runs([RunState.PAUSED], limit=count + 10)
        if len(runs) >= count:
            return [r.id for r in runs]
        time.sleep(0.002)
    raise TimeoutError("runs did not pause")


def same_process_latency(engine: Engine, rounds: int) -> list[float]:
    out = []
    for i in range(rounds):
        tag = f"s{i}"
        thread = threading.Thread(target=wait_once, args=(tag,))
        thread.start()
        (run_id,) = wait_paused(engine, 1)[:1]
        start = time.perf_counter()
        resume_flow_run(run_id)
        thread.join()
        out.append(MARKS[tag] - start)
    return out


def burst_latency(engine: Engine, n: int) -> list[float]:
    threads = [threading.Thread(target=wait_once, args=(f"b{i}",)) for i in range(n)]
    for t in threads:
        t.start()
    ids = wait_paused(engine, n)
    starts = {}
    for run_id in ids:
        starts[run_id] = time.perf_counter()
        resume_flow_run(run_id)
    for t in threads:
        t.join()
    # Each run's own latency: from its resume call to its flow's next line.
    return [MARKS[engine.get_run(rid).parameters["tag"]] - start for rid, start in starts.items()]


CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from engine import flow, pause_flow_run
    @flow
    def remote_wait():
        pause_flow_run()
        print(time.time(), flush=True)
    for _ in range({rounds}):
        remote_wait()
    """
)


def cross_process_latency(engine: Engine, url: str, rounds: int) -> list[float]:
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "SIGNOFF_DATABASE_URL": url}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=root, rounds=rounds)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    out = []
    seen: set[str] = set()
    for _ in range(rounds):
        while True:
            runs = [r for r in engine.list_runs([RunState.PAUSED], limit=5) if r.id not in seen]
            if runs:
                break
            time.sleep(0.002)
        seen.add(runs[0].id)
        start = time.time()
        resume_flow_run(runs[0].id)
        woke = float(child.stdout.readline())
        out.append(woke - start)
    child.wait()
    return out


def overhead(fn, rounds: int) -> list[float]:
    fn()
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def memory_async(engine: Engine, n: int) -> float:
    async def main() -> float:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        tasks = [asyncio.ensure_future(wait_once_async(f"m{i}")) for i in range(n)]
        await asyncio.to_thread(wait_paused, engine, n)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        for run in engine.list_runs([RunState.PAUSED], limit=n + 10):
            resume_flow_run(run.id)
        await asyncio.gather(*tasks)
        return used / n / 1024

    return asyncio.run(main())


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory_sync(engine: Engine, n: int) -> float:
    gc.collect()
    before = rss_kib()
    threads = [threading.Thread(target=wait_once, args=(f"t{i}",)) for i in range(n)]
    for t in threads:
        t.start()
    wait_paused(engine, n)
    used = rss_kib() - before
    for run in engine.list_runs([RunState.PAUSED], limit=n + 10):
        resume_flow_run(run.id)
    for t in threads:
        t.join()
    return used / n


def suspended_bytes(engine: Engine, n: int) -> float:
    gc.collect()
    before = rss_kib()
    for _ in range(n):
        with contextlib.suppress(RunSuspended):
            suspend_once()
    gc.collect()
    return (rss_kib() - before) / n


def bench(label: str, url: str, rounds: int) -> list[str]:
    engine = Engine(EngineSettings.load(database_url=url))
    set_engine(engine)
    rows = []
    try:
        same = same_process_latency(engine, rounds)
        rows.append(
            f"| {label} | resume → next line, same process | p50 {pct(same, 0.5):.2f} ms, p95 {pct(same, 0.95):.2f} ms |"
        )
        burst = burst_latency(engine, 100)
        rows.append(
            f"| {label} | 100 runs resumed at once | p50 {pct(burst, 0.5):.2f} ms, p95 {pct(burst, 0.95):.2f} ms |"
        )
        cross = cross_process_latency(engine, url, max(10, rounds // 5))
        rows.append(
            f"| {label} | resume → next line, other process | p50 {pct(cross, 0.5):.2f} ms, p95 {pct(cross, 0.95):.2f} ms |"
        )
        nop = overhead(noop, rounds)
        rows.append(f"| {label} | no-op flow | p50 {pct(nop, 0.5):.2f} ms |")
        ten = overhead(ten_tasks, rounds)
        rows.append(f"| {label} | flow with 10 tasks | p50 {pct(ten, 0.5):.2f} ms |")
        rows.append(
            f"| {label} | memory per waiting async pause (1,000 waiting) | {memory_async(engine, 1000):.1f} KiB |"
        )
        rows.append(
            f"| {label} | memory per waiting sync pause (1,000 waiting) | {memory_sync(engine, 1000):.1f} KiB |"
        )
        rows.append(
            f"| {label} | process memory per suspended run (1,000 suspended) | {suspended_bytes(engine, 1000):.2f} KiB |"
        )
    finally:
        set_engine(None)
        engine.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    rows = ["| store | measure | result |", "|---|---|---|"]
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            rows += bench("SQLite", f"sqlite:///{tmp}/bench.db", args.rounds)
    if args.store in ("postgresql", "both"):
        from tests.support.postgres import start_cluster

        cluster = start_cluster()
        try:
            rows += bench("PostgreSQL", cluster.url(), args.rounds)
        finally:
            cluster.stop()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
