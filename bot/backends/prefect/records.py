"""What Signoff keeps on a Prefect server: its records about each run, its audit entries,
and its short-lived claims.

- A record (the thread and prompts posted, posting intents, answer claims, timers) is a
  flow run input of the run, key ``signoff-<record key>``: it lives as long as the run and
  every bot process sees it. Creating an input is atomic (the server refuses a second one
  under the same key), which makes ``add`` a claim exactly one process wins.
- A record a page of runs reads at once (``LISTED_RECORDS``: where the run's messages are)
  is also copied to a label of the run, ``signoff.record.<key>``: a run's inputs are read
  run by run, its labels come with the runs read for the page.
- An audit entry is one more input, ``signoff-audit-<time>-<random>``: who did what, when.
  One that several processes may record (a flow's verdict) is claimed first
  (``signoff-audited-<fact>``), so that it is stored once (``audit_once``).
- A claim on a Slack request (replay protection, shared by replicas) is a Prefect variable
  ``signoff_claim_<hash>`` holding its expiry; expired ones are removed by ``sweep``.
- A consumer's records it needs once a run is deleted (where it posted about the run: a
  deletion takes the run's inputs with it) are copied, as they are set, to a variable
  ``signoff_kept_<consumer>_<run id>``, removed once the run's end or deletion is delivered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from signoff.bot.backends.model import Actor, AuditRecord
from signoff.bot.backends.prefect import runs as prefect_runs
from signoff.bot.backends.prefect.api import PrefectApi
from signoff.bot.errors import BackendError

logger = logging.getLogger(__name__)

_KEY_CHARS = re.compile(r"[^a-z0-9-]")
AUDIT_PREFIX = "signoff-audit-"
#: an audit entry's full name: the prefix, its time in nanoseconds, a random or fact mark
_AUDIT_NAME = re.compile(rf"^{AUDIT_PREFIX}\d{{20}}-[0-9a-f]+$")
CLAIM_PREFIX = "signoff_claim_"
RECONCILED_PREFIX = "signoff_reconciled_"
KEPT_PREFIX = "signoff_kept_"
#: Prefect's limit on a variable's value, as compact JSON
MAX_VARIABLE_CHARS = 5000
#: variables read per request when listing the kept copies
_VARIABLE_PAGE = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _variable_part(text: str) -> str:
    """``text`` as part of a Prefect variable name (lowercase letters, digits, _)."""
    return re.sub(r"[^a-z0-9_]", "_", text.lower())[:100]


def _kept_name(consumer: str, run_id: str) -> str:
    return f"{KEPT_PREFIX}{_variable_part(consumer)}_{run_id.replace('-', '').lower()}"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def record_key(key: str) -> str:
    """A Signoff record key as a flow run input key: Prefect allows lowercase letters,
    digits and dashes only (it answers 500 to any other). Lowercased: the capitals in a
    key are a Slack id's (``slack.dms.<pause>.U0ALICE``), all capitals, and a Prefect
    pause key has none."""
    return "signoff-" + _KEY_CHARS.sub("-", key.lower())


def record_label(key: str) -> str:
    """The label of a run holding a copy of its record ``key`` (``LISTED_RECORDS``'), so
    that a page of runs is read with the copies (``PrefectBackend.get_records``)."""
    return "signoff.record." + key


class Records:
    """Signoff's records, audit entries and claims, over one Prefect API."""

    def __init__(self, api: PrefectApi) -> None:
        self.api = api
        self._local: dict[str, float] = {}
        self._lock = threading.Lock()

    # -- records ------------------------------------------------------------------------

    def get(self, run_id: str, key: str) -> Any:
        return self.api.read_input(run_id, record_key(key))

    def set(self, run_id: str, key: str, value: Any) -> None:
        # Prefect's inputs are write-once: replace by delete and create.
        self.api.delete_input(run_id, record_key(key))
        self.api.create_input(run_id, record_key(key), value, sender="signoff")

    def add(self, run_id: str, key: str, value: Any) -> bool:
        return self.api.create_input(run_id, record_key(key), value, sender="signoff")

    def drop(self, run_id: str, key: str) -> None:
        self.api.delete_input(run_id, record_key(key))

    def with_prefix(self, run_id: str, prefix: str) -> list[Any]:
        found: list[Any] = []
        for entry in self.api.inputs_with_prefix(run_id, record_key(prefix)):
            try:
                found.append(json.loads(entry["value"]))
            except (ValueError, KeyError, TypeError):
                continue
        return found

    # -- copies kept past the run --------------------------------------------------------

    def keep(self, consumer: str, run_id: str, key: str, value: Any) -> None:
        """Copy record ``key`` of ``run_id`` where ``consumer`` still finds it once the run
        is deleted. A copy that would pass Prefect's limit on a variable is left out (and
        logged): the others are still kept."""
        name = _kept_name(consumer, run_id)
        found = self.api.read_variable(name)
        current = (found or {}).get("value")
        records = dict(current.get("records") or {}) if isinstance(current, dict) else {}
        if records.get(key) == value and found is not None:
            return
        records[key] = value
        kept = {"run_id": run_id, "records": records}
        if len(_compact(kept).encode()) > MAX_VARIABLE_CHARS:
            logger.warning(
                "record too long to keep past the run",
                extra={"action": "prefect_kept_too_long", "run_id": run_id, "key": key},
            )
            return
        if found is None and self.api.create_variable(name, kept):
            return
        self.api.update_variable(name, kept)

    def kept(self, consumer: str, run_id: str) -> dict[str, Any] | None:
        """The records kept for ``consumer`` about ``run_id``; None when none are."""
        found = self.api.read_variable(_kept_name(consumer, run_id))
        value = (found or {}).get("value")
        if not isinstance(value, dict):
            return None
        return dict(value.get("records") or {})

    def kept_runs(self, consumer: str) -> list[str]:
        """Ids of the runs with records kept for ``consumer``."""
        prefix = _kept_name(consumer, "")
        found: list[str] = []
        offset = 0
        while True:
            # ``_`` matches any one character in LIKE: names are compared exactly below.
            page = self.api.variables_like(prefix + "%", _VARIABLE_PAGE, offset=offset)
            offset += len(page)
            found += [
                str(v["value"]["run_id"])
                for v in page
                if str(v.get("name")).startswith(prefix)
                and isinstance(v.get("value"), dict)
                and v["value"].get("run_id")
            ]
            if len(page) < _VARIABLE_PAGE:
                return found

    def forget_kept(self, consumer: str, run_id: str) -> None:
        self.api.delete_variable(_kept_name(consumer, run_id))

    # -- audit --------------------------------------------------------------------------

    def audit(
        self,
        run_id: str,
        action: str,
        actor: Actor,
        *,
        key: str | None = None,
        data: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Add an entry to the run's audit trail: ``actor`` did ``action`` (``at``: when,
        if earlier than now). The trail is ordered by that time, not by when it was stored:
        an answer is recorded after Prefect resumed the run, by which time the watcher may
        have recorded that the run took it."""
        self._add_entry(run_id, action, actor, key, data, at or datetime.now(UTC))

    def audit_once(
        self,
        run_id: str,
        once: str,
        action: str,
        actor: Actor,
        *,
        key: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> bool:
        """``audit``, once per ``once`` for the run, however many processes (replicas,
        consumers) record the same fact, and one that stopped midway records it again.
        Whether this call wrote the entry.

        The first to claim ``once`` sets the entry's time; every caller then writes the
        entry under a name made of that time and ``once``, which the server takes once."""
        record = f"audited.{once}"
        at = datetime.now(UTC)
        if not self.add(run_id, record, {"at": at.isoformat()}):
            claimed = self.get(run_id, record)
            at = prefect_runs.parse_time(str((claimed or {}).get("at"))) or at
        digest = hashlib.sha256(once.encode()).hexdigest()[:8]
        return self._add_entry(run_id, action, actor, key, data, at, digest)

    def _add_entry(
        self,
        run_id: str,
        action: str,
        actor: Actor,
        key: str | None,
        data: dict[str, Any] | None,
        at: datetime,
        suffix: str | None = None,
    ) -> bool:
        entry = {
            "at": at.isoformat(),
            "action": action,
            "actor_id": actor.id,
            "actor_name": actor.name,
            "via": actor.via.value,
            "key": key,
            "data": data or {},
        }
        nanoseconds = (at - _EPOCH) // timedelta(microseconds=1) * 1000
        name = f"{AUDIT_PREFIX}{nanoseconds:020d}-{suffix or secrets.token_hex(4)}"
        return self.api.create_input(run_id, name, entry, sender="signoff")

    def trail(self, run_id: str) -> list[AuditRecord]:
        """The run's audit entries, oldest first."""
        found = []
        for entry in self.api.inputs_with_prefix(run_id, AUDIT_PREFIX, limit=1000):
            if not _AUDIT_NAME.match(str(entry.get("key"))):
                continue  # a record whose key merely starts alike (a consumer "audit-...")
            try:
                value = json.loads(entry["value"])
            except (ValueError, KeyError, TypeError):
                continue
            found.append((str(entry.get("key")), value))
        return [
            AuditRecord(
                at=prefect_runs.parse_time(str(v.get("at"))) or datetime.now(UTC),
                action=str(v.get("action")),
                run_id=run_id,
                actor_id=v.get("actor_id"),
                actor_name=v.get("actor_name"),
                via=v.get("via"),
                key=v.get("key"),
                data=dict(v.get("data") or {}),
            )
            for _, v in sorted(found, key=lambda kv: kv[0])
        ]

    # -- claims -------------------------------------------------------------------------

    def claim_once(self, key: str, seconds: float) -> bool:
        """Claim ``key`` for ``seconds`` across every process using this server.

        When Prefect cannot answer, the claim is this process's alone (logged): a Slack
        request is then still checked against replays that reach this process, rather than
        refused outright.
        """
        try:
            return self._claim_shared(key, seconds)
        except BackendError:
            logger.warning(
                "claim kept in this process only", extra={"action": "prefect_claim_local"}
            )
            now = time.monotonic()
            with self._lock:
                self._local = {k: t for k, t in self._local.items() if t > now}
                if key in self._local:
                    return False
                self._local[key] = now + seconds
                return True

    def _claim_shared(self, key: str, seconds: float) -> bool:
        name = CLAIM_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:40]
        until = time.time() + seconds
        if self.api.create_variable(name, {"until": until}):
            return True
        current = self.api.read_variable(name)
        if (
            current is not None
            and float((current.get("value") or {}).get("until") or 0) > time.time()
        ):
            return False
        # Expired: take it over; of several processes doing so, one creates it again.
        self.api.delete_variable(name)
        return self.api.create_variable(name, {"until": until})

    def reconciled(self, consumer: str) -> datetime | None:
        """When ``consumer``'s last reconciliation pass began (None: never)."""
        found = self.api.read_variable(RECONCILED_PREFIX + _variable_part(consumer))
        at = (found or {}).get("value")
        return prefect_runs.parse_time(at) if isinstance(at, str) else None

    def set_reconciled(self, consumer: str, at: datetime) -> None:
        name = RECONCILED_PREFIX + _variable_part(consumer)
        if not self.api.create_variable(name, at.isoformat()):
            self.api.update_variable(name, at.isoformat())

    def sweep(self) -> int:
        """Remove expired claims; how many were removed."""
        removed = 0
        for variable in self.api.variables_like(CLAIM_PREFIX + "%"):
            until = float((variable.get("value") or {}).get("until") or 0)
            if until <= time.time():
                self.api.delete_variable(str(variable["name"]))
                removed += 1
        return removed


__all__ = ["AUDIT_PREFIX", "Records", "record_key", "record_label"]
