"""Scenarios across processes: runs waiting in ``signoff worker`` processes, resumed from
the bench's process (``worker``), and runs started, resumed and completed through them
(``throughput``). Run through ``bench/scenarios.py``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import flows
import sqlalchemy
from measuring import (
    RESUMERS,
    ROOT,
    Paused,
    by_tag,
    cpu_seconds,
    engine_on,
    resume_all,
    rss_kib,
    tags_of,
    wait_until,
)
from peers.common import latencies

from signoff.engine import Engine, resume_flow_run


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
            tags = tags_of(engine, ids)
            starts = by_tag(tags, resume_all(ids, resumers))
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
