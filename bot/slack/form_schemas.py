"""The schema behind each input form, kept in this process so that a submission can be
checked and acknowledged without a database read.

A pause's schema is written once, when the run pauses, and never changes for that run id and
pause key, so a remembered schema cannot go stale; only the number kept is bounded (least
recently used go first). A form opened on one replica and submitted to another is a miss
there, and costs one read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from signoff.bot.backends import JSON

__all__ = ["MAX_SCHEMAS", "FormSchemas"]

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
