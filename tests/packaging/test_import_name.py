"""Signoff installs under one import name, ``signoff``, so a project with its own ``bot.py``
and ``engine/`` keeps them, and Signoff still works beside them.

The wheel is built from this checkout and installed, without its dependencies, into a
fresh virtual environment that borrows the test environment's packages (a ``.pth`` line;
the editable install of this checkout is not among them, since only a site directory's own
``.pth`` files run).
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FLOWS = """\
import bot
import engine
from signoff import RunInput, flow, get_run_logger, pause_flow_run


class Approval(RunInput):
    approved: bool


@flow
def clash_check() -> str:
    answer = pause_flow_run(wait_for_input=Approval)
    get_run_logger().info("project modules: %s, %s", bot.NAME, engine.NAME)
    return f"approved={answer.approved} bot={bot.NAME} engine={engine.NAME}"
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [Path(sys.executable).with_name("uv"), "build", "--wheel", "--out-dir", out, ROOT],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [built] = out.glob("signoff-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [
            Path(sys.executable).with_name("uv"),
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--python",
            python,
            wheel,
        ],
        check=True,
        timeout=300,
    )
    return python


def test_the_wheel_holds_signoff_and_the_engine_short_name_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("signoff-")}
    assert tops == {"signoff", "engine"}
    assert "signoff/engine/runtime.py" in names and "signoff/bot/cli/main.py" in names
    # The short name is only the engine's __init__ (every engine.* is signoff.engine.*).
    assert "engine/__init__.py" in names
    assert "signoff/bot/sandbox/web/templates/" in {n.rpartition("/")[0] + "/" for n in names}


def test_a_project_with_its_own_bot_and_engine_runs_a_flow(
    fresh_python: Path, tmp_path: Path
) -> None:
    (tmp_path / "bot.py").write_text("NAME = 'our bot'\n")
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "__init__.py").write_text("NAME = 'our engine'\n")
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "answers.json").write_text(json.dumps({"clash-check": [{"approved": True}]}))
    env = {**os.environ, "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path}/signoff.db"}
    demo = subprocess.run(
        [
            fresh_python.with_name("signoff"),
            "demo",
            "--flows",
            "flows.py",
            "--answers",
            "answers.json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "approved=True bot=our bot engine=our engine" in demo.stdout + demo.stderr


def test_the_reference_short_name_is_signoffs_engine_itself(
    fresh_python: Path, tmp_path: Path
) -> None:
    check = (
        "import signoff, engine, engine.input\n"
        "from engine import flow\n"
        "assert engine is signoff.engine and flow is signoff.flow\n"
        "assert engine.input.RunInput is signoff.RunInput\n"
        "print(signoff.__version__)\n"
    )
    done = subprocess.run(
        [fresh_python, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()[0].isdigit()
