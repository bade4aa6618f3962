"""PREFECT_API_URL naming a Prefect server without its ``/api`` (the UI's address, the
most common slip) is said to be that, naming the URL: not read as runs not found, which
told people their run was gone and closed its prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends import Actor
from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
from signoff.bot.errors import BackendUnavailable
from tests.prefect.test_runs_cli import PrefectCli, error_of, paused
from tests.support.cli_forks import CliForks

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]


def test_an_api_url_without_api_is_named_not_read_as_a_missing_run(
    prefect_backend: PrefectBackend, prefect_api_url: str, tmp_path: Path, cli_forks: CliForks
) -> None:
    run_id = paused(prefect_backend, "greet-user/tests")
    root = prefect_api_url.removesuffix("/api")
    cli = PrefectCli(root, tmp_path, cli_forks)

    # Before: "error: no run with id '...'" for a run waiting right there.
    said = error_of(cli("runs", "show", "--backend", "prefect", run_id))
    assert f"{root} has no Prefect API" in said and "ending in /api" in said
    assert f"{root} has no Prefect API" in error_of(cli("runs", "list", "--backend", "prefect"))

    # The Slack side reads "not found" as the run deleted, and closes its prompt.
    wrong = PrefectBackend(PrefectSettings.load(api_url=root))
    try:
        with pytest.raises(BackendUnavailable, match="ending in /api"):
            wrong.answer(run_id, "paused-1", {"name": "Ada"}, responder=Actor("U0ALICE"))
    finally:
        wrong.close()
    assert prefect_backend.waiting_pause(run_id) is not None
