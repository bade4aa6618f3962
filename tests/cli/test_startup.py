"""The ``signoff`` command starts without what it does not need.

``signoff --help`` took a second: every start imported the engine's database layer
(SQLAlchemy, SQLModel, the migrations), the Slack app (slack_bolt), the scheduler, the
demo and the settings classes. Each test runs the command in a fresh interpreter, as a
user does, and looks at which libraries it imported: no timing, which a busy machine
would make flaky.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import click
import pytest

from signoff.bot.cli.main import LAZY_COMMANDS

#: what only opening a database, serving Slack or talking to Prefect needs
HEAVY = frozenset(
    {
        "alembic",
        "apscheduler",
        "httpx",
        "jsonschema",
        "prefect",
        "psycopg",
        "slack_bolt",
        "slack_sdk",
        "sqlalchemy",
        "sqlmodel",
        "websockets",
    }
)
#: what reading settings and validating input models need
SETTINGS = frozenset({"pydantic", "pydantic_settings"})

#: runs the console script's entry point, then prints the top-level packages it imported
PROBE = """
import json, sys
from signoff.bot.cli.main import main
status = main(sys.argv[1:])
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    """The top-level packages ``signoff ARGS`` imports, run in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=tmp_path,  # no .env of the repository's
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["--version"], []])
def test_signoff_help_and_version_import_neither_the_engine_nor_settings(
    tmp_path: Path, args: list[str]
) -> None:
    assert imported_by(tmp_path, *args) & (HEAVY | SETTINGS) == set()


@pytest.mark.parametrize(
    "command", ["run", "worker", "runs", "runs list", "flows", "db", "audit", "config"]
)
def test_a_commands_help_does_not_import_the_database_or_slack(
    tmp_path: Path, command: str
) -> None:
    assert imported_by(tmp_path, *command.split(), "--help") & HEAVY == set()


def test_importing_signoff_leaves_the_database_layer_until_a_flow_needs_it(
    tmp_path: Path,
) -> None:
    script = (
        "import json, sys, signoff\n"
        "before = sorted(name.partition('.')[0] for name in sys.modules)\n"
        "from signoff import *\n"  # every name of the public API resolves
        "assert callable(flow) and callable(pause_flow_run) and RunInput and __version__\n"
        "print(json.dumps(before))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) & HEAVY == set()


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_help_lists_a_lazy_command_by_its_own_summary(name: str) -> None:
    command = LAZY_COMMANDS[name].load()
    stand_in = click.Command(name, help=LAZY_COMMANDS[name].summary)
    for limit in (45, 80, 1000):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)


def console_script() -> str:
    """What the installed ``signoff`` script runs: pyproject's entry point, called as pip's
    generated script calls it."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    target = tomllib.loads(pyproject.read_text())["project"]["scripts"]["signoff"]
    module, _, function = target.partition(":")
    return f"import sys\nfrom {module} import {function}\nsys.exit({function}())\n"


def test_ctrl_c_while_the_command_imports_exits_130_without_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C in the first ~40 ms of `signoff` (its modules importing) printed a traceback
    from the console script's import line. Python's -X importtime says when click (the
    first thing the commands import) is imported; Ctrl-C is then pressed, again and again,
    until the command exits."""
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-c", console_script(), "runs", "list"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.rpartition("|")[2].strip() == "click":
            break
    else:
        pytest.fail("the command never imported click")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=0.005)
            break
        except subprocess.TimeoutExpired:
            continue
    out, rest = process.communicate(timeout=60)
    err = "".join(line for line in rest.splitlines(True) if not line.startswith("import time:"))
    assert "Traceback" not in err, err
    assert (process.returncode, out, err) == (130, "", "")


def test_the_entry_point_is_reached_before_anything_heavy_is_imported(tmp_path: Path) -> None:
    """What is imported before the entry point's ``try`` is outside its Ctrl-C handling:
    ``signoff`` imported the engine's API with it (some 40 ms), now only when used."""
    module = console_script().splitlines()[1].split()[1]
    script = f"import json, sys, {module}\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    ours = {name for name in json.loads(result.stdout) if name.partition(".")[0] == "signoff"}
    assert ours == {"signoff", "signoff.bot", "signoff.bot.cli", module}
    assert "click" not in json.loads(result.stdout)
