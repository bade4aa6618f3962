"""Which backend a command works on: ``--backend embedded`` (Signoff's own engine, from
``SIGNOFF_DATABASE_URL``) or ``--backend prefect`` (the Prefect server at
``PREFECT_API_URL``, with ``PREFECT_API_AUTH_STRING`` or ``PREFECT_API_KEY`` and the
``SIGNOFF_PREFECT_*`` settings).

``serve`` and the ``runs`` commands choose alike, through ``open_backend``; the Prefect
backend is imported only when it is chosen, so the embedded commands start without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

if TYPE_CHECKING:
    from signoff.bot.backends import Backend
    from signoff.bot.cli.session import CliSession

F = TypeVar("F", bound=Callable[..., Any])

BackendName = Literal["embedded", "prefect"]
BACKENDS: tuple[BackendName, ...] = ("embedded", "prefect")


def backend_option(help_text: str) -> Callable[[F], F]:
    """``--backend embedded|prefect`` (default embedded), passed as ``backend_name``."""
    return click.option(
        "--backend",
        "backend_name",
        type=click.Choice(BACKENDS),
        default="embedded",
        show_default=True,
        help=help_text,
    )


def open_backend(session: CliSession, name: str, sources: tuple[str, ...] = ()) -> Backend:
    """The backend ``--backend`` names, from its settings.

    Raises:
        SettingsError: a setting is missing or malformed (``PREFECT_API_URL``, ...).
        click.UsageError: ``--flows`` given with the Prefect backend (Prefect runs them).
        click.ClickException: the Prefect backend without the ``prefect`` extra installed.
    """
    if name != "prefect":
        from signoff.bot.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(session.engine(), flows=sources)
    if sources:
        raise click.UsageError("--flows is for the embedded engine; Prefect serves its own flows")
    try:
        from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
    except ImportError as exc:
        raise click.ClickException(
            f"the Prefect backend needs the extra: pip install 'signoff[prefect]' ({exc})"
        ) from exc
    return PrefectBackend(PrefectSettings.load())


def prefect_for_command(session: CliSession) -> Backend:
    """The Prefect backend for one command, closed (its HTTP connections) when it ends."""
    backend = open_backend(session, "prefect")
    close = getattr(backend, "close", None)
    if close is not None:
        click.get_current_context().find_root().call_on_close(close)
    return backend


def not_on_prefect(what: str, why: str) -> click.UsageError:
    """The error for a command or option of the embedded engine used with Prefect."""
    return click.UsageError(f"{what} is not available with --backend prefect: {why}")


__all__ = [
    "BACKENDS",
    "BackendName",
    "backend_option",
    "not_on_prefect",
    "open_backend",
    "prefect_for_command",
]


#: ``--backend`` of every ``runs`` command
on_which_backend = backend_option(
    "Whose runs: Signoff's engine (SIGNOFF_DATABASE_URL), or the Prefect server at PREFECT_API_URL."
)
