"""How much a resume's first step costs after the process sat idle, on this machine.

A warm resume in ``bench/scenarios.py warm`` starts a few milliseconds after the process
last ran (it waits for the flow to pause). This times the same read a resume starts with
(the run, its owner and its pause: ``SqlStore.resume_target``) back to back, and again
after each of several idle gaps, so that the cost of resuming cold caches on this machine
can be told from the cost of the work::

    .venv/bin/python bench/idle_gap.py sqlite:///$TMP/gap.db

It prints one line per gap: the read's p50 in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import flows
from measuring import Paused, engine_on

from signoff.engine import resume_flow_run

GAPS = (0.0, 0.001, 0.005, 0.02)
ROUNDS = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    args = parser.parse_args()
    with engine_on(args.url) as engine:
        paused = Paused(engine)
        thread = threading.Thread(target=flows.wait_once, args=("gap",))
        thread.start()
        (run_id,) = paused.wait_for(1)
        store = engine.store
        for gap in GAPS:
            took = []
            for _ in range(ROUNDS):
                if gap:
                    time.sleep(gap)  # the idle spell being measured, not synchronisation
                began = time.perf_counter()
                store.resume_target(run_id, engine.settings.owner_timeout_seconds)
                took.append(time.perf_counter() - began)
            print(
                f"idle {gap * 1000:g} ms before each read: p50 {statistics.median(took) * 1e6:.0f} µs"
            )
        resume_flow_run(run_id, flows.ANSWER, "bench")
        thread.join()


if __name__ == "__main__":
    main()
