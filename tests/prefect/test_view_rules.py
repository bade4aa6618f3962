"""The Prefect backend's view rule over its permissions file, without a server: the same
rule as the embedded engine's, with ``view`` naming who may only see a flow's runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from signoff.bot.backends.model import Actor, Run, RunState
from signoff.bot.backends.prefect.rules import Rules
from signoff.bot.backends.prefect.settings import Permissions
from signoff.bot.errors import SettingsError

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def run_of(flow_name: str, started_by: str | None = "U0CAROL") -> Run:
    return Run("0" * 32, flow_name, RunState.COMPLETED, "Completed", None, {}, NOW, NOW, started_by)


def test_view_names_who_may_only_see_a_flow_s_runs(tmp_path: Path) -> None:
    path = tmp_path / "permissions.json"
    path.write_text(json.dumps({"deploy": {"view": ["U0AUDREY"]}, "other": {}}))
    permissions = Permissions.read(path)
    rules = Rules()
    deploy = permissions.for_run("deploy", None)
    assert rules.view(Actor("U0AUDREY"), run_of("deploy"), deploy) is None
    assert rules.view(Actor("U0CAROL"), run_of("deploy"), deploy) is None  # started it
    assert rules.view(Actor("U0BOB"), run_of("deploy"), deploy, acted={"U0BOB"}) is None
    refused = rules.view(Actor("U0BOB"), run_of("deploy"), deploy)
    assert refused is not None and "its viewers" in refused.reason
    assert refused.allowed == ("U0CAROL", "U0AUDREY")
    # A flow whose entry names nobody shows its runs to anyone.
    assert rules.view(Actor("U0BOB"), run_of("other"), permissions.for_run("other", None)) is None
    # A request handed to someone lets them see it, though the file does not name them.
    assert rules.view(Actor("U0NEW"), run_of("deploy"), deploy, approvers=["U0NEW"]) is None


def test_an_empty_id_among_viewers_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "permissions.json"
    path.write_text(json.dumps({"deploy": {"view": [" "]}}))
    with pytest.raises(SettingsError, match="deploy.view: holds an empty id"):
        Permissions.read(path)
