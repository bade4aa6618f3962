"""Timers for the Prefect backend: due calls kept on the run, fired by this process.

A call is stored as a flow run input of the run it concerns (so it survives a restart)
and kept in an in-memory heap that one thread fires. After a restart, ``restore`` reads
a run's stored calls back (the watcher does so for every waiting run it reconciles).
"""

from __future__ import annotations

import heapq
import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)


class Timers:
    """Fires ``job(**kwargs)`` at ``when``; ``store``/``forget``/``stored`` persist a call."""

    def __init__(
        self,
        store: Callable[[str, str, dict[str, Any]], None],
        forget: Callable[[str, str], None],
        stored: Callable[[str], list[dict[str, Any]]],
    ) -> None:
        self._store, self._forget, self._stored = store, forget, stored
        self._heap: list[tuple[datetime, str]] = []
        self._calls: dict[str, dict[str, Any]] = {}
        self._restored: set[str] = set()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[str, float], None]] = []

    def on_fired(self, listener: Callable[[str, float], None]) -> None:
        """Call ``listener(job_id, lag_seconds)`` whenever a call fires (metrics)."""
        self._listeners.append(listener)

    def start(self) -> None:
        with self._cond:
            self._stop = False
        self._thread = threading.Thread(
            target=self._run, name="signoff-prefect-timers", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    def call_at(self, job_id: str, when: datetime, job: str, kwargs: Mapping[str, Any]) -> None:
        run_id = str(kwargs.get("run_id") or "")
        call = {"job_id": job_id, "when": when.isoformat(), "job": job, "kwargs": dict(kwargs)}
        if run_id:
            self._store(run_id, job_id, call)
        self._schedule(call)

    def cancel(self, job_id: str) -> None:
        with self._cond:
            call = self._calls.pop(job_id, None)
        run_id = str((call or {}).get("kwargs", {}).get("run_id") or "")
        if run_id:
            self._forget(run_id, job_id)

    def restore(self, run_id: str) -> None:
        """Schedule the calls stored on ``run_id`` (once per run and process)."""
        if run_id in self._restored:
            return
        for call in self._stored(run_id):
            with self._cond:
                known = call.get("job_id") in self._calls
            if not known:
                self._schedule(call)
        self._restored.add(run_id)

    def _schedule(self, call: dict[str, Any]) -> None:
        when = datetime.fromisoformat(str(call["when"]))
        with self._cond:
            self._calls[str(call["job_id"])] = call
            heapq.heappush(self._heap, (when, str(call["job_id"])))
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stop:
                    return
                now = datetime.now(UTC)
                if not self._heap:
                    self._cond.wait(5)
                    continue
                when, job_id = self._heap[0]
                if when > now:
                    self._cond.wait(min((when - now).total_seconds(), 5))
                    continue
                heapq.heappop(self._heap)
                call = self._calls.pop(job_id, None)
            if call is None or datetime.fromisoformat(str(call["when"])) != when:
                continue  # cancelled, or replaced by a later call_at
            self._fire(call)

    def _fire(self, call: dict[str, Any]) -> None:
        lag = (datetime.now(UTC) - datetime.fromisoformat(str(call["when"]))).total_seconds()
        for listener in self._listeners:
            listener(str(call["job_id"]), lag)
        module, _, name = str(call["job"]).partition(":")
        try:
            getattr(importlib.import_module(module), name)(**call["kwargs"])
        except Exception:
            logger.exception(
                "timer job failed", extra={"action": "timer_failed", "job_id": call["job_id"]}
            )
        run_id = str(call["kwargs"].get("run_id") or "")
        if run_id:
            try:
                self._forget(run_id, str(call["job_id"]))
            except Exception:
                logger.warning(
                    "could not drop a fired timer",
                    extra={"action": "timer_forget_failed", "job_id": call["job_id"]},
                )
