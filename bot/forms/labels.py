"""What a person reads for a value: text clipped to Slack's limits, and the labels of a
field's choices (in the form and on a prompt's buttons alike)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["choice_labels", "clip"]

#: Slack's limit for an option's text and a button's
_LABEL = 75


def clip(text: str, limit: int) -> str:
    """``text``, cut to ``limit`` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def choice_labels(values: Sequence[Any]) -> list[str]:
    """What a person reads for each of one field's choices, in the form and on a prompt's
    buttons alike: ``needs_work`` reads "Needs work".

    When two choices would read the same (``approve`` and ``Approve``, ``eu_west`` and
    ``eu-west``), every choice of the field reads as its value instead, so that no two
    look alike and all are written the same way.

    Args:
        values: The field's choices, as the model's JSON schema lists them.

    Values longer than a label that read alike up to its end keep their ends too
    (``Restart … engineer: primary``); failing that, they are numbered (``2. …``).

    Returns:
        One label per value, at most 75 characters (Slack's limit for an option's text).
    """
    labels = [_humanise(value) for value in values]
    if len(set(labels)) < len(labels):
        labels = [_as_written(value) for value in values]
    for distinct in (_with_ends, _numbered):
        if len(set(labels)) == len(labels):
            break
        alike = {label for label in labels if labels.count(label) > 1}
        labels = [
            distinct(index, value) if label in alike else label
            for index, (value, label) in enumerate(zip(values, labels, strict=True))
        ]
    return labels


def _humanise(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"[a-z0-9]+(?:[_-][a-z0-9]+)*", value):
        text = re.sub(r"[_-]", " ", value)
        return clip(text[0].upper() + text[1:], _LABEL)
    return _as_written(value)


def _written(value: Any) -> str:
    return value if isinstance(value, str) and value else json.dumps(value)


def _as_written(value: Any) -> str:
    return clip(_written(value), _LABEL)


def _with_ends(index: int, value: Any) -> str:
    text = _written(value)
    if len(text) <= _LABEL:
        return text
    head = (_LABEL - 1) // 2
    return f"{text[:head].rstrip()}…{text[-(_LABEL - 1 - head) :].lstrip()}"


def _numbered(index: int, value: Any) -> str:
    number = f"{index + 1}. "
    return number + clip(_written(value), _LABEL - len(number))
