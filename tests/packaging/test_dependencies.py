"""Dependency ranges: pyproject.toml states them, constraints.txt pins what CI tests.

The resolver tests ask uv's resolver (``uv pip compile``, seconds where pip's takes
minutes) to resolve the package with every extra at the ends of the stated ranges: each
direct dependency at its lower bound, everything at its newest release, and everything
at the CI pins. They need the package index; without it they skip with the reason,
except in CI, where they fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
#: what pip says when it cannot reach the index at all (not when a version is missing)
OFFLINE = re.compile(
    r"NewConnectionError|Network is unreachable|Temporary failure in name resolution"
    r"|Name or service not known|No route to host|error sending request|dns error"
)


def project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def requirements() -> list[Requirement]:
    """Every direct requirement: the core ones and each extra's (not the package itself)."""
    meta = project()
    found = [Requirement(text) for text in meta["dependencies"]]  # type: ignore[attr-defined]
    for items in meta["optional-dependencies"].values():  # type: ignore[attr-defined]
        found += [Requirement(text) for text in items]
    return [req for req in found if canonicalize_name(req.name) != "signoff"]


def extras() -> list[str]:
    return sorted(project()["optional-dependencies"])  # type: ignore[call-overload]


def pins() -> dict[str, Version]:
    pinned: dict[str, Version] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not NAME==VERSION"
        pinned[canonicalize_name(name)] = Version(version)
    return pinned


def lower_bound(req: Requirement) -> Version:
    return next(Version(spec.version) for spec in req.specifier if spec.operator == ">=")


def test_every_dependency_states_a_compatible_range() -> None:
    for req in requirements():
        operators = {spec.operator for spec in req.specifier}
        assert ">=" in operators, f"{req} states no lower bound"
        assert "<" in operators, f"{req} states no upper bound below the next major release"


def test_the_optional_parts_are_extras() -> None:
    assert {"postgres", "test"} <= set(extras())
    core = {canonicalize_name(Requirement(text).name) for text in project()["dependencies"]}  # type: ignore[attr-defined]
    assert "psycopg" not in core, "PostgreSQL's driver belongs to the postgres extra"


def test_constraints_pin_every_dependency_inside_its_range() -> None:
    pinned = pins()
    for req in requirements():
        name = canonicalize_name(req.name)
        assert name in pinned, f"constraints.txt does not pin {req.name}"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pinned[name]}, outside {req.specifier}"
        )


def test_the_readme_test_command_installs_with_the_constraints() -> None:
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"<!-- quickstart:test -->\s*```sh\n(.+?)\n```", readme, re.S)
    assert command, "README has no quickstart:test command"
    assert "-c constraints.txt" in command.group(1)
    assert "-n " in command.group(1), "the suite runs on every core (pytest-xdist)"


def resolve(tmp_path: Path, *options: str) -> dict[str, Version]:
    """What a resolver picks for the package with every extra, on the oldest Python it supports."""
    output = tmp_path / "resolved.txt"
    done = subprocess.run(
        [
            find_uv_bin(),
            "pip",
            "compile",
            "--no-config",
            "--quiet",
            "--no-header",
            "--no-annotate",
            "--python-version",
            project()["requires-python"].removeprefix(">="),  # type: ignore[attr-defined]
            "--all-extras",
            "--output-file",
            str(output),
            *options,
            str(ROOT / "pyproject.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache")},
    )
    if done.returncode != 0 and OFFLINE.search(done.stderr) and not os.environ.get("CI"):
        pytest.skip(f"the package index cannot be reached: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    chosen: dict[str, Version] = {}
    for line in output.read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            chosen[canonicalize_name(name.split("[", 1)[0])] = Version(version)
    return chosen


def test_the_lower_ends_of_the_ranges_resolve_together(tmp_path: Path) -> None:
    chosen = resolve(tmp_path, "--resolution", "lowest-direct")
    for req in requirements():
        name = canonicalize_name(req.name)
        assert chosen[name] == lower_bound(req), (
            f"{req.name}: the resolver chose {chosen[name]} for {req.specifier}; "
            "a lower bound must be a release that installs with the others' lower bounds"
        )


def test_the_newest_releases_in_the_ranges_resolve_together(tmp_path: Path) -> None:
    chosen = resolve(tmp_path, "--resolution", "highest")
    for req in requirements():
        assert req.specifier.contains(chosen[canonicalize_name(req.name)], prereleases=True)


def test_the_versions_ci_tests_resolve_together(tmp_path: Path) -> None:
    pinned = pins()
    chosen = resolve(tmp_path, "--constraint", str(CONSTRAINTS))
    for name, version in chosen.items():
        assert name in pinned, f"constraints.txt does not pin {name} (resolved to {version})"
        assert version == pinned[name], f"{name}: resolved to {version}, CI tests {pinned[name]}"
