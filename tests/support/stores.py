"""Parametrising a test over both stores, for cases PostgreSQL cannot hold.

A value edited into a row by hand (text that is not UTF-8, JSON that is not JSON) is
refused by PostgreSQL before it is stored: such a case is no PostgreSQL test at all,
rather than a skipped one (in CI, a skipped PostgreSQL test is a failure).

Example::

    @pytest.mark.parametrize(
        ("database_url", "edit"),
        on_each_store(EDITS, on_postgres=lambda edit: EDITS[edit].storable),
        indirect=["database_url"],
    )
    def test_it(engine: Engine, edit: str) -> None: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest


def on_each_store(
    cases: Iterable[Any],
    *,
    on_postgres: Callable[..., bool],
    ids: Sequence[str] | None = None,
) -> list[Any]:
    """``(store, *case)`` parameters: each case on SQLite, and on PostgreSQL where
    ``on_postgres(*case)`` holds. A case is a tuple of values, or one value."""
    made = []
    for index, case in enumerate(cases):
        values = case if isinstance(case, tuple) else (case,)
        name = ids[index] if ids is not None else "-".join(str(v) for v in values)
        for store in ("sqlite", "postgres"):
            if store == "sqlite" or on_postgres(*values):
                made.append(pytest.param(store, *values, id=f"{store}-{name}"))
    return made


__all__ = ["on_each_store"]
