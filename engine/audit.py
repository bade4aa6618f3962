"""The audit trail: an append-only, hash-chained record of who did what to which run.

Every start, answer (with the values sent, and the flow's verdict), refusal, reminder,
escalation, reassignment, cancel and timeout is one ``AuditRecord``. The store appends a
record in the same transaction as the change it records, so it is written once, and only
if the change happened; refusals are written on their own.

Records are numbered without gaps (``seq``) and chained: each carries the hash of the one
before it, and its own hash covers its content and that link. Editing a record changes its
hash; deleting one leaves a gap and a broken link; ``verify`` reports the first place the
chain breaks. With ``SIGNOFF_AUDIT_KEY`` set the hashes are HMACs, so rewriting the chain
after an edit needs the key as well as the database.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from signoff.engine.actors import Actor, Via, printable

#: the link the first record points back to
GENESIS = "0" * 64


class AuditAction(enum.StrEnum):
    """What a record reports."""

    RUN_STARTED = "run.started"
    #: an answer was stored (values in ``data["input"]``); with a quorum, one per person
    ANSWER_RECEIVED = "answer.received"
    #: the flow's model accepted the answer
    ANSWER_ACCEPTED = "answer.accepted"
    #: the flow's own validators refused the answer (errors in ``data["errors"]``)
    ANSWER_REJECTED = "answer.rejected"
    #: the input broke the pause's schema and was not stored
    ANSWER_INVALID = "answer.invalid"
    #: someone tried something the rules do not allow them (``data["action"]``, ``["rule"]``)
    REFUSED = "refused"
    REMINDER_SENT = "reminder.sent"
    ESCALATED = "pause.escalated"
    REASSIGNED = "pause.reassigned"
    RUN_CANCELLED = "run.cancelled"
    TIMED_OUT = "pause.timed_out"


@dataclass(frozen=True)
class AuditEntry:
    """A record before the store numbers and chains it."""

    action: AuditAction
    run_id: str | None
    flow_name: str | None
    actor: Actor | None
    key: str | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class AuditRecord:
    """One stored record of the trail."""

    seq: int
    at: datetime
    action: str
    run_id: str | None
    flow_name: str | None
    actor_id: str | None
    actor_name: str | None
    via: str | None
    key: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str
    #: set when the stored row cannot be read back (it was changed outside Signoff): what
    #: is wrong with it. The fields that could not be read are empty (``seq`` 0, ``at``
    #: 1970, ``data`` {}); ``verify`` reports the record as the place the chain breaks.
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (times in ISO 8601, UTC), with ``problem`` when
        it cannot be read."""
        shown = {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "action": self.action,
            "run_id": self.run_id,
            "flow": self.flow_name,
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "via": self.via,
            "key": self.key,
            "data": self.data,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }
        if self.problem is not None:
            shown["problem"] = self.problem
        return shown

    @property
    def who(self) -> str:
        """``Name (id)``, or ``id``, or ``anonymous``."""
        if self.actor_id is None:
            return "anonymous"
        if self.actor_name and self.actor_name != self.actor_id:
            return f"{self.actor_name} ({self.actor_id})"
        return self.actor_id


#: a record's content as its hash reads it: keys sorted, compact, UTF-8 (one encoder for
#: every record: ``json.dumps`` builds one per call when given options)
_canonical_text = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _canonical(fields: dict[str, Any]) -> bytes:
    return _canonical_text(fields).encode()


def chain_hash(
    *,
    seq: int,
    at: datetime,
    action: str,
    run_id: str | None,
    flow_name: str | None,
    actor_id: str | None,
    actor_name: str | None,
    via: str | None,
    key: str | None,
    data: dict[str, Any],
    prev_hash: str,
    secret: bytes | None = None,
) -> str:
    """The hash a record with this content and this link must carry."""
    content = _canonical(
        {
            "seq": seq,
            "at": at.isoformat(),
            "action": action,
            "run_id": run_id,
            "flow": flow_name,
            "actor_id": actor_id,
            "actor_name": actor_name,
            "via": via,
            "key": key,
            "data": data,
            "prev": prev_hash,
        }
    )
    if secret:
        return hmac.new(secret, content, hashlib.sha256).hexdigest()
    return hashlib.sha256(content).hexdigest()


def entry_fields(entry: AuditEntry) -> dict[str, Any]:
    """The columns an entry fills (the store adds seq, at and the hashes)."""
    actor = entry.actor
    return {
        "action": entry.action.value,
        "run_id": entry.run_id,
        "flow_name": entry.flow_name,
        "actor_id": actor.id if actor else None,
        "actor_name": (actor.name or actor.id) if actor else None,
        "via": actor.via.value if actor else Via.PYTHON.value,
        "key": entry.key,
        "data": dict(entry.data or {}),
    }


@dataclass(frozen=True)
class ChainBreak:
    """Where the chain stops holding, and why."""

    seq: int
    reason: str
    #: no record from ``seq`` on verifies with the key ``verify`` was given (or, given
    #: none, without a key): most likely a wrong or changed ``SIGNOFF_AUDIT_KEY`` (or a
    #: missing one) rather than an edit; the chain is not verified either way
    key_mismatch: bool = False


@dataclass(frozen=True)
class Verification:
    """What ``verify`` found: how many records it checked, the last hash, the first break,
    and how many records at the start were hashed without the key it was given."""

    checked: int
    head: str
    broken: ChainBreak | None
    #: with a key: the records at the start of the trail hashed without it, because they
    #: were written before ``SIGNOFF_AUDIT_KEY`` was set (0 without a key)
    unkeyed: int = 0

    @property
    def ok(self) -> bool:
        return self.broken is None


def _content_hash(record: AuditRecord, secret: bytes | None) -> str:
    return chain_hash(
        seq=record.seq,
        at=record.at,
        action=record.action,
        run_id=record.run_id,
        flow_name=record.flow_name,
        actor_id=record.actor_id,
        actor_name=record.actor_name,
        via=record.via,
        key=record.key,
        data=record.data,
        prev_hash=record.prev_hash,
        secret=secret,
    )


def written_with(record: AuditRecord, secret: bytes | None) -> bool:
    """Whether ``record`` is hashed as a process with ``secret`` (``SIGNOFF_AUDIT_KEY``)
    hashes: with it, or without a key (written before it was set). When the newest record is
    not, appending after it breaks the chain: another process writes with another key."""
    if record.problem is not None:
        return True  # unreadable: ``audit verify`` names it; nothing to say about the key
    if _content_hash(record, secret) == record.hash:
        return True
    return secret is not None and _content_hash(record, None) == record.hash


def verify(
    records: Iterable[AuditRecord],
    secret: bytes | None = None,
    heads: Mapping[int, str] | None = None,
) -> Verification:
    """Walk the records in ``seq`` order and report the first one that breaks the chain.

    A chain read forward cannot show that records were cut from its end: ``heads`` (record
    number -> the hash it had, as an earlier ``verify`` reported the last one) are checked
    too, and the chain breaks where one is gone or holds another hash.

    With ``secret`` (``SIGNOFF_AUDIT_KEY``), records are HMACs under it, except that the
    trail may begin with records hashed without a key: those written before the key was
    set. Only such a leading run is accepted (its length is ``unkeyed``), never a record
    without the key after one with it, so whoever lacks the key cannot rewrite keyed
    records as unkeyed ones without the chain breaking.
    """
    expected_seq, prev, checked, unkeyed = 1, GENESIS, 0, 0
    later = iter(records)
    for record in later:
        if record.problem is not None and record.seq <= 0:  # its number cannot be read
            where = ChainBreak(expected_seq, _unreadable(record, expected_seq))
            return Verification(checked, prev, where, unkeyed)
        if record.seq != expected_seq:
            missing = (
                f"record {expected_seq} is missing"
                if record.seq > expected_seq
                else f"record {record.seq} appears twice or out of order"
            )
            if record.seq > expected_seq + 1:
                missing = f"records {expected_seq} to {record.seq - 1} are missing"
            where = ChainBreak(expected_seq, f"{missing} (deleted?)")
            return Verification(checked, prev, where, unkeyed)
        if record.problem is not None:
            return Verification(checked, prev, ChainBreak(record.seq, _unreadable(record)), unkeyed)
        if record.prev_hash != prev:
            where = ChainBreak(
                record.seq,
                f"record {record.seq} does not link to record {record.seq - 1} "
                "(the record before it was edited or replaced)",
            )
            return Verification(checked, prev, where, unkeyed)
        if _content_hash(record, secret) != record.hash:
            # Without the key: written before it was set, if no record before it has the key.
            before_key = (
                secret and unkeyed == checked and _content_hash(record, None) == record.hash
            )
            if not before_key:
                keyed = bool(secret) and checked > unkeyed  # a record before it has the key
                where = _mismatch(record, secret, keyed=keyed, later=later)
                return Verification(checked, prev, where, unkeyed)
            unkeyed += 1
        if heads and record.seq in heads and heads[record.seq] != record.hash:
            where = ChainBreak(
                record.seq,
                f"record {record.seq}'s hash is {record.hash}, not {heads[record.seq]} as "
                "given: the trail was rewritten from there or before",
            )
            return Verification(checked, prev, where, unkeyed)
        prev, expected_seq, checked = record.hash, expected_seq + 1, checked + 1
    gone = sorted(seq for seq in heads or () if seq > checked)
    if gone:
        where = ChainBreak(
            checked + 1,
            f"the trail ends at record {checked}, but record {gone[-1]} was given with its "
            f"hash: records from {checked + 1} on were deleted",
        )
        return Verification(checked, prev, where, unkeyed)
    return Verification(checked, prev, None, unkeyed)


def _mismatch(
    record: AuditRecord, secret: bytes | None, *, keyed: bool, later: Iterator[AuditRecord]
) -> ChainBreak:
    """Why ``record``'s hash does not match its content under ``secret``: an edit, a
    record rewritten without the key, or another key (no record from it on matches, or a
    run of them does not and the ones after it do: the key was changed part-way).
    ``keyed``: a record before it verified with the key."""
    seq = record.seq
    changed = f"record {seq} was changed after it was written (its content does not match its hash)"
    if keyed and _content_hash(record, None) == record.hash:
        return ChainBreak(
            seq,
            f"record {seq} is hashed without SIGNOFF_AUDIT_KEY after records hashed with it "
            "(rewritten by someone without the key, or the key was unset for a while)",
        )
    # Read on only until a record matches (the next, mostly): the rest of the trail is
    # never held. One record that does not, between ones that do, was edited.
    last, matched = seq, None
    for other in later:
        if other.problem is None and other.hash in (
            _content_hash(other, secret),
            _content_hash(other, None),
        ):
            matched = other.seq
            break
        last = other.seq
    if matched is not None:
        if keyed or last == seq or not secret:
            # With the key before and after them (or no key at all), it is not in doubt.
            return ChainBreak(seq, changed)
        return ChainBreak(
            seq,
            f"records {seq} to {last} do not verify with SIGNOFF_AUDIT_KEY, though record "
            f"{matched} after them does: they were written with another key (was the key "
            f"changed at record {matched}?), or every one of them was changed",
            key_mismatch=True,
        )
    if last == seq:  # the last record: either may be true
        if keyed:
            hint = "it was written with another SIGNOFF_AUDIT_KEY"
        elif secret:
            hint = "SIGNOFF_AUDIT_KEY is not the key it was written with"
        else:
            hint = "it was written with SIGNOFF_AUDIT_KEY, which is not set"
        return ChainBreak(seq, f"record {seq} was changed after it was written, or {hint}")
    if keyed:
        return ChainBreak(
            seq,
            f"no record from {seq} on verifies with SIGNOFF_AUDIT_KEY, though the records "
            "before them do: they were written with another key (was the key changed at "
            f"record {seq}?), or every one of them was changed",
            key_mismatch=True,
        )
    if secret:
        return ChainBreak(
            seq,
            f"no record from {seq} on verifies with SIGNOFF_AUDIT_KEY: it is not the key they "
            "were written with (a wrong or changed key?), or every one of them was changed",
            key_mismatch=True,
        )
    return ChainBreak(
        seq,
        f"no record from {seq} on verifies without a key: they were written with "
        "SIGNOFF_AUDIT_KEY set (set it to verify them), or every one of them was changed",
        key_mismatch=True,
    )


def _unreadable(record: AuditRecord, seq: int | None = None) -> str:
    """What is said of a record that cannot be read (one whose ``problem`` is set);
    ``seq``: its place in the chain, when its own number is what cannot be read."""
    seq = seq or record.seq
    return f"{f'record {seq}' if seq else 'a record'} cannot be read ({record.problem})"


def describe(record: AuditRecord) -> str:
    """One line for people: ``time who via action details``, or that it cannot be read."""
    if record.problem is not None:
        return printable(_unreadable(record))
    details = _details(record)
    via = f" via {record.via}" if record.via else ""
    key = f" [{record.key}]" if record.key else ""
    at = record.at.replace(tzinfo=None).isoformat(" ", "seconds")  # %Y drops a year's zeros
    # Written out, not printed: a stored newline or terminal escape must not forge a line.
    return printable(
        f"{at} {record.who}{via}: {record.action}{key}{' — ' + details if details else ''}"
    )


def _details(record: AuditRecord) -> str:
    data = record.data
    parts: list[str] = []
    # A verdict is the system's act about someone's answer: whose it judged.
    responders = data.get("responders")
    if isinstance(responders, list) and responders:
        parts.append("answers of " + ", ".join(str(r or "(anonymous)") for r in responders))
    elif data.get("responder"):
        parts.append(f"answer of {data['responder']}")
    if isinstance(data.get("answers"), int) and isinstance(data.get("quorum"), int):
        parts.append(f"{data['answers']} of {data['quorum']} answers")
    if "input" in data:
        parts.append("input " + json.dumps(data["input"], ensure_ascii=False)[:300])
    if "errors" in data:
        parts.append(
            "errors " + "; ".join(f"{k or 'input'}: {v}" for k, v in dict(data["errors"]).items())
        )
    # "answered": where an answer no responder is known for came from (a Prefect UI's).
    for name in ("action", "rule", "to", "added", "notified", "reason", "count", "answered"):
        if name == "notified" and data.get(name) in (data.get("added"), data.get("to")):
            continue  # an escalation told those it added, or all it names: once is enough
        if name in data and data[name] not in (None, "", []):
            value = data[name]
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            parts.append(f"{name} {shown}")
    return "; ".join(parts)


def lines(records: Iterable[AuditRecord]) -> Iterator[str]:
    """``describe`` for each record."""
    for record in records:
        yield describe(record)


def render_text(records: Iterable[AuditRecord]) -> str:
    buffer = io.StringIO()
    for line in lines(records):
        buffer.write(line + "\n")
    return buffer.getvalue()


__all__ = [
    "GENESIS",
    "AuditAction",
    "AuditEntry",
    "AuditRecord",
    "ChainBreak",
    "Verification",
    "chain_hash",
    "describe",
    "entry_fields",
    "render_text",
    "verify",
    "written_with",
]
