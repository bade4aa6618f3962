"""Storing the Python values a run must get back: parameters and task results.

They are pickled, because a re-run must get back the very types it produced; JSON previews
go beside them for people to read. The database is the engine's own, so unpickling what it
holds is as trusted as the flow code itself.
"""

from __future__ import annotations

import pickle
from typing import Any

from pydantic_core import to_jsonable_python

PREVIEW_LIMIT = 500


def dump(value: Any) -> bytes:
    """Pickle ``value``; raises whatever pickle raises for values it cannot store."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def load(blob: bytes) -> Any:
    return pickle.loads(blob)


def jsonable(value: Any) -> Any:
    """A JSON-friendly rendering of ``value`` for display; never fails."""
    return to_jsonable_python(value, fallback=repr)


def preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= PREVIEW_LIMIT else text[: PREVIEW_LIMIT - 1] + "…"
