"""The schema behind each input form, kept in this process so that a submission can be
checked and acknowledged without a database read.

A pause's schema is written once, when the run pauses, and never changes for that run id and
pause key, so a remembered schema cannot go stale; only the number kept is bounded (least
recently used go first).

A form opened on one replica may be submitted to another (a load balancer spreads Slack's
requests). So the form also carries its schema, compressed, in its sealed
``private_metadata`` when it fits (``carried``; most schemas are well under a kilobyte
compressed), and any replica reads it from the submission (``uncarried``). The seal
(``bot.slack.sealing``) makes it as trustworthy as the database's copy. A schema too large
to carry costs a replica that did not open the form one read.
"""

from __future__ import annotations

import base64
import json
import threading
import zlib
from collections import OrderedDict

from signoff.bot.backends import JSON

__all__ = ["MAX_CARRIED", "MAX_SCHEMAS", "FormSchemas", "carried", "uncarried"]

#: Longest schema carried in a form's metadata, compressed and encoded: Slack keeps at most
#: 3,000 characters of ``private_metadata``, and the run, key, origin and seal need the rest.
MAX_CARRIED = 2400

#: Schemas kept. A schema is a few KiB of JSON; this bounds the cache to some MiB while
#: covering far more forms than are open at once.
MAX_SCHEMAS = 2048

Schema = dict[str, JSON]


class FormSchemas:
    """A bounded, thread-safe map from (run id, pause key) to the pause's JSON schema.

    Example::

        schemas = FormSchemas()
        schemas.remember(run.id, pause.key, pause.schema)
        schemas.get(run.id, pause.key)  # the same dict, or None when not kept
    """

    def __init__(self, capacity: int = MAX_SCHEMAS) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._kept: OrderedDict[tuple[str, str], Schema] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str, key: str) -> Schema | None:
        """The remembered schema of pause ``key`` of run ``run_id``, or None."""
        with self._lock:
            schema = self._kept.get((run_id, key))
            if schema is not None:
                self._kept.move_to_end((run_id, key))
            return schema

    def remember(self, run_id: str, key: str, schema: Schema) -> None:
        """Keep ``schema`` for pause ``key`` of run ``run_id`` (dropping the least recent)."""
        with self._lock:
            self._kept[(run_id, key)] = schema
            self._kept.move_to_end((run_id, key))
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)


def carried(schema: Schema) -> str | None:
    """``schema`` as text to carry in a form's sealed metadata, or None when longer than
    ``MAX_CARRIED``.

    >>> uncarried(carried({"type": "object"}) or "")
    {'type': 'object'}
    """
    packed = zlib.compress(json.dumps(schema, separators=(",", ":")).encode(), 9)
    text = base64.b64encode(packed).decode()
    return text if len(text) <= MAX_CARRIED else None


def uncarried(text: str) -> Schema:
    """The schema ``carried`` made ``text`` of.

    Raises:
        ValueError: ``text`` is not what ``carried`` makes (only possible for text that
            was not sealed by this app, which ``Sealer.open`` refuses first).
    """
    try:
        value = json.loads(zlib.decompress(base64.b64decode(text, validate=True)))
    except (zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not a carried schema: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("not a carried schema: not a JSON object")
    return value
