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
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from signoff.bot.backends import Actor
from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
from signoff.bot.backends.prefect import runs as prefect_runs
from signoff.bot.backends.prefect.local import LocalPrefect
from signoff.bot.slack import ids
from signoff.bot.testing import running_bot, serving

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "bot" / "demo" / "prefect_flows.py"


def paused_at(backend: PrefectBackend, run_id: str) -> datetime:
    for state in backend.api.states(run_id):
        if state.get("type") == "PAUSED":
            moment = prefect_runs.parse_time(state.get("timestamp"))
            assert moment is not None
            return moment
    raise AssertionError("the run never paused")


def measure(api_url: str, deployment: str, rounds: int) -> tuple[list[float], list[float]]:
    """(Paused -> prompt posted, submission -> next log line) per round, in seconds."""
    to_prompt: list[float] = []
    to_next_line: list[float] = []
    backend = PrefectBackend(PrefectSettings.load(api_url=api_url))
    try:
        with serving(backend) as bot:
            for round_ in range(rounds):
                run = backend.start_run(f"greet-user/{deployment}", {}, started_by=Actor("U0CAROL"))
                root = bot.root_message(run.id, timeout=120)
                posted = time.time()
                to_prompt.append(posted - paused_at(backend, run.id).timestamp())
                bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
                bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=30)
                submitted = time.time()
                bot.driver.submit("alice", {"name": f"bench {round_}"})
                line = None
                deadline = time.monotonic() + 60
                while line is None and time.monotonic() < deadline:
                    line = next(
                        (e for e in backend.api.logs(run.id) if "Hello" in str(e.get("message"))),
                        None,
                    )
                    time.sleep(0.05)
                assert line is not None, "the flow never went on"
                at = prefect_runs.parse_time(line["timestamp"])
                assert at is not None
                to_next_line.append(at.timestamp() - submitted)
    finally:
        backend.close()
    return to_prompt, to_next_line


def measure_embedded(rounds: int) -> tuple[list[float], list[float]]:
    """The same two figures for the embedded engine."""
    to_prompt: list[float] = []
    to_next_line: list[float] = []
    with running_bot(["signoff.bot.demo.flows"]) as bot:
        for round_ in range(rounds):
            run = bot.engine.submit("greet-user", {}, started_by="U0CAROL")
            root = bot.root_message(run.id, timeout=60)
            posted = time.time()
            pause = bot.engine.waiting_pause(run.id)
            assert pause is not None
            to_prompt.append(posted - pause.created_at.timestamp())
            bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
            bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=30)
            submitted = time.time()
            bot.driver.submit("alice", {"name": f"bench {round_}"})
            line = None
            deadline = time.monotonic() + 60
            while line is None and time.monotonic() < deadline:
                line = next(
                    (e for e in bot.engine.detail(run.id).logs if "Hello" in e.message), None
                )
                time.sleep(0.01)
            assert line is not None, "the flow never went on"
            to_next_line.append(line.at.timestamp() - submitted)
    return to_prompt, to_next_line


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
        to_prompt, to_next_line = measure(args.api_url, args.deployment, args.rounds)
    else:
        with LocalPrefect() as prefect:
            prefect.serve_flows(FLOWS, args.deployment, deployments=5)
            to_prompt, to_next_line = measure(prefect.api_url, args.deployment, args.rounds)

    def row(name: str, values: list[float]) -> str:
        return (
            f"| {name} | {statistics.median(values) * 1000:.0f} ms | "
            f"{min(values) * 1000:.0f}–{max(values) * 1000:.0f} ms | {len(values)} |"
        )

    embedded_prompt, embedded_next = measure_embedded(args.rounds)
    print("| backend | measure | median | range | rounds |")
    print("|---|---|---|---|---|")
    print(row("Prefect | run enters Paused → prompt posted", to_prompt))
    print(row("Prefect | modal submitted → flow's next line", to_next_line))
    print(row("embedded | run pauses → prompt posted", embedded_prompt))
    print(row("embedded | modal submitted → flow's next line", embedded_next))


if __name__ == "__main__":
    main()
