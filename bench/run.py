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
import subprocess
import sys
import tempfile
import venv
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_DIR = BENCH / ".peers"
sys.path.insert(0, str(ROOT))

from report import Results, latency_table, targets_table  # noqa: E402

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
    print("\n".join(latency_table(results, stores, list(PEERS))))
    print()
    print("\n".join(targets_table(results, stores, args)))
    for name, reason in results.skipped.items():
        print(f"\n{name} skipped: {reason}")


def new_database(cluster, scenario: str) -> str:
    import psycopg

    name = f"bench_{scenario.replace('-', '_')}_{os.urandom(3).hex()}"
    with psycopg.connect(cluster.admin_conninfo, autocommit=True) as conn:
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
