"""Prefect backend latency: Paused -> prompt posted, and submission -> the flow's next line.

Starts a throwaway Prefect server (SQLite) with the reference flows served, runs the bot
on the Prefect backend against the local Slack sandbox, and for each round:

- starts ``greet-user``; measures from the ``Paused`` state's timestamp (Prefect's) to
  the moment the prompt appears in the sandbox;
- clicks and submits the modal; measures from the submission to the timestamp of the
  flow's next log line ("Hello, ...!").

The same two figures are taken for Signoff's embedded engine (``bot.demo.flows``'
``greet-user`` on a temporary SQLite file, the same sandbox and bot), so the table puts
the two backends side by side.

Usage::

    .venv/bin/python bench/prefect_bench.py --rounds 5      # needs the prefect extra

Prints a Markdown table; the README quotes it. The flows poll every second
(``poll_interval=1``), which bounds the second figure from below by design: a paused
Prefect flow only learns of its answer when it next asks the server.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from signoff.bot.backends import Actor
from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
from signoff.bot.backends.prefect import runs as prefect_runs
from signoff.bot.backends.prefect.local import LocalPrefect
from signoff.bot.slack import ids
from signoff.bot.testing import running_bot, serving

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "bot" / "demo" / "prefect_flows.py"


def one_round(
    bot: Any,
    run_id: str,
    round_: int,
    paused_at: Callable[[str], float],
    next_line_at: Callable[[str], float | None],
) -> tuple[float, float]:
    """Play one round on a served bot: (paused -> prompt posted, submitted -> next line)."""
    root = bot.root_message(run_id, timeout=120)
    posted = time.time()
    to_prompt = posted - paused_at(run_id)
    bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
    # Alice's modal from the round before still shows its outcome: wait for the new form.
    bot.slack.wait_for(
        lambda ws: (view := ws.open_view("U0ALICE")) and view.callback_id == ids.INPUT_VIEW,
        timeout=30,
    )
    submitted = time.time()
    bot.driver.submit("alice", {"name": f"bench {round_}"})
    deadline = time.monotonic() + 60
    line_at = next_line_at(run_id)
    while line_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
        line_at = next_line_at(run_id)
    assert line_at is not None, "the flow never went on"
    return to_prompt, line_at - submitted


def measure(api_url: str, deployment: str, rounds: int) -> list[tuple[float, float]]:
    """(Paused -> prompt posted, submission -> next log line) per round, in seconds."""
    backend = PrefectBackend(PrefectSettings.load(api_url=api_url))

    def paused_at(run_id: str) -> float:
        for state in backend.api.states(run_id):
            if state.get("type") == "PAUSED":
                moment = prefect_runs.parse_time(state.get("timestamp"))
                assert moment is not None
                return moment.timestamp()
        raise AssertionError("the run never paused")

    def next_line_at(run_id: str) -> float | None:
        for entry in backend.api.logs(run_id):
            if "Hello" in str(entry.get("message")):
                moment = prefect_runs.parse_time(entry["timestamp"])
                return None if moment is None else moment.timestamp()
        return None

    try:
        with serving(backend) as bot:
            found = []
            for round_ in range(rounds):
                run = backend.start_run(f"greet-user/{deployment}", {}, started_by=Actor("U0CAROL"))
                found.append(one_round(bot, run.id, round_, paused_at, next_line_at))
            return found
    finally:
        backend.close()


def measure_embedded(rounds: int) -> list[tuple[float, float]]:
    """The same two figures for the embedded engine."""

    def paused_at(run_id: str) -> float:
        pause = bot.engine.waiting_pause(run_id)
        assert pause is not None
        return pause.created_at.timestamp()

    def next_line_at(run_id: str) -> float | None:
        line = next((e for e in bot.engine.detail(run_id).logs if "Hello" in e.message), None)
        return None if line is None else line.at.timestamp()

    with running_bot(["signoff.bot.demo.flows"]) as bot:
        found = []
        for round_ in range(rounds):
            run = bot.engine.submit("greet-user", {}, started_by="U0CAROL")
            found.append(one_round(bot, run.id, round_, paused_at, next_line_at))
        return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--api-url",
        help="a Prefect server already serving bot/demo/prefect_flows.py (default: start one)",
    )
    parser.add_argument("--deployment", default="bench", help="the served deployments' name")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.api_url:
        on_prefect = measure(args.api_url, args.deployment, args.rounds)
    else:
        with LocalPrefect() as prefect:
            prefect.serve_flows(FLOWS, args.deployment, deployments=5)
            on_prefect = measure(prefect.api_url, args.deployment, args.rounds)
    embedded = measure_embedded(args.rounds)

    def row(name: str, values: list[float]) -> str:
        return (
            f"| {name} | {statistics.median(values) * 1000:.0f} ms | "
            f"{min(values) * 1000:.0f}–{max(values) * 1000:.0f} ms | {len(values)} |"
        )

    print("| backend | measure | median | range | rounds |")
    print("|---|---|---|---|---|")
    for backend, rounds in (("Prefect", on_prefect), ("embedded", embedded)):
        print(row(f"{backend} | run pauses → prompt posted", [r[0] for r in rounds]))
        print(row(f"{backend} | modal submitted → flow's next line", [r[1] for r in rounds]))


if __name__ == "__main__":
    main()
