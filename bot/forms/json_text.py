"""JSON a person typed (a flow parameter, an answer on the command line), read with one
limit on how deeply it nests.

Past a few hundred levels the engine cannot store or show a value (its JSON rendering has a
depth limit, and comparing or walking it recurses), and past about a thousand Python's own
parser fails; no form, parameter or answer needs more than a handful.

    >>> read_json('{"tags": ["a", "b"]}')
    {'tags': ['a', 'b']}
"""

from __future__ import annotations

import json
from typing import Any

from signoff.bot.errors import JsonTooDeep

__all__ = ["MAX_NESTING", "read_json"]

#: how many levels of lists and objects typed JSON may nest (``[[1]]`` is two)
MAX_NESTING = 100


def read_json(text: str, **options: Any) -> Any:
    """``json.loads(text, **options)``, refusing JSON nested past ``MAX_NESTING`` levels.

    Raises:
        JsonTooDeep: it nests too deeply (also a ValueError).
        ValueError: the text is not JSON (``json.JSONDecodeError``), or a number in it is
            too long for Python to read.
    """
    try:
        value = json.loads(text, **options)
    except RecursionError:
        # The parser recurses once per level.
        raise JsonTooDeep(MAX_NESTING) from None
    if _nests_deeper(value, MAX_NESTING):
        raise JsonTooDeep(MAX_NESTING)
    return value


def _nests_deeper(value: Any, limit: int) -> bool:
    # Walked with a list, not recursion: the value may nest almost a thousand levels.
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > limit:
            return True
        pending.extend((child, level + 1) for child in children)
    return False
