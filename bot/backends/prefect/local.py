"""A throwaway Prefect server on this machine, and ``flow.serve`` processes for it.

For ``signoff demo --backend prefect`` and the test suite: the server runs with SQLite in
a temporary ``PREFECT_HOME``, from this interpreter (which has the ``signoff[prefect]``
extra) unless another is named. Signoff itself only talks to it over HTTP.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from signoff.bot.backends.prefect.api import PrefectApi, auth_headers
from signoff.bot.errors import BackendUnavailable

#: runs a flows file with its flow runs forked, not spawned (see that file)
_FORKING = Path(__file__).with_name("forking.py")
#: how long stop() lets each process exit on SIGTERM before it kills it
_STOP_GRACE_SECONDS = 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPrefect:
    """Example::

    with LocalPrefect() as prefect:
        prefect.serve_flows(Path("flows.py"), "demo", deployments=3)
        backend = PrefectBackend(PrefectSettings.load(api_url=prefect.api_url))
    """

    def __init__(
        self,
        python: str | Path | None = None,
        *,
        runner_poll_seconds: int = 1,
        api_url: str | None = None,
        auth_string: str | None = None,
    ) -> None:
        """``api_url`` names a server that is running already: ``start`` then only checks
        it answers (and takes ``auth_string``), and ``stop`` leaves it running. A server
        started here with ``auth_string`` asks for it (``PREFECT_SERVER_API_AUTH_STRING``);
        either way the flows served here send it."""
        self.python = str(python or sys.executable)
        self.home = Path(tempfile.mkdtemp(prefix="signoff-prefect-"))
        self.external = api_url is not None
        self.port = _free_port()
        self.api_url = api_url.rstrip("/") if api_url else f"http://127.0.0.1:{self.port}/api"
        self.auth_string = auth_string or None
        self._headers = auth_headers(self.auth_string, None)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            # A served flow picks up a scheduled run within this many seconds (default 10).
            "PREFECT_RUNNER_POLL_FREQUENCY": str(runner_poll_seconds),
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
            # Temporary files go with the home: the forkserver's socket folder (forking.py)
            # outlived every stop in /tmp, the processes being killed.
            "TMPDIR": str(self.home / "tmp"),
        }
        (self.home / "tmp").mkdir()
        if self.auth_string:
            self.env["PREFECT_API_AUTH_STRING"] = self.auth_string
            if not self.external:
                self.env["PREFECT_SERVER_API_AUTH_STRING"] = self.auth_string
        self.processes: list[subprocess.Popen[bytes]] = []
        self._server: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalPrefect:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def log(self, name: str) -> str:
        """The output of ``server`` or of a ``flows-N`` process so far."""
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.home / f"{name}.log").open("ab") as out:
            process = subprocess.Popen(
                [self.python, *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                # Its own process group: a runner's flow-run processes stop with it.
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def start(self, timeout: float = 900) -> None:
        """Start the server (it migrates its new SQLite database first); return once it
        answers its health check.

        Raises:
            BackendUnavailable: it exited or did not answer in time (its log is in the message).
        """
        if self.external:
            self._check_external(timeout=min(timeout, 30))
            # Its health check answers anyone: a wrong auth string shows on a real call.
            api = PrefectApi(self.api_url, auth_string=self.auth_string)
            try:
                api.check_access()
            finally:
                api.close()
            return
        server = self._server = self._spawn(
            "server",
            ["-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.poll() is not None:
                self.stop()
                raise BackendUnavailable(
                    "prefect", f"prefect server exited: {self.log('server')[-2000:]}"
                )
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise BackendUnavailable("prefect", f"prefect server did not start within {timeout:.0f}s")

    def _check_external(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError as exc:
                if time.monotonic() >= deadline:
                    raise BackendUnavailable(
                        "prefect", f"{self.api_url} cannot be reached: {exc}"
                    ) from exc
            if time.monotonic() >= deadline:
                raise BackendUnavailable("prefect", f"{self.api_url} failed its health check")
            time.sleep(0.2)

    def serve_flows(self, path: Path, *args: str, deployments: int, timeout: float = 120) -> None:
        """Run ``python path *args`` (a file that calls ``serve``; through ``forking.py``,
        so that each flow run does not import Prefect again); return once the server
        lists ``deployments`` deployments (named ``args[0]``, when given).

        Raises:
            BackendUnavailable: the process exited or the deployments did not appear.
        """
        name = f"flows-{len(self.processes)}"
        process = self._spawn(name, [str(_FORKING), str(path), *args])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BackendUnavailable("prefect", f"{path} exited: {self.log(name)[-2000:]}")
            # On a shared server, count only this file's deployments.
            wanted = {"deployments": {"name": {"any_": [args[0]]}}} if args else {}
            found = httpx.post(
                f"{self.api_url}/deployments/filter", json=wanted, headers=self._headers, timeout=5
            ).json()
            if len(found) >= deployments:
                return
            time.sleep(0.1)
        raise BackendUnavailable(
            "prefect", f"{path} did not register {deployments} deployments in time"
        )

    def stop(self) -> None:
        """Stop every process (flows first, the server once they are gone; a server this
        object did not start keeps running) and remove the home."""
        self._stop_all([p for p in self.processes if p is not self._server])
        self._stop_all([p for p in self.processes if p is self._server])
        self.processes.clear()
        self._server = None
        shutil.rmtree(self.home, ignore_errors=True)

    @staticmethod
    def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
        """SIGTERM ``processes``, then SIGKILL those still running after one grace period.

        A flow-serving process pauses its deployments on SIGTERM, through the server: with
        the server stopping too it retried for 20 s and more. Stopped first, while the
        server answers, it exits in a few seconds; the grace (shared, not one each) bounds
        the rest, their home being thrown away anyway."""
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        for process in processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
