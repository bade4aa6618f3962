"""The README's first command, followed literally in a fresh virtual environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: pip's cache where the suite's own install put it, read before each test's HOME is moved
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pip"
)


def readme_command(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```sh\n(.+?)\n```", text, re.S)
    assert match, f"README has no {marker} command"
    return match.group(1).strip()


# A fresh venv and a pip install: minutes on a loaded machine, past the default timeout.
@pytest.mark.timeout(600)
def test_readme_demo_command_works_in_a_fresh_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "signoff"
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        source = ROOT / name
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # signoff/engine and signoff/bot, as git checks them out
            (checkout / name).symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, checkout / name)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SIGNOFF_", "SLACK_", "VIRTUAL_ENV"))
    }
    env["HOME"] = str(tmp_path / "home")
    # The command is under test, not the network: with the fresh HOME's empty cache, pip
    # downloaded every dependency again (on CI, from the registry).
    env["PIP_CACHE_DIR"] = PIP_CACHE
    done = subprocess.run(
        ["bash", "-c", readme_command("quickstart:demo")],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The install is quiet: the first thing printed is the demo's first Slack message.
    assert done.stdout.startswith("── #general"), done.stdout[:500]
    assert "deploy-production  completed" in done.stdout
    assert "demo finished in" in done.stderr


def test_ci_runs_the_readme_test_command() -> None:
    assert readme_command("quickstart:test") in (ROOT / ".ci" / "run").read_text()
