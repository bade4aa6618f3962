"""What one ``signoff`` invocation shares between its commands: flags and the engine.

The engine is opened on first use, not when the command line is parsed, so ``--help``
and usage errors never touch the database.
"""

from __future__ import annotations

import click

from engine import Engine, EngineSettings, get_engine, set_engine


class CliSession:
    """The global options of one invocation, and the engine it opened (if any)."""

    def __init__(self, *, verbose: bool = False, database_url: str | None = None) -> None:
        self.verbose = verbose
        self.database_url = database_url
        self._engine: Engine | None = None

    def engine(self) -> Engine:
        """The process's engine, opened from ``SIGNOFF_*`` settings (and ``--database-url``).

        It is closed when the command finishes.

        Returns:
            The engine that ``engine.get_engine()`` returns from now on.

        Raises:
            ConfigurationError: a setting is malformed.
            StoreError: the database cannot be opened.
        """
        if self._engine is None:
            overrides = {"database_url": self.database_url} if self.database_url else {}
            self._engine = Engine(EngineSettings.load(**overrides))
            set_engine(self._engine)
            click.get_current_context().find_root().call_on_close(self.close)
        return get_engine()

    def close(self) -> None:
        """Stop the engine's threads and release the database."""
        if self._engine is not None:
            opened, self._engine = self._engine, None
            set_engine(None)
            opened.close()


#: Passes the invocation's ``CliSession`` as a command's first argument.
pass_session = click.make_pass_decorator(CliSession, ensure=True)
