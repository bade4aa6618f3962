"""Every code block of README.md runs, as written.

How the blocks run (for whoever adds one to the README):

- The blocks run in README order, in one fresh project directory, against one fresh
  SQLite database (``SIGNOFF_DATABASE_URL``) and a local Slack sandbox (``SLACK_API_URL``,
  ``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET``, ``SIGNOFF_CHANNEL``; ``SIGNOFF_PORT=0``).
  ``signoff`` and ``python`` are the ones of the checkout's environment.
- ``python`` blocks are saved to a file and run with Python. A block that defines
  ``test_*`` functions is run with pytest instead. ``<!-- readme-test: file PATH -->`` on
  the line before a block saves it as PATH too (all such files exist before any block
  runs), so other blocks can load it (``--flows flows/deploy.py``).
- ``sh`` blocks run with ``bash -e``. Commands started in the background with ``&`` are
  stopped when the block ends, and must still be running then. A block whose last command
  is a server (``signoff serve``, ``signoff worker``) runs until the server says it is
  ready, then gets SIGTERM and must stop cleanly.
- Blocks with no language, or ``text``, are diagrams: not run.
- A block after ``<!-- quickstart:NAME -->`` runs on a fresh checkout in
  ``tests/demo/test_quickstart.py`` (this test checks that it does).
- ``<!-- readme-test: extra-args ARGS -->`` appends ARGS to a one-line command.
- ``<!-- readme-test: prefect -->`` runs a block with ``PREFECT_API_URL`` set to the test
  session's real Prefect server (``tests/support/prefect.py``), on the worker that has it.
- ``<!-- readme-test: skip REASON -->`` skips a block, with the reason in the test report
  (only for what cannot run in a test run, such as the minutes-long benchmark).
- Any other language fails with a message naming the block.

Each block has ``BLOCK_TIMEOUT`` seconds; a failure shows the block's line and its output.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from signoff.bot.sandbox import SlackSandbox

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK_TIMEOUT = 240.0
#: how a server says it is ready, by the command that starts it
SERVERS = {
    "signoff serve": ("Signoff is listening on", "serve_socket_mode"),
    "signoff worker": ("worker_started",),
}
RUNNABLE = ("python", "sh")
DIAGRAMS = ("", "text")
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*(?P<body>.+?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README."""

    line: int  #: 1-based line of the opening fence
    lang: str
    code: str
    directives: tuple[str, ...]  #: the HTML comments on the lines just before it

    @property
    def label(self) -> str:
        return f"README.md line {self.line} ({self.lang or 'no language'})"

    def directive(self, name: str) -> str | None:
        for found in self.directives:
            if found.startswith(f"readme-test: {name}"):
                return found.removeprefix(f"readme-test: {name}").strip()
        return None

    @property
    def quickstart(self) -> str | None:
        return next((d for d in self.directives if d.startswith("quickstart:")), None)


def read_blocks(text: str) -> list[Block]:
    """Every fenced block, with the directives written on the lines just above it."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        start = index
        # A block inside a list item is indented; its closing fence is too.
        end = next(
            (i for i in range(index + 1, len(lines)) if lines[i].strip().startswith("```")), None
        )
        assert end is not None, f"README.md line {start + 1}: a code block is never closed"
        directives: list[str] = []
        above = start - 1
        while above >= 0 and (found := _DIRECTIVE.match(lines[above].strip())):
            directives.insert(0, found["body"])
            above -= 1
        code = textwrap.dedent("\n".join(lines[start + 1 : end])) + "\n"
        blocks.append(Block(start + 1, fence["lang"], code, tuple(directives)))
        index = end + 1
    return blocks


BLOCKS = read_blocks(README.read_text())


def test_every_block_has_a_known_language() -> None:
    unknown = [b.label for b in BLOCKS if b.lang not in RUNNABLE + DIAGRAMS]
    assert not unknown, (
        f"{', '.join(unknown)}: tests/test_readme.py runs {', '.join(RUNNABLE)} blocks and "
        "skips diagrams (no language, or text); give the block one of these, or teach "
        "the test how to run the new language"
    )


def test_quickstart_blocks_run_on_a_fresh_checkout() -> None:
    quickstart = (ROOT / "tests" / "demo" / "test_quickstart.py").read_text()
    for block in BLOCKS:
        if block.quickstart:
            assert f'"{block.quickstart}"' in quickstart, (
                f"{block.label} is marked {block.quickstart} but "
                "tests/demo/test_quickstart.py does not run it"
            )


# -- the project the blocks run in -----------------------------------------------------------


@dataclass
class Project:
    path: Path
    env: dict[str, str]
    #: lines of the blocks run in this project so far
    ran: set[int] = field(default_factory=set)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    path = tmp_path_factory.mktemp("readme-project")
    for block in BLOCKS:
        name = block.directive("file")
        if name:
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_text(block.code)
    # README commands say .venv/bin/...: this checkout's environment.
    (path / ".venv").symlink_to(Path(sys.prefix))
    (path / "bench").symlink_to(ROOT / "bench")
    with SlackSandbox() as slack:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SIGNOFF_", "SLACK_", "PYTEST_"))
        }
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            HOME=str(path / "home"),
            SIGNOFF_DATABASE_URL=f"sqlite:///{path / 'signoff.db'}",
            SIGNOFF_CHANNEL="C0GENERAL",
            SIGNOFF_PORT="0",
            SLACK_API_URL=slack.api_url,
            SLACK_BOT_TOKEN=slack.token,
            SLACK_SIGNING_SECRET="readme-signing-secret",
            PYTHONPATH=str(ROOT),
        )
        yield Project(path, env)


# -- running one block -------------------------------------------------------------------------


def _stop_group(process: subprocess.Popen[str]) -> None:
    """Stop everything the block started, politely first."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)  # polling the group's exit, not synchronising with it
    os.killpg(process.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _server_of(code: str) -> tuple[str, ...] | None:
    commands = [
        line.split("#", 1)[0].strip() for line in code.splitlines() if line.split("#", 1)[0].strip()
    ]
    last = commands[-1] if commands else ""
    if last.endswith("&"):
        return None
    return next((ready for start, ready in SERVERS.items() if last.startswith(start)), None)


def _run(block: Block, project: Project, argv: list[str]) -> subprocess.CompletedProcess[str]:
    log = project.path / f"block-{block.line}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            argv,
            cwd=project.path,
            env=project.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=BLOCK_TIMEOUT)
            still_running = _group_alive(process.pid)
        except subprocess.TimeoutExpired:
            code, still_running = -1, True
        finally:
            _stop_group(process)
    text = log.read_text()
    assert code != -1, f"{block.label} did not finish in {BLOCK_TIMEOUT:g}s:\n{text[-4000:]}"
    assert code == 0, f"{block.label} exited {code}:\n{text[-4000:]}"
    if "&" in block.code:
        assert still_running, f"{block.label}: a command started with & had ended:\n{text[-4000:]}"
    return subprocess.CompletedProcess(argv, code, text, "")


def _run_server(block: Block, project: Project, argv: list[str], ready: tuple[str, ...]) -> None:
    log = project.path / f"block-{block.line}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            argv,
            cwd=project.path,
            env=project.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + BLOCK_TIMEOUT
        try:
            while not any(marker in log.read_text() for marker in ready):
                ended = process.poll()
                assert ended is None, (
                    f"{block.label}: the server exited {ended} before it was ready:\n"
                    f"{log.read_text()[-4000:]}"
                )
                assert time.monotonic() < deadline, (
                    f"{block.label}: the server was not ready in {BLOCK_TIMEOUT:g}s:\n"
                    f"{log.read_text()[-4000:]}"
                )
                time.sleep(0.05)  # polling the server's log, not synchronising with it
            os.killpg(process.pid, signal.SIGTERM)
            code = process.wait(timeout=30)
        finally:
            _stop_group(process)
    assert code == 0, f"{block.label}: the server did not stop cleanly ({code}):\n{log.read_text()}"


def _defines_tests(code: str) -> bool:
    tree = ast.parse(code)
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
        for node in tree.body
    )


RUNNABLE_BLOCKS = [b for b in BLOCKS if b.lang in RUNNABLE and not b.quickstart]
RUNS = [
    pytest.param(
        b,
        id=f"line{b.line}-{b.lang}",
        # The Prefect server starts once, on the worker of the prefect group, in minutes.
        # The other blocks build on each other (files, database): one worker runs them in order.
        marks=[pytest.mark.xdist_group("prefect"), pytest.mark.timeout(900 + BLOCK_TIMEOUT)]
        if b.directive("prefect") is not None
        else [pytest.mark.xdist_group("readme"), pytest.mark.timeout(BLOCK_TIMEOUT + 60)],
    )
    for b in RUNNABLE_BLOCKS
]


@pytest.mark.parametrize("block", RUNS)
def test_block_runs_as_written(
    block: Block, project: Project, request: pytest.FixtureRequest
) -> None:
    if block.directive("prefect") is not None:
        url = request.getfixturevalue("prefect_api_url")
        project = Project(project.path, {**project.env, "PREFECT_API_URL": url})
    reason = block.directive("skip")
    if reason is not None:
        assert reason, f"{block.label}: readme-test: skip needs a reason"
        pytest.skip(f"{block.label}: {reason}")
    # Blocks build on the ones before them. With several test processes, this one may not
    # have run those yet: it runs them first, so every block sees the README's order. A
    # Prefect block stands alone: it talks to the Prefect server, not to the files and
    # database the blocks before it made, so it neither runs them first nor is run first
    # (here, without the server, it would fail).
    for earlier in RUNNABLE_BLOCKS if block.directive("prefect") is None else ():
        if earlier.line >= block.line:
            break
        if (
            earlier.line not in project.ran
            and earlier.directive("skip") is None
            and earlier.directive("prefect") is None
        ):
            _run_block(earlier, project)
    _run_block(block, project)


def _run_block(block: Block, project: Project) -> None:
    project.ran.add(block.line)
    if block.lang == "python":
        name = block.directive("file") or f"test_readme_block_{block.line}.py"
        if not block.directive("file"):
            (project.path / name).write_text(block.code)
        if _defines_tests(block.code):
            argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name]
        else:
            argv = [sys.executable, name]
        _run(block, project, argv)
        return
    code = block.code
    extra = block.directive("extra-args")
    if extra:
        lines = [line for line in code.splitlines() if line.strip()]
        assert len(lines) == 1, f"{block.label}: extra-args needs a one-line command"
        code = f"{lines[0]} {extra}\n"
    server = _server_of(code)
    argv = ["bash", "-e", "-c", code]
    if server:
        _run_server(block, project, argv, server)
    else:
        _run(block, project, argv)
