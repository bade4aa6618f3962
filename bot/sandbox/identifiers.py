"""Slack-looking ids: message ts, view ids and hashes, trigger_ids, block_ids.

Deterministic so transcripts and golden files stay stable from run to run: the first message
of a sandbox is always ``1700000000.000100``, the first view ``V00000001``-ish, and so on.
Except trigger_ids, which no transcript shows: Slack never issues one twice, and an app
may remember those it has seen (Signoff claims each, against redeliveries, in a database
that outlives a sandbox: two sandboxes' clicks on one Prefect server must not collide).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import threading
import time

from signoff.bot.sandbox.records import JsonDict

__all__ = ["IdSource", "fill_ids", "short_hash"]


def short_hash(value: object, salt: str = "") -> str:
    """Six hex characters derived from ``value`` (not for security)."""
    raw = json.dumps(value, sort_keys=True, default=str) + salt
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:6]


def fill_ids(blocks: list[JsonDict]) -> list[JsonDict]:
    """A copy of ``blocks`` where every block has a ``block_id`` and element an ``action_id``.

    Slack generates the ids it is not given when it stores a message or view, and sends those
    ids back in payloads; so does the sandbox.
    """
    blocks = copy.deepcopy(blocks)
    taken = {b["block_id"] for b in blocks if isinstance(b, dict) and "block_id" in b}
    for index, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        if "block_id" not in block:
            block_id = short_hash(block, str(index))
            while block_id in taken:
                block_id = short_hash(block_id, "again")
            block["block_id"] = block_id
            taken.add(block_id)
        elements = list(block.get("elements", [])) if block.get("type") == "actions" else []
        elements += [block[key] for key in ("element", "accessory") if key in block]
        for position, element in enumerate(elements):
            if isinstance(element, dict) and "action_id" not in element and "type" in element:
                element["action_id"] = short_hash(element, f"{block['block_id']}{position}")
    return blocks


#: the last message ts handed out in this process, in microseconds (see ``IdSource.ts``)
_last_ts = 0
_ts_lock = threading.Lock()


class IdSource:
    """Hands out increasing, unique ids; safe to share between threads."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        #: this source's own part of every trigger_id (see the module's docstring)
        self._trigger_salt = os.urandom(8).hex()

    def number(self) -> int:
        """The next sequence number."""
        with self._lock:
            return next(self._counter)

    def ts(self) -> str:
        """A message timestamp such as Slack's ``1700000000.000100``: the time, and never
        one handed out before in this process. Slack never reuses one; every sandbox once
        began at the same, and a bot that kept a message's ts from an earlier sandbox (in
        a Prefect server the tests share) updated another message in the next."""
        global _last_ts
        with _ts_lock:
            _last_ts = max(time.time_ns() // 1000, _last_ts + 1)
            micros = _last_ts
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def prefixed(self, prefix: str) -> str:
        """An id such as ``V00000007`` or ``G00000008``."""
        return f"{prefix}{self.number():08d}"

    def view_hash(self) -> str:
        """A view hash like Slack's ``1700000003.3a9f1c``."""
        n = self.number()
        return f"{1_700_000_000 + n}.{short_hash(n, 'hash')}"

    def trigger_id(self) -> str:
        """A trigger_id like Slack's ``12.1700000012.ab12cd00000c``."""
        n = self.number()
        return f"{n}.{1_700_000_000 + n}.{short_hash(n, self._trigger_salt)}{n:06x}"

    def response_url_id(self) -> str:
        """The path segment of a response_url."""
        n = self.number()
        return f"{n:06d}{short_hash(n, 'response')}"
