"""Run every benchmark scenario, interleaved with the peers, and print the tables.

Usage::

    .venv/bin/python bench/run.py                    # SQLite and PostgreSQL, with peers
    .venv/bin/python bench/run.py --store sqlite --no-peers --quick

Each scenario runs in a fresh process (``bench/scenarios.py``). The peers, LangGraph 1.2
with its SQLite checkpointer and DBOS 3.4 on SQLite, are installed by this script into
their own virtual environments under ``bench/.peers`` (skipped, with the reason, when
they cannot be installed) and run the same scenarios right after Signoff's, so that each
ratio compares figures taken in the same minute on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import venv
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_DIR = BENCH / ".peers"
sys.path.insert(0, str(ROOT))

#: name -> (pip requirements, script)
PEERS = {
    "LangGraph": (
        ["langgraph==1.2.*", "langgraph-checkpoint-sqlite", "pydantic>=2"],
        "langgraph_peer.py",
    ),
    "DBOS": (["dbos==3.4.*", "pydantic>=2"], "dbos_peer.py"),
}
#: scenarios the peers run too (the ones that need no worker process)
PEER_SCENARIOS = ("cold", "warm", "burst")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Figures:
    samples: list[float]

    @property
    def p50(self) -> float:
        return pct(self.samples, 0.5)

    @property
    def p95(self) -> float:
        return pct(self.samples, 0.95)

    @property
    def max(self) -> float:
        return max(self.samples)

    def text(self) -> str:
        return f"{ms(self.p50)} / {ms(self.p95)} / {ms(self.max)} ms"


def run_json(command: list[str], timeout: float = 900, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(ROOT),
        env={**os.environ, **(env or {})},
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def signoff(scenario: str, url: str, count: int = 100, **extra: object) -> dict:
    command = [sys.executable, str(BENCH / "scenarios.py"), scenario, url, "--count", str(count)]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    return run_json(command)


def ensure_peer(name: str) -> Path | str:
    """The peer's Python, installing it first if needed; a reason string if it cannot be."""
    requirements, _script = PEERS[name]
    target = PEERS_DIR / name.lower()
    python = target / "bin" / "python"
    stamp = target / "installed.txt"
    if stamp.exists() and stamp.read_text() == "\n".join(requirements):
        return python
    try:
        venv.create(target, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *requirements],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return f"could not install {' '.join(requirements)}: {detail.strip().splitlines()[-1:]}"
    stamp.write_text("\n".join(requirements))
    return python


def peer(name: str, python: Path, scenario: str, tmp: Path) -> list[float]:
    _requirements, script = PEERS[name]
    db = tmp / f"{name.lower()}-{scenario}-{os.urandom(4).hex()}.db"
    return run_json([str(python), str(BENCH / "peers" / script), scenario, str(db)])["latencies"]


class Results:
    def __init__(self) -> None:
        self.latency: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        self.values: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.skipped: dict[str, str] = {}

    def add(self, store: str, who: str, scenario: str, samples: list[float]) -> None:
        self.latency[(store, who, scenario)].extend(samples)

    def figures(self, store: str, who: str, scenario: str) -> Figures | None:
        samples = self.latency.get((store, who, scenario))
        return Figures(samples) if samples else None

    def value(self, store: str, name: str) -> float | None:
        found = self.values.get((store, name))
        return statistics.median(found) if found else None


def measure(
    store: str,
    url: Callable[[str], str],
    args: argparse.Namespace,
    results: Results,
    peers: dict[str, Path],
    tmp: Path,
) -> None:
    """One round of every scenario on one store, each peer right after Signoff."""
    say = lambda text: print(f"  [{store}] {text}", file=sys.stderr, flush=True)  # noqa: E731
    for scenario in PEER_SCENARIOS:
        say(scenario)
        rounds = args.cold_rounds if scenario == "cold" else 1
        for _ in range(rounds):
            count = 50 if scenario == "warm" else 100
            found = signoff(scenario, url(scenario), count)
            results.add(store, "Signoff", scenario, found["latencies"])
            if "rss_kib_per_run" in found:
                results.values[(store, "rss_sync_inprocess")].append(found["rss_kib_per_run"])
            if store == "SQLite":
                for name, python in peers.items():
                    results.add(store, name, scenario, peer(name, python, scenario, tmp))
    say("burst-async")
    found = signoff("burst-async", url("burst-async"), 100)
    results.add(store, "Signoff", "burst-async", found["latencies"])
    say("worker")
    found = signoff("worker", url("worker"), 100, idle_seconds=args.idle_seconds)
    results.add(store, "Signoff", "worker", found["latencies"])
    results.add(store, "Signoff", "worker-single", found["single"])
    results.values[(store, "idle_cpu")].append(found["idle_cpu_share"])
    results.values[(store, "rss_sync_worker")].append(found["rss_kib_per_run"])
    if store == "PostgreSQL":
        say("worker, 100 resumers")
        found = signoff("worker", url("worker"), 100, idle_seconds=0.5, resumers=100)
        results.add(store, "Signoff", "worker-100", found["latencies"])
        results.values[(store, "sessions_100")].append(found["sessions_opened"])
        results.values[(store, "pool_size")].append(found["pool_size"])
    say("overhead")
    found = signoff("overhead", url("overhead"), 200)
    results.add(store, "Signoff", "noop", found["noop"])
    results.add(store, "Signoff", "ten-tasks", found["ten_tasks"])
    results.values[(store, "rss_suspended")].append(found["rss_kib_per_suspended_run"])
    workers = 1 if store == "SQLite" else 2
    say(f"throughput ({workers} worker(s))")
    found = signoff("throughput", url("throughput"), 1000, workers=workers)
    results.values[(store, "throughput_s")].append(found["seconds"])
    say(f"memory-async ({args.async_runs} runs)")
    found = signoff("memory-async", url("memory-async"), args.async_runs)
    results.values[(store, "rss_async")].append(found["rss_kib_per_run"])
    results.values[(store, "async_all_waiting_s")].append(found["all_waiting_after_s"])
    stored = args.listed_sqlite if store == "SQLite" else args.listed_postgresql
    say(f"listing ({stored} suspended runs)")
    found = signoff("listing", url("listing"), stored)
    results.add(store, "Signoff", "list-first", found["first_page"])
    results.add(store, "Signoff", "list-later", found["later_page"])
    results.values[(store, "listed")].append(found["stored"])


def latency_table(results: Results, stores: list[str]) -> list[str]:
    scenarios = [
        ("cold", "1 run, first resume in a fresh process (sync)"),
        ("warm", "1 run, warm, one at a time (50 rounds)"),
        ("burst", "100 runs, 8 concurrent resumers, sync flows"),
        ("burst-async", "100 runs, 8 concurrent resumers, async flows on one loop"),
        ("worker", "100 runs waiting in a `signoff worker`, resumed from another process"),
        ("worker-single", "1 run in a `signoff worker`, resumed from another process"),
        ("worker-100", "100 runs in a `signoff worker`, 100 concurrent resumers"),
    ]
    peer_names = list(PEERS)
    head = [
        "store",
        "scenario",
        "Signoff p50 / p95 / max",
        *[f"{n} p50 / p95 / max" for n in peer_names],
        "ratio to best peer (p50, p95)",
    ]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for store in stores:
        for key, label in scenarios:
            ours = results.figures(store, "Signoff", key)
            if ours is None:
                continue
            cells = [store, label, ours.text()]
            theirs = []
            for name in peer_names:
                found = results.figures(store, name, key)
                cells.append(found.text() if found else "–")
                if found:
                    theirs.append(found)
            if theirs:
                best50 = min(f.p50 for f in theirs)
                best95 = min(f.p95 for f in theirs)
                cells.append(f"{ours.p50 / best50:.2f}×, {ours.p95 / best95:.2f}×")
            else:
                cells.append("–")
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def targets_table(results: Results, stores: list[str], args: argparse.Namespace) -> list[str]:
    rows = ["| store | target | figure | met |", "|---|---|---|---|"]

    def add(store: str, target: str, figure: float | None, limit: float | None, text: str) -> None:
        if figure is None:
            rows.append(f"| {store} | {target} | not measured | – |")
            return
        met = "–" if limit is None else ("yes" if figure <= limit else "**no**")
        rows.append(f"| {store} | {target} | {text} | {met} |")

    def lat(store: str, who: str, key: str) -> Figures | None:
        return results.figures(store, who, key)

    for store in stores:
        lg = {k: lat(store, "LangGraph", k) for k in ("cold", "burst")}
        warm = lat(store, "Signoff", "warm")
        add(
            store,
            "warm resume → next line, p50 ≤ 1 ms",
            warm and warm.p50,
            0.001,
            warm and f"{ms(warm.p50)} ms",
        )
        cold = lat(store, "Signoff", "cold")
        if cold and lg["cold"]:
            ratio = cold.p50 / lg["cold"].p50
            add(
                store,
                "first resume in a fresh process ≤ 0.5× LangGraph",
                ratio,
                0.5,
                f"{ms(cold.p50)} ms = {ratio:.2f}×",
            )
        elif cold:
            add(
                store,
                "first resume in a fresh process (no peer)",
                cold.p50,
                None,
                f"{ms(cold.p50)} ms",
            )
        for key, what in (("burst", "sync"), ("burst-async", "async")):
            found = lat(store, "Signoff", key)
            add(
                store,
                f"100 runs, 8 resumers, {what}: p95 ≤ 20 ms",
                found and found.p95,
                0.020,
                found and f"{ms(found.p95)} ms",
            )
            if found and lg["burst"]:
                ratio = found.p95 / lg["burst"].p95
                add(
                    store,
                    f"100 runs, 8 resumers, {what}: p95 ≤ 0.5× LangGraph's",
                    ratio,
                    0.5,
                    f"{ratio:.2f}×",
                )
        limit = 0.050 if store == "SQLite" else 0.020
        found = lat(store, "Signoff", "worker")
        add(
            store,
            f"100 runs in a worker, resumed from another process: p95 ≤ {limit * 1000:.0f} ms",
            found and found.p95,
            limit,
            found and f"{ms(found.p95)} ms",
        )
        found = lat(store, "Signoff", "worker-single")
        add(
            store,
            "1 run in a worker, resumed from another process: p50 ≤ 10 ms",
            found and found.p50,
            0.010,
            found and f"{ms(found.p50)} ms",
        )
        sessions = results.value(store, "sessions_100")
        if sessions is not None:
            add(
                store,
                "100 resumers at once: server sessions opened "
                f"(pool of {results.value(store, 'pool_size'):.0f}; report)",
                sessions,
                None,
                f"{sessions:.0f}",
            )
        idle = results.value(store, "idle_cpu")
        add(
            store,
            "idle `signoff worker`: < 0.5% of a core",
            idle,
            0.005,
            idle is not None and f"{idle * 100:.2f}%",
        )
        seconds = results.value(store, "throughput_s")
        if store == "SQLite":
            add(
                store,
                "1,000 runs start → pause → resume → complete, 1 worker: ≤ 5 s",
                seconds,
                5.0,
                seconds is not None and f"{seconds:.2f} s",
            )
        else:
            add(
                store,
                "1,000 runs start → pause → resume → complete, 2 workers (report)",
                seconds,
                None,
                seconds is not None and f"{seconds:.2f} s",
            )
        kib = results.value(store, "rss_async")
        add(
            store,
            f"RSS per waiting async run ({args.async_runs:,} waiting): ≤ 20 KiB",
            kib,
            20,
            kib is not None and f"{kib:.1f} KiB",
        )
        kib = results.value(store, "rss_sync_worker")
        add(
            store,
            "RSS per waiting sync run in a worker (100 waiting): ≤ 100 KiB",
            kib,
            100,
            kib is not None and f"{kib:.1f} KiB",
        )
        kib = results.value(store, "rss_suspended")
        add(
            store,
            "process memory per suspended run (1,000 suspended): none",
            kib,
            1,
            kib is not None and f"{kib:.2f} KiB",
        )
        found = lat(store, "Signoff", "noop")
        add(
            store, "no-op flow: ≤ 2 ms", found and found.p50, 0.002, found and f"{ms(found.p50)} ms"
        )
        found = lat(store, "Signoff", "ten-tasks")
        add(
            store,
            "flow with 10 tasks: ≤ 10 ms",
            found and found.p50,
            0.010,
            found and f"{ms(found.p50)} ms",
        )
        listed = results.value(store, "listed")
        for key, what in (("list-first", "first page"), ("list-later", "a later page")):
            found = lat(store, "Signoff", key)
            add(
                store,
                f"list suspended runs, {what} of 50 ({listed or 0:,.0f} stored): < 1 s",
                found and found.p95,
                1.0,
                found and f"p95 {ms(found.p95)} ms",
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--no-peers", action="store_true", help="measure Signoff alone")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--cold-rounds", type=int, default=3, help="fresh processes per cold round")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=30.0,
        help="how long the idle worker is watched (CPU counts in 10 ms ticks; default 30)",
    )
    parser.add_argument("--async-runs", type=int, default=10_000)
    parser.add_argument("--listed-sqlite", type=int, default=100_000)
    parser.add_argument("--listed-postgresql", type=int, default=1_000_000)
    parser.add_argument(
        "--quick", action="store_true", help="smaller counts, one round, for a smoke run"
    )
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.cold_rounds, args.idle_seconds = 1, 1, 3.0
        args.async_runs, args.listed_sqlite, args.listed_postgresql = 1000, 10_000, 10_000

    peers: dict[str, Path] = {}
    results = Results()
    if not args.no_peers:
        for name in PEERS:
            found = ensure_peer(name)
            if isinstance(found, Path):
                peers[name] = found
            else:
                results.skipped[name] = found
                print(f"skipping {name}: {found}", file=sys.stderr)

    stores = (
        ["SQLite", "PostgreSQL"]
        if args.store == "both"
        else (["SQLite"] if args.store == "sqlite" else ["PostgreSQL"])
    )
    cluster = None
    if "PostgreSQL" in stores:
        from tests.support.postgres import PostgresUnavailable, start_cluster

        try:
            cluster = start_cluster()
        except (PostgresUnavailable, OSError) as exc:
            print(f"skipping PostgreSQL: {exc}", file=sys.stderr)
            stores.remove("PostgreSQL")
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            for repeat in range(args.repeats):
                print(f"round {repeat + 1} of {args.repeats}", file=sys.stderr, flush=True)
                for store in stores:
                    if store == "SQLite":
                        url = lambda s: f"sqlite:///{tmp}/signoff-{s}-{os.urandom(4).hex()}.db"  # noqa: E731
                    else:
                        url = lambda s: new_database(cluster, s)  # noqa: E731
                    measure(store, url, args, results, peers, tmp)
    finally:
        if cluster is not None:
            cluster.stop()

    print(
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; {args.repeats} interleaved round(s).\n"
    )
    print("\n".join(latency_table(results, stores)))
    print()
    print("\n".join(targets_table(results, stores, args)))
    for name, reason in results.skipped.items():
        print(f"\n{name} skipped: {reason}")


def new_database(cluster, scenario: str) -> str:
    import psycopg

    name = f"bench_{scenario.replace('-', '_')}_{os.urandom(3).hex()}"
    with psycopg.connect(
        f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.url(name)


def machine() -> str:
    cores = os.cpu_count()
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{cores} cores ({model}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


if __name__ == "__main__":
    main()
