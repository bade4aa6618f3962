"""A real Prefect server for the tests: SQLite in a temporary PREFECT_HOME, the test flows
(``bot/demo/prefect_flows.py``) served as deployments named ``tests``.

Started once per test worker that runs a Prefect test (the ``prefect_api_url`` fixture in
``tests/conftest.py``); ``TEST_PREFECT_API_URL`` names one already running with those flows
served instead, for quick local reruns. The flows of tests that need flows of their own
(``tests/prefect/served_flows.py``) are served on it by one more process, started by the
first such test (the ``served_flows`` fixture). Without the ``prefect`` extra the tests that need it are skipped, with
the command that installs it; in CI (``CI=true``) that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from signoff.bot.backends.prefect.local import LocalPrefect

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "bot" / "demo" / "prefect_flows.py"
#: deployments FLOWS serves
DEPLOYMENTS = 5
INSTALL = "pip install -c constraints.txt -e '.[prefect]'"
#: Prefect's state types of a run that has not finished
_UNFINISHED = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")


def require_prefect() -> None:
    """Skip the calling test without the extra (fail in CI)."""
    if importlib.util.find_spec("prefect") is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI runs the Prefect tests: the prefect extra is missing ({INSTALL})")
    pytest.skip(f"the prefect extra is not installed: {INSTALL}", allow_module_level=True)


class SharedServer:
    """This test worker's server: started by the first test that asks for it, stopped as
    soon as the next test is not a Prefect test (``tests/conftest.py``). A server kept to
    the end of the session went on serving its runners' and its paused runs' polls, each
    second: a fifth of a core per server for the rest of the suite."""

    def __init__(self) -> None:
        self._stack: ExitStack | None = None
        self._prefect: LocalPrefect | None = None
        self._served: set[Path] = set()

    @property
    def running(self) -> bool:
        return self._stack is not None

    def url(self) -> str:
        return self._server().api_url

    def _server(self) -> LocalPrefect:
        if self._stack is None or self._prefect is None:
            stack = ExitStack()
            self._prefect = stack.enter_context(prefect_server())
            self._stack = stack
        return self._prefect

    def serve(self, path: Path, name: str, deployments: int) -> None:
        """Serve the flows file ``path`` (``deployments`` deployments named ``name``) on
        this server, in one process started by the first test that asks and stopped with
        the server (at once: they are told to stop together)."""
        prefect = self._server()
        if path not in self._served:
            prefect.serve_flows(path, name, deployments=deployments, timeout=300)
            self._served.add(path)

    def cancel_unfinished(self) -> None:
        """Cancel the runs a test left paused, running or scheduled, before the next test's
        bot starts. Left, each paused one polled the server every second, and every later
        test's bot posted it again in its own sandbox (its thread, kept on the server, was
        in an earlier one): load that made the server answer 503 on a busy machine. A
        server named by ``TEST_PREFECT_API_URL`` is not ours to clear."""
        if self._stack is None or os.environ.get("TEST_PREFECT_API_URL"):
            return
        from signoff.bot.backends.prefect.api import PrefectApi
        from signoff.bot.errors import BackendError

        api = PrefectApi(self.url())
        cancelled = {"type": "CANCELLED", "name": "Cancelled"}
        try:
            for _ in range(10):  # 200 a page; a test leaves a few
                left = api.flow_runs(state_types=_UNFINISHED, limit=200)
                if not left:
                    return
                for run in left:
                    api.set_state(str(run["id"]), cancelled, force=True)
        except BackendError:
            pass  # a tidy-up: what it could not cancel waits for the server's stop
        finally:
            api.close()

    def stop(self) -> None:
        stack, self._stack = self._stack, None
        self._prefect = None
        self._served.clear()
        if stack is not None:
            stack.close()


def is_prefect_test(item: pytest.Item) -> bool:
    """True for a test in one of the Prefect groups (the tests that may use the server)."""
    group = item.get_closest_marker("xdist_group")
    return group is not None and str(group.args[0] if group.args else "").startswith("prefect")


@contextmanager
def prefect_server() -> Iterator[LocalPrefect]:
    """A running server with FLOWS served (``TEST_PREFECT_API_URL``'s, when set, is left
    running at the end; only what was served on it here stops)."""
    from signoff.bot.backends.prefect.local import LocalPrefect

    running = os.environ.get("TEST_PREFECT_API_URL") or None
    prefect = LocalPrefect(api_url=running)
    try:
        prefect.start(timeout=900)
        if not running:
            prefect.serve_flows(FLOWS, "tests", deployments=DEPLOYMENTS, timeout=300)
        yield prefect
    finally:
        prefect.stop()
