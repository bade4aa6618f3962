"""Approvals benchmarks at scale: App Home rendering and publishing, and audit export.

A database is filled with RUNS runs (default 100,000) and one audit record per run (a
valid hash chain), plus a few hundred runs waiting for input. Then:

- *home render*: building one person's Home tab (its three bounded queries and blocks);
- *event to Home*: from a reassignment in the engine to the new approver's Home tab being
  published in the local Slack sandbox (the path a real event takes: outbox, durable
  consumer, notifier, ``views.publish``);
- *audit export*: ``Engine.export_audit`` (what ``signoff audit export`` runs) over every
  record as JSON lines, records per second, and the peak Python memory while exporting all
  records vs a tenth of them (flat means constant memory).

Usage::

    python bench/approvals_bench.py                       # SQLite, 100,000 runs
    python bench/approvals_bench.py --store postgresql --url postgresql://...

Prints a Markdown table; the README quotes it.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.slack.home import home_view
from signoff.bot.testing import running_bot
from signoff.engine import Engine, EngineSettings
from signoff.engine.audit import GENESIS, AuditAction, AuditEntry, chain_hash, entry_fields
from signoff.engine.serialization import dump
from signoff.engine.store.audit_rows import AUDIT
from signoff.engine.store.base import RUNS
from signoff.engine.store.pauses import PAUSES

USERS = 1000
WAITING = 300
BATCH = 5000


class Counting(io.TextIOBase):
    """A sink that counts what is written and keeps none of it."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


def populate(engine: Engine, runs: int) -> list[str]:
    """Bulk-insert ``runs`` runs with one chained audit record each; some wait for input."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    blob = dump({})
    prev, waiting = GENESIS, []
    with engine.store.engine.begin() as conn:
        for offset in range(0, runs, BATCH):
            run_rows, audit_rows, pause_rows = [], [], []
            for i in range(offset, min(offset + BATCH, runs)):
                run_id = uuid.uuid4().hex
                at = start + timedelta(seconds=i)
                user = f"U{i % USERS:05d}"
                waits = i >= runs - WAITING
                run_rows.append(
                    {
                        "id": run_id,
                        "flow_name": f"flow-{i % 20}",
                        "flow_ref": None,
                        "parameters": blob,
                        "parameters_json": {},
                        "state": "suspended" if waits else "completed",
                        "state_name": "Suspended" if waits else "Completed",
                        "state_message": None,
                        "started_by": user,
                        "owner": None,
                        "result": None,
                        "tags": {},
                        "policy": {"approvers": [], "cancellers": []},
                        "created_at": at,
                        "updated_at": at,
                    }
                )
                fields = entry_fields(
                    AuditEntry(
                        AuditAction.RUN_STARTED,
                        run_id,
                        f"flow-{i % 20}",
                        None,
                        data={"parameters": {"n": i}},
                    )
                )
                fields["actor_id"], fields["actor_name"], fields["via"] = user, user, "slack"
                digest = chain_hash(seq=i + 1, at=at, prev_hash=prev, **fields)
                audit_rows.append(
                    {"seq": i + 1, "at": at, "prev_hash": prev, "hash": digest, **fields}
                )
                prev = digest
                if waits:
                    waiting.append(run_id)
                    pause_rows.append(
                        {
                            "run_id": run_id,
                            "key": "1",
                            "suspend": True,
                            "status": "waiting",
                            "input_schema": {
                                "type": "object",
                                "properties": {"approved": {"type": "boolean"}},
                                "required": ["approved"],
                            },
                            "title": "Go",
                            "initial": {},
                            "approvers": [f"U{(i * 7) % USERS:05d}"],
                            "forbid_starter": False,
                            "created_at": at,
                            "quorum": 1,
                            "notify": "channel",
                            "confirm": False,
                        }
                    )
            conn.execute(insert(RUNS), run_rows)
            conn.execute(insert(AUDIT), audit_rows)
            if pause_rows:
                conn.execute(insert(PAUSES), pause_rows)
    return waiting


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def bench_home(engine: Engine) -> tuple[float, float]:
    backend = EmbeddedBackend(engine)
    times = []
    for i in range(30):
        began = time.perf_counter()
        home_view(backend, f"U{(i * 7) % USERS:05d}").to_dict()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), percentile(times, 0.95)


def bench_event_to_home(engine: Engine, waiting: list[str]) -> tuple[float, float]:
    times = []
    with running_bot(engine=engine) as bot:
        for i, run_id in enumerate(waiting[:15]):
            pause = engine.get_pause(run_id, "1")
            assert pause is not None
            to = f"UNEW{i:04d}"
            bot.slack.add_user(to, f"new{i}")
            began = time.perf_counter()
            engine.reassign(run_id, to, pause.approvers[0])
            bot.slack.wait_for(
                lambda ws, to=to, run_id=run_id: (
                    (h := ws.home_view(to)) and run_id[:8] in str(h.view)
                ),
                timeout=30,
            )
            times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), percentile(times, 0.95)


def bench_export(engine: Engine, runs: int) -> tuple[float, float, float]:
    began = time.perf_counter()
    count = engine.export_audit(Counting())
    elapsed = time.perf_counter() - began
    assert count >= runs, count
    peaks = []
    first = datetime(2026, 1, 1, tzinfo=UTC)
    for limit in (runs // 10, runs):
        tracemalloc.start()
        engine.export_audit(Counting(), until=first + timedelta(seconds=limit))
        peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
        tracemalloc.stop()
    return count / elapsed, peaks[0], peaks[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = Engine(EngineSettings.load(database_url=url))
        try:
            began = time.perf_counter()
            waiting = populate(engine, args.runs)
            filled = time.perf_counter() - began
            render = bench_home(engine)
            event = bench_event_to_home(engine, waiting)
            rate, peak_tenth, peak_all = bench_export(engine, args.runs)
        finally:
            engine.close()
    store = url.split(":", 1)[0]
    print(f"{args.runs:,} runs and audit records on {store} (filled in {filled:.0f} s)\n")
    print("| measure | result | target |")
    print("|---|---|---|")
    print(f"| Home tab render (p50 / p95) | {render[0]:.1f} / {render[1]:.1f} ms | |")
    print(f"| event to Home published (p50 / p95) | {event[0]:.0f} / {event[1]:.0f} ms | 300 ms |")
    print(f"| audit export, JSON lines | {rate:,.0f} records/s | 50,000 records/s |")
    print(
        f"| export peak memory, {args.runs // 10:,} vs {args.runs:,} records "
        f"| {peak_tenth:.1f} vs {peak_all:.1f} MB | flat |"
    )


if __name__ == "__main__":
    main()
