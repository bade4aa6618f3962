"""Storing the Python values a run must get back: parameters and task results.

They are pickled, because a re-run must get back the very types it produced; JSON previews
go beside them for people to read. The database is the engine's own, so unpickling what it
holds is as trusted as the flow code itself. What is stored as JSON cannot hold an
infinite or NaN float, an integer too long to write out, nor text with a lone surrogate
(``unstorable_values`` finds them): previews put the numbers in words instead. Nothing
holds a ``Decimal`` too large or too fine to write out (``engine.numbers``), kept pickled
or not: a run or its results would write it out, in a display or a check, sooner or later.
"""

from __future__ import annotations

import math
import pickle
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from signoff.engine.errors import UnloadableValue
from signoff.engine.numbers import number_refusal

PREVIEW_LIMIT = 500


def dump(value: Any) -> bytes:
    """Pickle ``value``; raises whatever pickle raises for values it cannot store."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def load(blob: bytes) -> Any:
    return pickle.loads(blob)


def load_stored(blob: bytes, run_id: str, what: str) -> Any:
    """``blob``, which run ``run_id`` stored as ``what`` (``"its parameters"``), loaded.

    Raises:
        UnloadableValue: the code running now cannot load it (a class renamed or moved
            since it was stored, say).
    """
    try:
        return pickle.loads(blob)
    except Exception as exc:
        raise UnloadableValue(run_id, what, exc) from exc


def jsonable(value: Any) -> Any:
    """A JSON-friendly rendering of ``value`` for display; never fails. A number JSON text
    cannot hold (``inf``, ``nan``, an integer of more digits than Python writes out) shows
    as words, as other values JSON cannot hold do."""
    return _shown(to_jsonable_python(value, fallback=repr))


def unstorable_values(
    value: Any, at: tuple[Any, ...] = (), *, numbers: bool = True
) -> dict[str, str]:
    """Where a JSON-like ``value`` holds a number JSON text cannot hold, or text UTF-8
    cannot, and why, by field path (``""`` for the value itself). Nothing holding one can
    be stored. ``numbers=False``: text and ``Decimal`` only (for values kept pickled, shown
    in words).

    Example::

        >>> unstorable_values({"price": float("inf"), "tags": [1.5, float("nan")]})
        {'price': 'must be a finite number', 'tags.1': 'must be a finite number'}
    """
    if isinstance(value, Mapping):
        return {
            p: why
            for k, v in value.items()
            for p, why in unstorable_values(v, (*at, k), numbers=numbers).items()
        }
    if isinstance(value, BaseModel):
        # A flow parameter's model (its Decimal fields, say), as its fields
        return unstorable_values(dict(value), at, numbers=numbers)
    if isinstance(value, list | tuple):
        return {
            p: why
            for i, v in enumerate(value)
            for p, why in unstorable_values(v, (*at, i), numbers=numbers).items()
        }
    why = _why_unstorable(value, numbers)
    return {".".join(str(part) for part in at): why} if why else {}


def _why_unstorable(value: Any, numbers: bool) -> str | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be text (it holds a lone surrogate, as from bytes that are not UTF-8)"
        return None
    if isinstance(value, Decimal):
        return number_refusal(value)
    if not numbers:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"  # JSON has no Infinity or NaN
    if isinstance(value, int) and not isinstance(value, bool):
        # Python refuses to write out (or read) an integer of more digits than this.
        digits = sys.get_int_max_str_digits()
        if digits and value.bit_length() > digits * _BITS_PER_DIGIT:
            return f"must have at most {digits:,} digits"
    return None


_BITS_PER_DIGIT = math.log2(10)


def _shown(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shown(item) for item in value]
    if _why_unstorable(value, numbers=True) is None:
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return repr(value) if isinstance(value, float) else "(a number too long to show)"


#: the longest error text kept with a run or task (its state message)
ERROR_LIMIT = 10_000


def storable_text(text: str) -> str:
    """``text`` with each NUL character written ``\\x00`` and each lone surrogate
    ``\\udcff``, as ``repr`` would: PostgreSQL's text columns cannot hold NUL, no UTF-8
    text holds a lone surrogate, and a message (an error's, a log line's) may carry either
    from binary data. Other characters are kept as they are."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def is_storable_text(text: str) -> bool:
    """Whether ``text`` can be stored as it is: it holds no NUL and no lone surrogate (see
    ``storable_text``). No stored id, key or name holds either, so a lookup by such text
    finds nothing; the drivers would refuse to send it rather than match nothing."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def error_text(exc: BaseException) -> str:
    """``Type: message`` for a failed run or task, cut to ``ERROR_LIMIT`` characters; never
    fails, so that recording a failure cannot raise something other than the failure."""
    try:
        message = str(exc)
    except Exception as broken:  # an exception whose __str__ raises
        message = f"(its message cannot be shown: {type(broken).__name__}: {broken})"
    return clipped(storable_text(f"{type(exc).__name__}: {message}"), ERROR_LIMIT)


def clipped(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} characters more)"


def preview(value: Any) -> str:
    """``repr(value)``, cut to ``PREVIEW_LIMIT`` characters; never fails: it is only shown."""
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__, an int too long to write out, ...
        text = f"<{type(value).__name__} that cannot be shown: {exc}>"
    return text if len(text) <= PREVIEW_LIMIT else text[: PREVIEW_LIMIT - 1] + "…"
