"""Settings of the Prefect backend, read as Prefect's own tools read them (and, as every
Signoff setting, from a ``.env`` file too), plus Signoff's per-flow permissions.

- ``PREFECT_API_URL``: the server's API (``http://127.0.0.1:4200/api``), or a Prefect Cloud
  workspace URL;
- ``PREFECT_API_AUTH_STRING``: ``user:password`` for a self-hosted server protected by basic
  auth (the server's ``PREFECT_SERVER_API_AUTH_STRING``), sent as Prefect's client sends
  it; when set, ``PREFECT_API_KEY`` is not sent;
- ``PREFECT_API_KEY``: Prefect Cloud's API key (unset for a self-hosted server);
- ``SIGNOFF_PREFECT_RECONCILE_SECONDS``: how often runs are read again in case an event
  was missed (default 30);
- ``SIGNOFF_PREFECT_SCHEMA_WAIT_SECONDS``: how long a run may stay paused for input
  without its flow storing the input's schema (which it does just after pausing) before
  Signoff says that nobody can answer it (default 30);
- ``SIGNOFF_PREFECT_PERMISSIONS``: a JSON file of who may answer, start, cancel and view,
  per flow or deployment::

      {"deploy-production": {"approvers": ["U0BOB", "S0OPS"], "forbid_starter": true,
                             "start": ["U0CAROL"], "cancel": ["U0CAROL", "U0BOB"],
                             "view": ["S0AUDIT"]},
       "deploy-production/prod": {"start": ["U0ALICE"]}}

  A deployment's entry (``flow/deployment``) overrides its flow's, field by field. A list
  that is absent or empty lets anyone. Once an entry names anyone, its runs are shown in
  Slack only to those it names (``view``: who may see them and do nothing else), to whoever
  started or acted on a run, as the embedded engine's view rule says. A run tagged
  ``signoff.approvers:U0BOB,S0OPS`` names its own approvers. Quorums, vetoes and
  escalation are the embedded engine's alone: such a rule is refused saying so
  (``ENGINE_ONLY``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

from signoff.bot.config import EnvSettings
from signoff.bot.errors import SettingsError
from signoff.engine.actors import check_id_case

#: an interval: more than nothing, at most a day (an infinite one overflows the timer that
#: waits on it)
Seconds = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]


class Permission(BaseModel):
    """Who may do what with one flow's (or deployment's) runs; None: not said here."""

    model_config = {"extra": "forbid"}

    approvers: list[str] | None = None
    forbid_starter: bool | None = None
    start: list[str] | None = None
    cancel: list[str] | None = None
    #: who may also view its runs in Slack (auditors)
    view: list[str] | None = None

    @field_validator("approvers", "start", "cancel", "view")
    @classmethod
    def _ids_given(cls, value: list[str] | None) -> list[str] | None:
        # An empty id matches nobody: the rule would look set and let no one through.
        if value is not None and not all(item.strip() for item in value):
            raise ValueError("holds an empty id")
        for item in value or ():
            check_id_case(item)
        return value


#: rules of the embedded engine's pauses that a Prefect pause (one answer, no timer of
#: Signoff's) cannot follow: refused as that, not as a misspelt rule
ENGINE_ONLY = {
    "quorum": "a quorum (several people answering one pause)",
    "veto": "a veto (a quorum's answer that ends it at once)",
    "escalate_after": "escalation (approvers added after a while)",
    "escalate_to": "escalation (approvers added after a while)",
}


def _engine_only(rule: str) -> str:
    return (
        f"{ENGINE_ONLY[rule]} is available only with the embedded engine backend "
        f"(--backend embedded), set by the flow: pause_flow_run(..., {rule}=...). A Prefect "
        "pause takes one answer from one of the approvers: remove this rule, or run the "
        "flow on Signoff's engine"
    )


#: what the file holds, said in each error about its shape
_SHAPE = (
    'a JSON object of flow (or "flow/deployment") names to rules, e.g. '
    '{"deploy": {"approvers": ["U0BOB"], "start": ["U0CAROL"]}}'
)


class Permissions(BaseModel):
    """Entries by flow name or ``flow/deployment``."""

    entries: dict[str, Permission] = Field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Permissions:
        """Raises ``SettingsError`` naming the variable once, the file, and each thing
        wrong in it."""
        where = f"SIGNOFF_PREFECT_PERMISSIONS: {path}"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SettingsError(f"SIGNOFF_PREFECT_PERMISSIONS: cannot read {path}: {exc}") from exc
        if not isinstance(data, dict):
            kind = "a list" if isinstance(data, list) else f"{json.dumps(data)[:40]}"
            raise SettingsError(f"{where}: holds {kind}; it must hold {_SHAPE}")
        try:
            return cls(entries=data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                path_in_file = ".".join(str(part) for part in err["loc"][1:])
                message = str(err["msg"]).removeprefix("Value error, ")
                if err["type"] in {"dict_type", "model_type"}:
                    message = 'must be an object of rules, e.g. {"approvers": ["U0BOB"]}'
                elif err["type"] == "extra_forbidden" and err["loc"][-1] in ENGINE_ONLY:
                    message = _engine_only(str(err["loc"][-1]))
                problems.append(f"{path_in_file}: {message}")
            raise SettingsError(f"{where}: {'; '.join(problems)}") from exc

    def for_run(self, flow: str, deployment: str | None) -> Permission:
        """The flow's entry overlaid with its deployment's."""
        merged = Permission()
        for name in (flow, f"{flow}/{deployment}" if deployment else None):
            entry = self.entries.get(name) if name else None
            if entry is not None:
                merged = merged.model_copy(update=entry.model_dump(exclude_none=True))
        return merged

    def for_unknown_deployment(self, flow: str) -> Permission:
        """The rules of a run whose deployment was deleted (Prefect keeps its paused and
        finished runs, not its name): every entry of one of the flow's deployments may
        have been its own, so each rule is the strictest of them. A list that two entries
        set with nobody in common lets nobody; it does not fall back to letting anyone."""
        entries = [
            entry
            for name, entry in self.entries.items()
            if name == flow or name.startswith(f"{flow}/")
        ]
        if not any(name.startswith(f"{flow}/") for name in self.entries):
            return self.for_run(flow, None)

        def strictest(field: str) -> list[str] | None:
            lists = [set(getattr(e, field)) for e in entries if getattr(e, field)]
            return (sorted(set.intersection(*lists)) or [NOBODY]) if lists else None

        # Built without validation: NOBODY is no Slack id, so that no one matches it.
        return Permission.model_construct(
            approvers=strictest("approvers"),
            forbid_starter=True if any(e.forbid_starter for e in entries) else None,
            start=strictest("start"),
            cancel=strictest("cancel"),
            view=strictest("view"),
        )


#: the one name a rule lets when the entries it could come from name nobody in common
NOBODY = "nobody (the run's deployment was deleted from Prefect)"


class PermissionsFileSetting(EnvSettings):
    """``SIGNOFF_PREFECT_PERMISSIONS`` alone, so that its file can be checked while another
    Prefect variable is wrong (``config show`` names both problems at once)."""

    permissions_file: Path | None = Field(default=None, alias="SIGNOFF_PREFECT_PERMISSIONS")

    def permissions(self) -> Permissions:
        """The rules in ``SIGNOFF_PREFECT_PERMISSIONS``'s file (none when it is unset).

        Raises:
            SettingsError: the file cannot be read, or holds no rules of the right shape.
        """
        return Permissions.read(self.permissions_file) if self.permissions_file else Permissions()


class PrefectSettings(PermissionsFileSetting):
    """Example::

    settings = PrefectSettings.load()  # PREFECT_API_URL, PREFECT_API_KEY, ...
    """

    api_url: str = Field(alias="PREFECT_API_URL")
    api_key: SecretStr | None = Field(default=None, alias="PREFECT_API_KEY")
    api_auth_string: SecretStr | None = Field(default=None, alias="PREFECT_API_AUTH_STRING")
    reconcile_seconds: Seconds = Field(default=30.0, alias="SIGNOFF_PREFECT_RECONCILE_SECONDS")
    schema_wait_seconds: Seconds = Field(default=30.0, alias="SIGNOFF_PREFECT_SCHEMA_WAIT_SECONDS")
    #: how long a claim on a request (made before resuming the run) holds before the run
    #: still waits on it shows that its answer never took effect
    answer_claim_seconds: Seconds = Field(
        default=60.0, alias="SIGNOFF_PREFECT_ANSWER_CLAIM_SECONDS"
    )

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL, e.g. http://127.0.0.1:4200/api")
        return value.rstrip("/")

    def credentials(self) -> tuple[str | None, str | None]:
        """``(auth string, API key)`` as plain text, each None when unset or empty."""
        auth = self.api_auth_string.get_secret_value() if self.api_auth_string else None
        key = self.api_key.get_secret_value() if self.api_key else None
        return auth or None, key or None
