"""A secret inside a nested model of a Prefect request is kept out of what Signoff records
and shows, as a top-level one is: Prefect's schema points at nested models with
``#/definitions/...``, which the masking did not follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends.prefect import PrefectBackend
from tests.prefect.test_runs_cli import PrefectCli, paused
from tests.support.cli_forks import CliForks

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]


def test_a_nested_secret_answered_from_the_cli_is_not_recorded_or_shown(
    prefect_backend: PrefectBackend,
    prefect_api_url: str,
    served_flows: str,
    tmp_path: Path,
    cli_forks: CliForks,
) -> None:
    cli = PrefectCli(prefect_api_url, tmp_path, cli_forks)
    run_id = paused(prefect_backend, f"nested-secret/{served_flows}")
    out = cli.ok(
        *("runs", "resume", "--backend", "prefect", run_id),
        *("--input", '{"login": {"user": "ada", "password": "hunter2"}}', "--as", "alice"),
    )
    assert out.startswith(f"resumed {run_id}")
    cli.ok("runs", "wait", "--backend", "prefect", run_id, "--timeout", "120")

    # Before: the audit trail and the answer shown both held "hunter2".
    shown = cli.ok("runs", "show", "--backend", "prefect", run_id, "--json")
    assert "hunter2" not in shown
    assert '"user": "ada"' in shown and "**********" in shown
    assert "hunter2" not in repr(prefect_backend.audit_trail(run_id))
