"""Two checkouts of Signoff side by side, interleaved with LangGraph, on one scenario.

Usage::

    git worktree add /tmp/before HEAD~3 --detach
    .venv/bin/python bench/compare.py /tmp/before --scenario burst --rounds 6

Each round runs the scenario (``bench/scenarios.py``, 100 runs, SQLite) in a fresh process
from the other checkout, then from this one, then LangGraph's ``burst``: a change is judged
against the code before it in the same minutes, as this VM's speed varies by the hour. It
prints each round's p95 and ratio to LangGraph's, then every round's latencies pooled.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from report import pct  # noqa: E402
from run import ensure_peer, peer, run_json  # noqa: E402


def signoff_at(root: Path, scenario: str, url: str) -> list[float]:
    """The scenario's latencies, run by the checkout at ``root`` with its own code."""
    command = [sys.executable, str(root / "bench" / "scenarios.py"), scenario, url]
    found = run_json([*command, "--count", "100"], env={"PYTHONPATH": str(root)})
    return list(found["latencies"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="the other checkout (a git worktree)")
    parser.add_argument("--scenario", choices=["burst", "burst-async"], default="burst")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    langgraph = ensure_peer("LangGraph")
    if isinstance(langgraph, str):
        sys.exit(f"LangGraph is needed: {langgraph}")
    checkouts = {"before": args.before.resolve(), "after": BENCH.parent}
    pooled: dict[str, list[float]] = {"before": [], "after": [], "LangGraph": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            found = {
                name: signoff_at(root, args.scenario, f"sqlite:///{tmp}/{name}-{i}.db")
                for name, root in checkouts.items()
            }
            found["LangGraph"] = peer("LangGraph", langgraph, "burst", Path(tmp))
            peer_p95 = pct(found["LangGraph"], 0.95)
            print(
                f"round {i + 1}: "
                + ", ".join(
                    f"{name} p95 {pct(values, 0.95) * 1000:.2f} ms ({pct(values, 0.95) / peer_p95:.2f}×)"
                    for name, values in found.items()
                ),
                flush=True,
            )
            for name, values in found.items():
                pooled[name] += values
    peer_p95 = pct(pooled["LangGraph"], 0.95)
    for name, values in pooled.items():
        print(
            f"pooled {name}: p50 {pct(values, 0.5) * 1000:.2f} ms, "
            f"p95 {pct(values, 0.95) * 1000:.2f} ms = {pct(values, 0.95) / peer_p95:.2f}× LangGraph's"
        )


if __name__ == "__main__":
    os.chdir(BENCH.parent)
    main()
