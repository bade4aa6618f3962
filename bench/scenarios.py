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

``worker`` and ``throughput`` live in ``worker_scenarios``; what every scenario measures
with (waiting runs collected from events, the resumers, RSS and CPU time) in ``measuring``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import flows
from measuring import (
    RESUMERS,
    Paused,
    by_tag,
    engine_on,
    resume_all,
    rss_kib,
    tags_of,
    wait_until,
)
from peers.common import latencies
from worker_scenarios import throughput, worker

from signoff.engine import (
    RunState,
    RunSuspended,
    resume_flow_run,
    suspend_flow_run,
)
from signoff.engine import flow as flow_decorator

# -- in this process ----------------------------------------------------------------------


def cold(url: str, _count: int) -> dict[str, object]:
    with engine_on(url) as engine:
        paused = Paused(engine)
        thread = threading.Thread(target=flows.wait_once, args=("cold",))
        thread.start()
        (run_id,) = paused.wait_for(1)
        paused.detach()
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
        paused.detach()
        grown = rss_kib() - before
        tags = tags_of(engine, ids)
        starts = by_tag(tags, resume_all(ids))
        # Every flow's line first, then the joins: joining a thread walks the locks of
        # every thread not yet joined (CPython's shutdown locks), about 4 ms of the
        # interpreter for 100 joins, which ran beside the last resumes, where the p95 is.
        wait_until(lambda: flows.MARKS.keys() >= starts.keys(), 60, "every flow's mark")
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
            paused.detach()
            grown = rss_kib() - before
            tags = tags_of(engine, ids)
            starts = await asyncio.to_thread(resume_all, ids)
            await asyncio.gather(*tasks)
            return {
                "latencies": latencies(by_tag(tags, starts), flows.MARKS),
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
    # As a service embedding the engine would: without it, the engine shows every run's
    # start, pause and end on stderr (``engine/console.py``), which is not what is measured.
    logging.basicConfig(level=logging.WARNING)
    kwargs: dict[str, object] = {}
    if args.scenario == "throughput":
        kwargs["workers"] = args.workers
    if args.scenario == "worker":
        kwargs.update(idle_seconds=args.idle_seconds, resumers=args.resumers)
    result = SCENARIOS[args.scenario](args.url, args.count, **kwargs)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
