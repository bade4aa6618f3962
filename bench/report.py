"""The benchmark's results, and the two tables ``bench/run.py`` prints from them: latencies
with their ratios to the best peer, and every target with its figure."""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from dataclasses import dataclass


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


def latency_table(results: Results, stores: list[str], peer_names: list[str]) -> list[str]:
    """Each scenario's p50 / p95 / max, Signoff's and each peer's, with Signoff's ratio to
    the best peer measured in the same run."""
    scenarios = [
        ("cold", "1 run, first resume in a fresh process (sync)"),
        ("warm", "1 run, warm, one at a time (50 rounds)"),
        ("burst", "100 runs, 8 concurrent resumers, sync flows"),
        ("burst-async", "100 runs, 8 concurrent resumers, async flows on one loop"),
        ("worker", "100 runs waiting in a `signoff worker`, resumed from another process"),
        ("worker-single", "1 run in a `signoff worker`, resumed from another process"),
        ("worker-100", "100 runs in a `signoff worker`, 100 concurrent resumers"),
    ]
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
    """Each target of the issue with its figure, and whether it is met."""
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
        memory = (
            ("rss_async", f"RSS per waiting async run ({args.async_runs:,} waiting): ≤ 20 KiB", 20),
            (
                "rss_sync_worker",
                "RSS per waiting sync run in a worker (100 waiting): ≤ 100 KiB",
                100,
            ),
            ("rss_suspended", "process memory per suspended run (1,000 suspended): none", 1),
        )
        for name, target, limit in memory:
            kib = results.value(store, name)
            places = 2 if name == "rss_suspended" else 1
            add(store, target, kib, limit, kib is not None and f"{kib:.{places}f} KiB")
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
