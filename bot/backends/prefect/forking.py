"""Serve a flows file with its flow runs forked from a process that imported Prefect once.

``serve(flow.to_deployment(...), ...)`` starts each flow run in a new interpreter
(``python -m prefect.engine``), which imports Prefect and the flows file again: two
seconds of CPU and more per run on a small VM, most of the wait for a local demo's prompt,
and the largest part of the test suite's CPU. Run as ``python forking.py FILE ARGS...``
(``LocalPrefect.serve_flows`` does), ``FILE`` runs as ``python FILE ARGS...`` would, with
two changes to how its runs start:

- the runner is handed the flow objects of the file's deployments, as ``flow.serve()``
  hands over its one flow, so it runs them through ``multiprocessing`` instead of a new
  ``python -m prefect.engine``;
- ``multiprocessing`` starts them from a "forkserver": a process that imported
  ``prefect.flow_engine`` once and forks a child per run. It has no threads when it forks,
  unlike the runner, so a child starts as cleanly as the spawned one Prefect would start.
  It is started as the first deployment is added, not by the first run: its imports (two
  seconds of CPU) then overlap the runner's start instead of delaying that run's prompt.

Both are Prefect's own paths; if this Prefect lacks the names patched here, runs start
the usual way. Users' own deployments are never served like this.

A script, not a module of the package: the interpreter serving the flows needs Prefect,
not Signoff.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import runpy
import sys
import threading
from types import ModuleType
from typing import Any

#: what the forkserver imports before it forks its first run
PRELOAD = ["prefect.flow_engine"]


class _ForkingMultiprocessing:
    """``multiprocessing`` as ``prefect.flow_engine`` sees it: asked for "spawn" (it asks
    for nothing else), it gets the forkserver."""

    def __init__(self, real: ModuleType) -> None:
        self._real = real
        self._forkserver = real.get_context("forkserver")
        self._forkserver.set_forkserver_preload(PRELOAD)

    def get_context(self, method: str | None = None) -> Any:
        return self._forkserver if method == "spawn" else self._real.get_context(method)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def fork_flow_runs() -> None:
    """Make Prefect start this process's flow runs from the forkserver."""
    import prefect.flow_engine
    from prefect.runner.runner import Runner

    engine: Any = prefect.flow_engine
    forking = getattr(engine, "multiprocessing", None) is multiprocessing
    if forking:
        engine.multiprocessing = _ForkingMultiprocessing(multiprocessing)
    started = threading.Event()
    added = getattr(Runner, "aadd_deployment", None)
    if added is None:
        return

    async def aadd_deployment(self: Any, deployment: Any) -> Any:
        deployment_id = await added(self, deployment)
        flow = _flow_of(deployment)
        registry = getattr(self, "_deployment_registry", None)
        if flow is not None and registry is not None:
            registry.register_flow(deployment_id, flow)
            if forking and not started.is_set():
                started.set()
                _start_forkserver()
        return deployment_id

    Runner.aadd_deployment = aadd_deployment  # type: ignore[method-assign]


def _start_forkserver() -> None:
    """Start the forkserver in a thread of its own: the runner goes on adding deployments
    and polling meanwhile."""
    threading.Thread(
        target=multiprocessing.forkserver.ensure_running, name="forkserver-start", daemon=True
    ).start()


def _flow_of(deployment: Any) -> Any:
    """The flow object ``deployment`` was made from, when the file being served defines it
    (its entrypoint is ``file.py:function``); None for one loaded from storage."""
    from prefect.flows import Flow

    entrypoint = getattr(deployment, "entrypoint", None)
    if getattr(deployment, "storage", None) is not None or not entrypoint:
        return None
    found = getattr(sys.modules.get("__main__"), str(entrypoint).rpartition(":")[2], None)
    return found if isinstance(found, Flow) else None


def main(argv: list[str]) -> None:
    path, *args = argv
    # As under ``python FILE``: the file's folder first on the path, not this one (whose
    # modules would hide packages of the same names, ``requests`` among them).
    sys.path[0] = os.path.dirname(os.path.abspath(path))
    fork_flow_runs()
    sys.argv = [path, *args]
    runpy.run_path(path, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
