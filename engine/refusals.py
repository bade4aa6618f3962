"""Why a flow's model refused an answer, as one plain message per field.

Apart from ``engine.validation`` (the JSON Schema check, which brings in jsonschema and
builds its format checks when imported): what only reads a model's errors, such as a run's
end or the ``signoff`` command's start, does not pay for that.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pydantic

from signoff.engine.serialization import error_text


def field_path(parts: Iterable[Any]) -> str:
    """A field's location as one dotted path: ``("address", "city")`` -> ``address.city``."""
    return ".".join(str(p) for p in parts)


def model_errors(exc: pydantic.ValidationError) -> dict[str, str]:
    """A pydantic ValidationError as ``{field path: message}``, without pydantic's prefixes."""
    found: dict[str, list[str]] = {}
    for err in exc.errors():
        path = field_path(p for p in err["loc"] if p != "__root__")
        message = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        found.setdefault(path, []).append(message)
    return {path: "; ".join(messages) for path, messages in found.items()}


def refusal_errors(exc: Exception) -> dict[str, str]:
    """Why the flow's model refused an answer, as ``{field path: message}``: a
    ValidationError's messages by field, or the whole answer's (under ``""``) when loading
    it raised anything else (a validator's ``v.strip()`` on None: AttributeError)."""
    if isinstance(exc, pydantic.ValidationError):
        return model_errors(exc)
    return {"": f"loading the answer raised {error_text(exc)}"}


__all__ = ["field_path", "model_errors", "refusal_errors"]
