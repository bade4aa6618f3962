"""Two flows files that define a flow of the same name are refused by name, as an
operator starting a worker sees it: otherwise the one loaded last would run, silently,
and a replica given the files in another order would run the other."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.command import signoff_in

DEPLOY = """
from signoff.engine import flow


@flow(name="deploy")
def deploy_{which}() -> str:
    return "{which}"
"""


def signoff(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return signoff_in(folder, *args, database="flows.db")


@pytest.mark.parametrize(
    "sources", [["--flows", "flows"], ["--flows", "flows/blue.py", "--flows", "flows/green.py"]]
)
@pytest.mark.parametrize("command", [["flows", "list"], ["worker"]])
def test_two_files_defining_one_flow_name_are_refused_naming_both(
    tmp_path: Path, command: list[str], sources: list[str]
) -> None:
    (tmp_path / "flows").mkdir()
    for which in ("blue", "green"):
        (tmp_path / "flows" / f"{which}.py").write_text(DEPLOY.format(which=which))
    done = signoff(tmp_path, *command, *sources)
    assert done.returncode == 1, done
    [line] = done.stderr.splitlines()
    blue, green = (tmp_path / "flows" / f"{w}.py" for w in ("blue", "green"))
    assert line.endswith(
        f"flow 'deploy' is defined in both {blue} and {green}; give one of them another "
        "name (@flow(name=...))"
    ), line


def test_a_flow_imported_by_the_file_beside_it_is_defined_once(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "blue.py").write_text(DEPLOY.format(which="blue"))
    (tmp_path / "flows" / "more.py").write_text("from blue import deploy_blue  # noqa\n")
    done = signoff(tmp_path, "flows", "list", "--flows", "flows")
    assert done.returncode == 0, done.stderr
    assert "deploy" in done.stdout


def test_one_file_named_as_a_module_and_as_a_path_is_one_definition(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "__init__.py").write_text("")
    (tmp_path / "flows" / "blue.py").write_text(DEPLOY.format(which="blue"))
    done = signoff(tmp_path, "flows", "list", "--flows", "flows.blue", "--flows", "flows/blue.py")
    assert done.returncode == 0, done.stderr
    assert "deploy" in done.stdout


def test_one_file_defining_one_flow_name_twice_is_refused_naming_both(tmp_path: Path) -> None:
    # It was accepted silently, and the second definition ran.
    (tmp_path / "flows.py").write_text(
        DEPLOY.format(which="blue") + DEPLOY.format(which="green").split("\n", 2)[2]
    )
    done = signoff(tmp_path, "flows", "list", "--flows", "flows.py")
    assert done.returncode == 1, done
    [line] = done.stderr.splitlines()
    file = tmp_path / "flows.py"
    assert line.endswith(
        f"flow 'deploy' is defined in both {file} (deploy_blue) and {file} (deploy_green); "
        "give one of them another name (@flow(name=...))"
    ), line


def test_a_flows_file_that_exits_is_named_as_one_that_fails_to_import(tmp_path: Path) -> None:
    # Every command ended with status 3 and said nothing.
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "exits.py").write_text("import sys\nsys.exit(3)\n")
    done = signoff(tmp_path, "flows", "list", "--flows", "bad/")
    assert done.returncode == 1, done
    # Which of the folder's files, too.
    assert done.stderr == "error: cannot load flows from bad/: exits.py: SystemExit: 3\n"


def test_a_worker_given_a_flows_file_without_a_flow_says_so_instead_of_taking_nothing(
    tmp_path: Path,
) -> None:
    # It started ("worker started flows=[]") and took no run, ever.
    (tmp_path / "flows.py").write_text("def deploy() -> str:\n    return 'done'\n")
    done = signoff(tmp_path, "worker", "--flows", "flows.py")
    assert done.returncode == 1, done
    assert done.stderr == (
        "error: no flows in flows.py: a flow is a function decorated with @flow "
        "(from signoff import flow); this worker would take no run\n"
    )
    assert not (tmp_path / "flows.db").exists()
