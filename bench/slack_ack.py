"""How fast the bot acknowledges Slack when many people submit at once.

Slack waits 3 s for the answer to a ``view_submission``; the targets are tighter. Each
scenario opens one modal per person through the local Slack sandbox and has the sandbox
fill in and sign each person's submission. Then all of them are sent at the same moment
from one asyncio loop (one connection each, so the sender costs next to nothing), and the
time from a request's first byte leaving to the app's whole answer arriving is recorded,
as Slack would see it. So is the CPU the bot's processes spent while the burst lasted,
per submission: on 2 cores, two replicas that need 1 ms each cannot acknowledge 1,000
submissions in much under half a second, however the work is arranged.

- *50 at once, one process, SQLite*: 50 runs wait for input; 50 people answer them. The
  bot is one ``signoff serve`` process, as deployed; Slack (the sandbox) and the people
  sending are the bench process, as they would be on other machines.
- *1,000 at once, two replicas, PostgreSQL*: 200 runs wait; five people answer each, half
  of them on each replica (two ``signoff serve`` processes, as a load balancer would
  spread them). One answer per run wins; the other 800 are told it is already answered.
- *a slow listener*: while 50 people submit, Slack takes 2 s to answer the bot's
  ``views.open`` for ten others clicking "Provide input" (so those listeners are stuck);
  the submissions' acks must not wait for them.
- *the acknowledgement alone* (no target): 300 submissions handed one after another to the
  bot's WSGI application in the bench's own thread, with no HTTP server: what the bot's
  own code costs per submission, against the whole process's CPU in the bursts above.

Usage::

    .venv/bin/python bench/slack_ack.py             # all four scenarios
    .venv/bin/python bench/slack_ack.py --only 50   # one of: 50, 1000, slow, edge

Prints a Markdown table; the README quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import flows  # noqa: E402  (the bench's flows: bench-wait with a two-field RunInput)
import peers.common  # noqa: E402
from measuring import cpu_seconds, engine_on  # noqa: E402

from signoff.bot.sandbox import SlackSandbox  # noqa: E402
from signoff.bot.sandbox.records import AppResponse  # noqa: E402
from signoff.bot.sandbox.transport import HttpDriver  # noqa: E402
from signoff.bot.slack import ids  # noqa: E402
from signoff.bot.testing import SIGNING_SECRET  # noqa: E402
from signoff.engine import Engine, EngineSettings, RunState  # noqa: E402

CHANNEL = "C0GENERAL"
KEEP_OPEN = json.dumps({"response_action": "errors", "errors": {}}).encode()
TARGETS: dict[str, float | None] = {"50": 100.0, "1000": 300.0, "slow": 100.0, "edge": None}


class Submission(NamedTuple):
    url: str
    body: bytes
    headers: dict[str, str]


class Replica(NamedTuple):
    """A ``signoff serve`` process: where Slack sends its requests, and its pid."""

    url: str
    pid: int


class Burst(NamedTuple):
    """What a burst of submissions measured: each one's time to its acknowledgement (ms),
    and the CPU the bot's processes spent while the burst lasted, per submission (ms)."""

    times: list[float]
    cpu_per_submission: float


class CapturingDriver(HttpDriver):
    """A sandbox driver that sends everything except view submissions, which it keeps
    (built and signed exactly as it would send them) for ``send_together``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept: list[Submission] = []

    def deliver(self, kind: Any, payload: Mapping[str, Any]) -> AppResponse:
        if payload.get("type") != "view_submission":
            return super().deliver(kind, payload)
        body = urlencode({"payload": json.dumps(payload)}).encode()
        self.kept.append(Submission(self.app_url, body, self.signed_headers(body)))
        # Not sent yet, so nothing to apply: the form stays open until the bot's views.update
        # replaces it with the outcome (an empty "errors" answer changes no view).
        return AppResponse.parse(200, KEEP_OPEN, {"Content-Type": "application/json"})


def capturing_driver(slack: SlackSandbox, url: str) -> CapturingDriver:
    return CapturingDriver(slack.workspace, slack.base_url, url, SIGNING_SECRET, timeout=60)


class Gate:
    """Holds every sender until all of them have connected, then lets them go at once."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.connected = 0
        self.open = asyncio.Event()

    def arrived(self) -> None:
        self.connected += 1
        if self.connected == self.expected:
            self.open.set()


async def _post(submission: Submission, gate: Gate) -> tuple[int, float]:
    parts = urlsplit(submission.url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = "".join(f"{k}: {v}\r\n" for k, v in submission.headers.items())
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}"
        f"Content-Length: {len(submission.body)}\r\nConnection: close\r\n\r\n"
    ).encode() + submission.body
    gate.arrived()
    await gate.open.wait()
    began = time.perf_counter()
    writer.write(request)
    await writer.drain()
    answer = await reader.read()  # the server closes the connection after its answer
    took = (time.perf_counter() - began) * 1000
    writer.close()
    return int(answer.split(b" ", 2)[1]), took


def send_together(submissions: list[Submission], bots: list[Replica]) -> Burst:
    """Send every submission at once and check that each was answered 200; the burst's
    figures (the ``bots``' CPU counted from the first byte sent to the last answer)."""

    async def main() -> list[tuple[int, float]]:
        gate = Gate(len(submissions))
        return await asyncio.gather(*(_post(s, gate) for s in submissions))

    before = sum(cpu_seconds(bot.pid) for bot in bots)
    results = asyncio.run(main())
    spent = sum(cpu_seconds(bot.pid) for bot in bots) - before
    statuses = [r[0] for r in results]
    assert statuses == [200] * len(submissions), statuses
    return Burst([r[1] for r in results], spent * 1000 / len(submissions))


#: waits between checks every 10 ms: a check walks the channel's messages
wait_until = functools.partial(peers.common.wait_until, every=0.01)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def root_of(slack: SlackSandbox, run_id: str) -> Any:
    return wait_until(
        lambda: next(
            (m for m in slack.channel(CHANNEL).messages if run_id[:8] in m.text and m.blocks),
            None,
        ),
        60,
        f"the prompt of run {run_id[:8]}",
    )


def open_modals(
    slack: SlackSandbox, driver: CapturingDriver, run_ids: list[str], per_run: int
) -> list[str]:
    """One person per answer: each clicks "Provide input" on their run's prompt."""
    people = []
    for i, run_id in enumerate(run_ids):
        root = root_of(slack, run_id)
        for j in range(per_run):
            user = f"UB{i:04d}{j}"
            slack.add_user(user, f"person{i}x{j}")
            driver.click(user, root, action_id=ids.PROVIDE_INPUT)
            people.append(user)
    wait_until(lambda: all(slack.workspace.open_view(u) for u in people), 60, "every modal to open")
    return people


def fill_in(driver: CapturingDriver, people: list[str]) -> list[Submission]:
    """Each person fills in and submits their modal; the signed requests, not yet sent."""
    for user in people:
        driver.submit(user, flows.ANSWER)
    kept, driver.kept = driver.kept, []
    return kept


def paused_runs(engine: Engine, count: int, timeout: float = 120) -> list[str]:
    started = [engine.submit("bench-wait", {"tag": f"ack-{i}"}).id for i in range(count)]
    wait_until(
        lambda: all(engine.get_run(r).state is RunState.PAUSED for r in started),
        timeout,
        f"{count} runs to wait for input",
    )
    return started


@contextmanager
def one_process() -> Iterator[tuple[SlackSandbox, Engine, Replica]]:
    """The bot as deployed on SQLite: one ``signoff serve`` process running the bench flows.
    Slack (the sandbox) and the people submitting are this process, as they would be
    elsewhere, so that their work does not take the bot's interpreter lock."""
    with tempfile.TemporaryDirectory() as tmp, SlackSandbox() as slack:
        url = f"sqlite:///{tmp}/signoff.db"
        engine = Engine(EngineSettings.load(database_url=url))
        try:
            with replica(slack, url, Path(tmp)) as app:
                yield slack, engine, app
        finally:
            engine.close()


def fifty(count: int = 50) -> Burst:
    with one_process() as (slack, engine, app):
        runs = paused_runs(engine, count)
        driver = capturing_driver(slack, app.url)
        requests = fill_in(driver, open_modals(slack, driver, runs, 1))
        burst = send_together(requests, [app])
        wait_until(
            lambda: all(engine.get_run(r).state is RunState.COMPLETED for r in runs),
            60,
            "every run to finish",
        )
        return burst


def slow_listener(count: int = 50, stuck: int = 10) -> Burst:
    with one_process() as (slack, engine, app):
        runs = paused_runs(engine, count + stuck)
        driver = capturing_driver(slack, app.url)
        requests = fill_in(driver, open_modals(slack, driver, runs[:count], 1))
        slack.answer_late("views.open", 2.0, times=stuck)
        clickers = []
        for i, run_id in enumerate(runs[count:]):
            user = f"UCLICK{i:03d}"
            slack.add_user(user, f"clicker{i}")
            clickers.append((user, root_of(slack, run_id)))
        # The clicks are acknowledged at once; their listeners then wait on views.open.
        for user, root in clickers:
            driver.click(user, root, action_id=ids.PROVIDE_INPUT)
        return send_together(requests, [app])


def edge(count: int = 300) -> Burst:
    """The acknowledgement alone: submissions handed one after another to the bot's WSGI
    application in this thread, with no HTTP server and nothing else arriving; the time
    and the CPU of each call (the answers still follow on their pool)."""
    from signoff.bot.backends.embedded import EmbeddedBackend
    from signoff.bot.testing import serving

    with tempfile.TemporaryDirectory() as tmp, engine_on(f"sqlite:///{tmp}/s.db") as engine:
        backend = EmbeddedBackend(engine, flows=[str(BENCH / "flows.py")])
        with serving(backend, channel=CHANNEL) as bot:
            application = bot.server.application
            assert application is not None
            driver = capturing_driver(bot.slack, f"{bot.server.url}/slack/events")
            runs = paused_runs(engine, 1)
            requests = fill_in(driver, open_modals(bot.slack, driver, runs, count))
            times, cpu = [], 0.0
            for request in requests:
                environ = _environ(request)
                began, began_cpu = time.perf_counter(), time.thread_time()
                b"".join(application(environ, lambda status, headers: None))
                cpu += time.thread_time() - began_cpu
                times.append((time.perf_counter() - began) * 1000)
            return Burst(times, cpu * 1000 / count)


def _environ(request: Submission) -> dict[str, Any]:
    """The WSGI environ an HTTP server would build for ``request``."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": urlsplit(request.url).path,
        "CONTENT_LENGTH": str(len(request.body)),
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
    }
    for name, value in request.headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return environ


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def replica(slack: SlackSandbox, url: str, tmp: Path) -> Iterator[Replica]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_"))}
    env.update(
        SLACK_BOT_TOKEN=slack.token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        SIGNOFF_CHANNEL=CHANNEL,
        SIGNOFF_DATABASE_URL=url,
        HOME=str(tmp),
    )
    log = (tmp / f"replica-{port}.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signoff.bot.cli",
            "serve",
            "--port",
            str(port),
            "--flows",
            str(BENCH / "flows.py"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: _answers(port), 120, f"the replica on port {port}")
        yield Replica(f"http://127.0.0.1:{port}/slack/events", process.pid)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def thousand(runs: int = 200, per_run: int = 5) -> Burst:
    from run import new_database  # bench/run.py: a fresh database on the cluster

    from tests.support.postgres import start_cluster

    cluster = start_cluster()
    try:
        url = new_database(cluster, "ack")
        engine = Engine(EngineSettings.load(database_url=url))
        try:
            with (
                tempfile.TemporaryDirectory() as tmp,
                SlackSandbox() as slack,
                replica(slack, url, Path(tmp)) as first,
                replica(slack, url, Path(tmp)) as second,
            ):
                paused = paused_runs(engine, runs, timeout=300)
                drivers = [capturing_driver(slack, first.url), capturing_driver(slack, second.url)]
                people = open_modals(slack, drivers[0], paused, per_run)
                requests = fill_in(drivers[0], people[0::2]) + fill_in(drivers[1], people[1::2])
                burst = send_together(requests, [first, second])
                wait_until(
                    lambda: all(engine.get_run(r).state is RunState.COMPLETED for r in paused),
                    120,
                    "every run to finish",
                )
                return burst
        finally:
            engine.close()
    finally:
        cluster.stop()


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def _target(p99: float | None) -> str:
    return "–" if p99 is None else f"p99 ≤ {p99:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(TARGETS))
    args = parser.parse_args()
    scenarios = {
        "50": ("50 submissions at once, one process, SQLite", fifty),
        "1000": ("1,000 submissions at once, two replicas, PostgreSQL", thousand),
        "slow": ("50 submissions while 10 listeners wait 2 s on views.open", slow_listener),
        "edge": ("300 submissions one after another, in-thread, no HTTP server", edge),
    }
    rows = []
    for key, (label, scenario) in scenarios.items():
        if args.only and key != args.only:
            continue
        times, cpu = scenario()
        rows.append(
            f"| {label} | {_ms(percentile(times, 0.5))} / {_ms(percentile(times, 0.99))} / "
            f"{_ms(max(times))} ms | {cpu:.2f} ms | {_target(TARGETS[key])} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
    print("| scenario | ack p50 / p99 / max | bot CPU per submission | target |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
