"""Prefect backend, many runs pausing at once: how long until every one's prompt is posted.

A release that pauses 50 deploys for approval pauses them within a second or two; the
watcher then syncs each run (reads it, its states, its stored schema and description,
Signoff's records on it) and the bot posts its prompt. This starts N runs paused for input
on a Prefect server at once, as a flow does (the ``Paused`` state, then the input's schema
stored as a flow run input), serves the bot on the Prefect backend against the local
Slack sandbox, and records when each run's prompt appears there.

Usage::

    .venv/bin/python bench/prefect_burst.py --runs 40        # needs the prefect extra
    .venv/bin/python bench/prefect_burst.py --runs 40 --api-url http://127.0.0.1:4200/api

Prints, in seconds from the first pause: when the last run paused, and when the first
prompt, the median one and the last one were posted. The runs are cancelled afterwards. Reconciliation is left at its
default (30 s), so the prompts come from the event stream, as in production.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
from signoff.bot.backends.prefect.local import LocalPrefect
from signoff.bot.backends.prefect.watcher import Watcher
from signoff.bot.testing import serving

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "bot" / "demo" / "prefect_flows.py"

#: what Prefect stores for ``class Approval(RunInput): approve: bool; note: str = ""``
SCHEMA = {
    "title": "Approval",
    "type": "object",
    "properties": {
        "approve": {"title": "Approve", "type": "boolean"},
        "note": {"title": "Note", "type": "string", "default": ""},
    },
    "required": ["approve"],
}
KEYSET = {part: f"paused-1-{part}" for part in ("schema", "description", "response")}


def pause_one(backend: PrefectBackend, flow_id: str, index: int) -> str:
    """A run paused for input, its schema stored just after, as Prefect's flow does it."""
    created = backend.api._json(
        "POST",
        "/flow_runs/",
        body={
            "flow_id": flow_id,
            "name": f"burst-{index}",
            "state": {
                "type": "PAUSED",
                "name": "Paused",
                "state_details": {"pause_key": "1", "run_input_keyset": KEYSET},
            },
        },
    )
    run_id = str(created["id"])
    backend.api.create_input(run_id, KEYSET["schema"], SCHEMA)
    return run_id


def settle(backend: PrefectBackend) -> None:
    """Wait until the watcher has synced what its start found (runs an earlier round left,
    their events replayed), so that the figures are the burst's alone."""
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 2.0:
        busy = any(not w.connected.is_set() or w._due or w._background for w in backend._watchers)
        if busy:
            quiet_since = time.monotonic()
        time.sleep(0.05)


def measure(api_url: str, runs: int) -> tuple[float, list[float]]:
    """Seconds from the first pause to the last, and to each prompt posted (sorted)."""
    backend = PrefectBackend(PrefectSettings.load(api_url=api_url))
    flow_id = str(backend.api._json("POST", "/flows/", body={"name": "burst-of-deploys"})["id"])
    run_ids: list[str] = []
    try:
        with serving(backend) as bot:
            settle(backend)
            posted: dict[str, float] = {}
            done = threading.Event()

            def look() -> None:
                # From the first pause on, alongside the pausing: prompts come meanwhile.
                deadline = time.monotonic() + 600
                while not done.is_set() and time.monotonic() < deadline:
                    texts = [m.text for m in bot.slack.channel(bot.channel).messages]
                    now = time.monotonic() - began
                    for run_id in list(run_ids):
                        if run_id not in posted and any(run_id[:8] in t for t in texts):
                            posted[run_id] = now
                    if len(posted) == runs:
                        return
                    time.sleep(0.02)

            looking = threading.Thread(target=look)
            began = time.monotonic()
            looking.start()
            try:
                # A release pauses its deploys within moments of each other. (One at a
                # time: the test server's SQLite answers 503 to many writes at once.)
                for index in range(runs):
                    run_ids.append(pause_one(backend, flow_id, index))
                paused = time.monotonic() - began
                looking.join()
            finally:
                done.set()
            if len(posted) < runs:
                print(f"only {len(posted)} of {runs} prompts in 600 s", file=sys.stderr)
            return paused, sorted(posted.values())
    finally:
        for run_id in run_ids:
            backend.api.set_state(run_id, {"type": "CANCELLED", "name": "Cancelled"}, force=True)
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--api-url", help="a Prefect server already running (default: start one)")
    parser.add_argument(
        "--sync-threads",
        type=int,
        default=Watcher.SYNC_THREADS,
        help="runs the watcher syncs at once (1: one after the other, as before)",
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    Watcher.SYNC_THREADS = args.sync_threads

    def rounds(api_url: str) -> list[tuple[float, list[float]]]:
        return [measure(api_url, args.runs) for _ in range(args.rounds)]

    if args.api_url:
        found = rounds(args.api_url)
    else:
        with LocalPrefect() as prefect:
            found = rounds(prefect.api_url)
    print("| round | runs paused within | prompts | first | median | last |")
    print("|---|---|---|---|---|---|")
    for number, (paused, times) in enumerate(found, 1):
        if times:
            print(
                f"| {number} | {paused:.2f} s | {len(times)} | {times[0]:.2f} s | "
                f"{statistics.median(times):.2f} s | {times[-1]:.2f} s |"
            )


if __name__ == "__main__":
    main()
