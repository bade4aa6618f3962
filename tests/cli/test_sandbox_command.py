"""``signoff sandbox`` and ``signoff demo --web``: one command, then open the printed URL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.ipv6 import skip_without_ipv6_loopback
from tests.support.signals import signal_a_thread_but_the_main_one
from tests.support.waiting import wait_for

PREFIX = "Sandbox page: "


@contextmanager
def command(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run ``signoff ARGS`` until the block ends (then Ctrl-C it); yield it and its URL."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "signoff.bot.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the page is up (or the process died)
        assert line.startswith(PREFIX), (
            f"no URL printed: {line!r} {process.stderr.read() if process.poll() is not None else ''}"
        )  # type: ignore[union-attr]
        yield process, line.removeprefix(PREFIX).strip()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_sandbox_serves_the_page_on_localhost_and_starts_runs(tmp_path: Path) -> None:
    with command(
        "--database-url",
        f"sqlite:///{tmp_path}/t.db",
        "sandbox",
        "--flows",
        "signoff.bot.demo.flows",
        "--port",
        "0",
        "--start",
        "get-shirt-order",
    ) as (process, url):
        assert url.startswith("http://127.0.0.1:")
        html = wait_for(
            lambda: (text := page(url + "?as=U0ALICE")) and "is waiting for input" in text and text,
            timeout=60,
            what="the run's prompt on the page",
        )
        assert "get-shirt-order" in html and "Provide input" in html
    assert process.returncode == 0
    assert "for local development" in process.stderr.read()  # type: ignore[union-attr]


def test_sandbox_on_an_ipv6_address_prints_a_url_that_opens(tmp_path: Path) -> None:
    """'--host ::1' could not listen at all ("Address family for hostname not supported"),
    and its URL would have read http://::1:PORT/, which no client can parse."""
    skip_without_ipv6_loopback()
    with command(
        "--database-url", f"sqlite:///{tmp_path}/t.db", "sandbox", "--host", "::1", "--port", "0"
    ) as (process, url):
        assert re.fullmatch(r"http://\[::1\]:\d+/", url), url
        assert "Provide input" not in page(url)  # it opens (no runs were started)
    assert process.returncode == 0


def test_demo_web_starts_the_demo_flows_for_a_person_to_answer() -> None:
    with command("demo", "--web", "--port", "0") as (process, url):
        html = wait_for(
            lambda: (text := page(url)) and text.count("Provide input") >= 3 and text,
            timeout=60,
            what="three prompts",
        )
        for flow in ("greet-user", "get-shirt-order", "deploy-production"):
            assert flow in html
    assert process.returncode == 0


def test_ctrl_c_stops_the_demo_whichever_thread_the_signal_reaches() -> None:
    """Python runs signal handlers on the main thread only; a signal delivered to another
    thread used to leave the main thread asleep in an untimed wait, and the command running."""
    with command("demo", "--web", "--port", "0") as (process, url):
        wait_for(lambda: page(url).count("Provide input") >= 3, timeout=60, what="three prompts")
        signal_a_thread_but_the_main_one(process.pid, signal.SIGINT)
        began = time.monotonic()
        process.wait(timeout=20)
        assert time.monotonic() - began < 10
    assert process.returncode == 0


def test_sandbox_leaves_the_database_of_signoff_database_url_alone(tmp_path: Path) -> None:
    """Exported for the team's database, it had the sandbox consume that database's Slack
    outbox and leave its sandbox users' runs there."""
    team = tmp_path / "team.db"
    with command(
        *("sandbox", "--flows", "signoff.bot.demo.flows", "--port", "0"),
        *("--start", "get-shirt-order"),
        env={"SIGNOFF_DATABASE_URL": f"sqlite:///{team}"},
    ) as (process, url):
        wait_for(
            lambda: "is waiting for input" in page(url + "?as=U0ALICE"),
            timeout=60,
            what="the run's prompt on the page",
        )
    assert not team.exists()
    assert process.stderr is not None
    assert "not in SIGNOFF_DATABASE_URL's; give --database-url" in process.stderr.read()


def test_a_start_that_needs_parameters_says_how_to_start_it_and_starts_nothing(
    tmp_path: Path,
) -> None:
    """It ended with the flow's "Field required" alone, after starting the runs before it."""
    (tmp_path / "deploy.py").write_text(
        "from signoff.engine import flow\n\n"
        "@flow(name='deploy-to')\ndef deploy(version: str) -> str:\n    return version\n"
    )
    database = tmp_path / "t.db"
    done = subprocess.run(
        [sys.executable, "-m", "signoff.bot.cli", "--database-url", f"sqlite:///{database}"]
        + ["sandbox", "--flows", str(tmp_path / "deploy.py"), "--flows", "signoff.bot.demo.flows"]
        + ["--port", "0", "--start", "get-shirt-order", "--start", "deploy-to"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "error: --start deploy-to: invalid parameters for flow" in done.stderr
    assert "version: Field required" in done.stderr
    assert "/runs start deploy-to, which asks for its parameters" in done.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "signoff.bot.cli", "--database-url", f"sqlite:///{database}"]
        + ["runs", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "get-shirt-order" not in listed.stdout


def test_a_second_demo_web_on_the_same_port_says_what_holds_it_and_how_to_choose_another() -> None:
    with command("demo", "--web", "--port", "0") as (_first, url):
        port = url.rstrip("/").rsplit(":", 1)[1]
        second = subprocess.run(
            [sys.executable, "-m", "signoff.bot.cli", "demo", "--web", "--port", port],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).resolve().parents[2],
        )
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in second.stderr
    assert "another 'signoff demo --web' or 'signoff sandbox' may be serving it" in second.stderr
    assert "--port, 0 for any free one" in second.stderr
