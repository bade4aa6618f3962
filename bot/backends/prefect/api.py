"""``PrefectApi``: the few calls of Prefect's REST API that Signoff makes, over httpx.

Signoff talks to Prefect over its public HTTP API (and, in ``watcher``, its events
websocket) rather than through the ``prefect`` package: the bot's process then needs no
Prefect install and no Prefect settings beyond ``PREFECT_API_URL`` and its credentials:
``PREFECT_API_AUTH_STRING`` (a self-hosted server's basic auth) or ``PREFECT_API_KEY``
(Prefect Cloud), sent as Prefect's own client sends them. A 401 or 403 is a
``CredentialsRefused`` naming the setting to mend. Bodies and answers are Prefect's JSON,
as documented by the server's OpenAPI schema; what a person typed is sent as ``literal``
values, which Prefect's hydration leaves as they are.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from signoff.bot.backends.prefect.literal import literal
from signoff.bot.errors import BackendError, BackendUnavailable, CredentialsRefused, RunNotFound

logger = logging.getLogger(__name__)

#: JSON as Prefect sends it
Doc = dict[str, Any]
#: waits before retrying a call Prefect answered 503 to (its database busy, nothing
#: written): about 15 s in all, as a loaded server on SQLite stays busy for seconds
#: (Prefect's own client waits longer still: 2, 4, 8, 16 and 32 s)
BUSY_RETRY_SECONDS = (0.1, 0.3, 1.0, 2.0, 4.0, 8.0)
#: an idle connection is dropped after this long: under the 5 s after which Prefect's
#: server (uvicorn) closes it, so a request is not sent down a connection being closed
KEEPALIVE_SECONDS = 2.0
#: calls that change nothing, or set a value outright: safe to send again when the
#: connection fails under them (a POST to ``.../filter`` or ``.../count`` only reads)
_IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "PATCH", "DELETE"})
_READING_SUFFIXES = ("/filter", "/count")
#: a connection that failed under a request, which the server may or may not have handled
_DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class PrefectApi:
    """A thread-safe client of one Prefect API (``.../api``, or a Prefect Cloud workspace)."""

    def __init__(
        self,
        api_url: str,
        api_key: str | None = None,
        timeout: float = 10.0,
        *,
        auth_string: str | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key or None
        self.auth_string = auth_string or None
        #: the server's latest refusal of the credentials; None once it takes them again
        self.refused: CredentialsRefused | None = None
        self._http = httpx.Client(
            base_url=self.api_url,
            headers=auth_headers(self.auth_string, self.api_key),
            timeout=timeout,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
        )

    def close(self) -> None:
        self._http.close()

    # -- plumbing -----------------------------------------------------------------------

    def _call(
        self, method: str, path: str, *, body: Any = None, run_id: str | None = None
    ) -> httpx.Response:
        resendable = method in _IDEMPOTENT_METHODS or path.endswith(_READING_SUFFIXES)
        for delay in (*BUSY_RETRY_SECONDS, None):
            try:
                response = self._send(method, path, body, resendable=resendable)
            except httpx.HTTPError as exc:
                raise BackendUnavailable(
                    "prefect", f"{self.api_url} cannot be reached: {exc}"
                ) from exc
            # 503: the server's database was busy (SQLite's lock) and nothing was written.
            if response.status_code != 503 or delay is None:
                break
            logger.info("Prefect busy; retrying", extra={"action": "prefect_busy", "path": path})
            time.sleep(delay)
        if response.status_code in (401, 403):
            # Read as any refusal, it said "Prefect refused POST /flow_runs/filter" and left
            # the operator to guess which setting was wrong.
            self.refused = self._refused(response)
            raise self.refused
        self.refused = None
        if response.status_code == 404 and not self._names_a_thing(response):
            # Not "flow run not found": no such route, so PREFECT_API_URL names no Prefect
            # API (a URL without /api, most often). Read as "not found", it closed prompts.
            raise BackendUnavailable(
                "prefect",
                f"{self.api_url} has no Prefect API ({method} {path} is not there); "
                "PREFECT_API_URL is the API's URL, ending in /api, as "
                "http://127.0.0.1:4200/api",
            )
        if response.status_code == 404 and run_id is not None and "/input/" not in path:
            raise RunNotFound(run_id)
        if response.status_code >= 500:
            raise BackendUnavailable(
                "prefect", f"it answered {response.status_code} to {method} {path}"
            )
        return response

    def _send(self, method: str, path: str, body: Any, *, resendable: bool) -> httpx.Response:
        try:
            return self._http.request(method, path, json=body)
        except _DROPPED as exc:
            # A kept-alive connection the server (or a proxy) closed as this request went
            # out. Sent again on a new connection, unless the call may have taken effect:
            # a second resume or input would be refused, and read as someone else's.
            if not resendable:
                raise
            logger.info(
                "Prefect dropped the connection; sending again",
                extra={"action": "prefect_connection_dropped", "path": path, "error": str(exc)},
            )
            return self._http.request(method, path, json=body)

    def _refused(self, response: httpx.Response) -> CredentialsRefused:
        """The 401 or 403 ``response`` as the setting to mend (Prefect's precedence: the
        auth string is sent when set, else the key)."""
        said = f"Prefect at {self.api_url} answered {response.status_code}"
        if response.status_code == 403:
            said += f" ({self._detail(response)[:200]})"
        server_side = "the server's PREFECT_SERVER_API_AUTH_STRING (user:password)"
        if self.auth_string:
            unused = " (PREFECT_API_KEY is not sent while it is set)" if self.api_key else ""
            return CredentialsRefused(
                "prefect",
                ("PREFECT_API_AUTH_STRING",),
                f"{said}: it refuses PREFECT_API_AUTH_STRING{unused}; set it to {server_side}",
            )
        if self.api_key:
            return CredentialsRefused(
                "prefect",
                ("PREFECT_API_KEY",),
                f"{said}: it refuses PREFECT_API_KEY (wrong, expired, or without access to "
                "this workspace); a self-hosted server protected by "
                f"PREFECT_SERVER_API_AUTH_STRING takes PREFECT_API_AUTH_STRING instead",
            )
        return CredentialsRefused(
            "prefect",
            ("PREFECT_API_AUTH_STRING", "PREFECT_API_KEY"),
            f"{said}: it asks for credentials and none is set; set PREFECT_API_AUTH_STRING "
            f"to {server_side} for a self-hosted server, or PREFECT_API_KEY for Prefect Cloud",
        )

    @staticmethod
    def _names_a_thing(response: httpx.Response) -> bool:
        """True for a 404 of Prefect's API naming what is missing ("Flow run not found"),
        False for one of a route that is not there (``Not Found``, or not JSON)."""
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            return False
        return isinstance(detail, str) and detail.lower() != "not found"

    @staticmethod
    def _detail(response: httpx.Response) -> str:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = None
        return str(detail or response.text or response.reason_phrase)[:500]

    def _json(self, method: str, path: str, *, body: Any = None, run_id: str | None = None) -> Any:
        response = self._call(method, path, body=body, run_id=run_id)
        if response.status_code >= 400:
            raise BackendError(f"Prefect refused {method} {path}: {self._detail(response)}")
        return response.json()

    # -- health -------------------------------------------------------------------------

    def health(self) -> None:
        """Raise ``BackendUnavailable`` unless the server answers its health check."""
        response = self._call("GET", "/health")
        if response.status_code != 200:
            raise BackendUnavailable("prefect", f"its health check answered {response.status_code}")

    def check_access(self) -> None:
        """Raise ``CredentialsRefused`` if the server refuses this client's credentials,
        ``BackendUnavailable`` if it cannot be reached. Not ``health``: a server protected
        by an auth string answers its health check to anyone."""
        self._json("POST", "/flow_runs/filter", body={"limit": 1})

    # -- flow runs ----------------------------------------------------------------------

    def flow_run(self, run_id: str) -> Doc:
        try:
            uuid.UUID(run_id)
        except ValueError:
            # Prefect would answer 422; to the caller it is simply no such run.
            raise RunNotFound(run_id) from None
        found: Doc = self._json("GET", f"/flow_runs/{run_id}", run_id=run_id)
        return found

    def flow_runs(
        self,
        *,
        state_types: Sequence[str] | None = None,
        flow_names: Sequence[str] | None = None,
        ended_after: str | None = None,
        ids: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        expected_before: str | None = None,
        expected_after: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Doc]:
        """Flow runs, newest first (by expected start time; runs expected at the same time
        come in no set order); ``expected_before`` and ``expected_after`` keep those expected
        to start at or before, at or after, that time (Prefect's bounds are inclusive)."""
        runs: Doc = {}
        if expected_before or expected_after:
            runs["expected_start_time"] = {
                k: v for k, v in (("before_", expected_before), ("after_", expected_after)) if v
            }
        if tags:
            runs["tags"] = {"all_": list(tags)}
        if state_types:
            runs["state"] = {"type": {"any_": list(state_types)}}
        if ended_after:
            runs["end_time"] = {"after_": ended_after}
        if ids:
            runs["id"] = {"any_": list(ids)}
        body: Doc = {"limit": limit, "offset": offset, "sort": "EXPECTED_START_TIME_DESC"}
        if runs:
            body["flow_runs"] = runs
        if flow_names:
            body["flows"] = {"name": {"any_": list(flow_names)}}
        found: list[Doc] = self._json("POST", "/flow_runs/filter", body=body)
        return found

    def states(self, run_id: str) -> list[Doc]:
        """Every state the run has been in, oldest first."""
        found: list[Doc] = self._json(
            "GET", f"/flow_run_states/?flow_run_id={run_id}", run_id=run_id
        )
        return sorted(found, key=lambda s: str(s.get("timestamp")))

    def set_state(self, run_id: str, state: Doc, *, force: bool = False) -> Doc:
        found: Doc = self._json(
            "POST",
            f"/flow_runs/{run_id}/set_state",
            body={"state": state, "force": force},
            run_id=run_id,
        )
        return found

    def resume(self, run_id: str, run_input: Mapping[str, Any] | None) -> Doc:
        """Prefect's orchestration result: ``status`` ACCEPT, REJECT or ABORT, with
        ``details.reason``. The input arrives as given (``literal``)."""
        body = {"run_input": literal(dict(run_input)) if run_input is not None else None}
        found: Doc = self._json("POST", f"/flow_runs/{run_id}/resume", body=body, run_id=run_id)
        return found

    def logs(self, run_id: str, limit: int = 200) -> list[Doc]:
        found: list[Doc] = self._json(
            "POST",
            "/logs/filter",
            body={
                "logs": {"flow_run_id": {"any_": [run_id]}},
                "limit": limit,
                "sort": "TIMESTAMP_ASC",
            },
        )
        return found

    # -- flow run inputs (Prefect's key-value store per run) ------------------------------

    def read_input(self, run_id: str, key: str) -> Any:
        """The JSON value stored under ``key``; None when there is none."""
        response = self._call("GET", f"/flow_runs/{run_id}/input/{key}", run_id=run_id)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise BackendError(f"Prefect refused to read input {key!r}: {self._detail(response)}")
        try:
            return json.loads(response.text)
        except ValueError:
            return response.text

    def create_input(self, run_id: str, key: str, value: Any, sender: str | None = None) -> bool:
        """Store ``value`` under ``key``; False when the key already exists.

        The sender stored carries a mark of this call. When the connection drops under
        the request (Prefect's server closes one right after a 500 it raised, while the
        connection may already be back in the pool), whether the input was stored is
        unknown: it is looked up, and it is this call's if it bears the mark; if it is not
        there, the request is sent again. Without that, a dropped request was reported
        as Prefect being unavailable, though it may well have stored the input.
        """
        stamp = f"{sender or 'signoff'} {uuid.uuid4().hex[:12]}"
        body = {"key": key, "value": json.dumps(value), "sender": stamp}
        try:
            return self._store_input(run_id, key, body)
        except BackendUnavailable as exc:
            if not isinstance(exc.__cause__, _DROPPED):
                raise
        found = next((e for e in self.inputs_with_prefix(run_id, key) if e.get("key") == key), None)
        if found is None:
            return self._store_input(run_id, key, body)
        return found.get("sender") == stamp

    def _store_input(self, run_id: str, key: str, body: Doc) -> bool:
        response = self._call("POST", f"/flow_runs/{run_id}/input", body=body, run_id=run_id)
        if response.status_code == 409:
            return False
        if response.status_code == 404:
            raise RunNotFound(run_id)
        if response.status_code >= 400:
            raise BackendError(f"Prefect refused to store input {key!r}: {self._detail(response)}")
        return True

    def delete_input(self, run_id: str, key: str) -> None:
        response = self._call("DELETE", f"/flow_runs/{run_id}/input/{key}", run_id=run_id)
        if response.status_code >= 400 and response.status_code != 404:
            raise BackendError(f"Prefect refused to delete input {key!r}: {self._detail(response)}")

    def inputs_with_prefix(self, run_id: str, prefix: str, limit: int = 100) -> list[Doc]:
        found: list[Doc] = self._json(
            "POST",
            f"/flow_runs/{run_id}/input/filter",
            body={"prefix": prefix, "limit": limit, "exclude_keys": []},
            run_id=run_id,
        )
        return found

    def add_tags(self, run_id: str, tags: Sequence[str]) -> None:
        """Add ``tags`` to the run's (Prefect replaces the whole list: read, then write)."""
        current = list(self.flow_run(run_id).get("tags") or [])
        wanted = current + [t for t in tags if t not in current]
        if wanted != current:
            self._json_or_none(
                "PATCH", f"/flow_runs/{run_id}", body={"tags": wanted}, run_id=run_id
            )

    def set_labels(self, run_id: str, labels: Mapping[str, str]) -> None:
        """Set ``labels`` on the run (Prefect merges them into its others)."""
        self._json_or_none("PATCH", f"/flow_runs/{run_id}/labels", body=dict(labels), run_id=run_id)

    def count_runs(self, state_types: Sequence[str]) -> int:
        body = {"flow_runs": {"state": {"type": {"any_": list(state_types)}}}}
        return int(self._json("POST", "/flow_runs/count", body=body))

    def _json_or_none(
        self, method: str, path: str, *, body: Any = None, run_id: str | None = None
    ) -> Any:
        response = self._call(method, path, body=body, run_id=run_id)
        if response.status_code >= 400:
            raise BackendError(f"Prefect refused {method} {path}: {self._detail(response)}")
        return response.json() if response.content else None

    # -- variables (Signoff's claims) -----------------------------------------------------

    def create_variable(self, name: str, value: Any) -> bool:
        """False when a variable of that name exists."""
        response = self._call("POST", "/variables/", body={"name": name, "value": value})
        if response.status_code == 409:
            return False
        if response.status_code >= 400:
            raise BackendError(f"Prefect refused variable {name!r}: {self._detail(response)}")
        return True

    def read_variable(self, name: str) -> Doc | None:
        response = self._call("GET", f"/variables/name/{name}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise BackendError(f"Prefect refused variable {name!r}: {self._detail(response)}")
        found: Doc = response.json()
        return found

    def update_variable(self, name: str, value: Any) -> None:
        response = self._call("PATCH", f"/variables/name/{name}", body={"value": value})
        if response.status_code >= 400:
            raise BackendError(f"Prefect refused variable {name!r}: {self._detail(response)}")

    def delete_variable(self, name: str) -> None:
        response = self._call("DELETE", f"/variables/name/{name}")
        if response.status_code >= 400 and response.status_code != 404:
            raise BackendError(f"Prefect refused variable {name!r}: {self._detail(response)}")

    def variables_like(self, pattern: str, limit: int = 200, offset: int = 0) -> list[Doc]:
        body = {"variables": {"name": {"like_": pattern}}, "limit": limit, "offset": offset}
        found: list[Doc] = self._json("POST", "/variables/filter", body=body)
        return found

    # -- flows and deployments ----------------------------------------------------------

    def flow(self, flow_id: str) -> Doc:
        found: Doc = self._json("GET", f"/flows/{flow_id}")
        return found

    def deployment(self, deployment_id: str) -> Doc | None:
        """None for a deployment deleted since: Prefect keeps the runs it made (all but
        the scheduled ones) with their ``deployment_id``."""
        response = self._call("GET", f"/deployments/{deployment_id}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise BackendError(f"Prefect refused to read a deployment: {self._detail(response)}")
        found: Doc = response.json()
        return found

    def deployment_by_name(self, flow_name: str, deployment_name: str) -> Doc | None:
        response = self._call("GET", f"/deployments/name/{flow_name}/{deployment_name}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise BackendError(f"Prefect refused to read a deployment: {self._detail(response)}")
        found: Doc = response.json()
        return found

    def deployments(self, limit: int = 200) -> list[Doc]:
        found: list[Doc] = self._json(
            "POST", "/deployments/filter", body={"limit": limit, "sort": "NAME_ASC"}
        )
        return found

    def flows(self, ids: Sequence[str]) -> list[Doc]:
        found: list[Doc] = self._json(
            "POST", "/flows/filter", body={"flows": {"id": {"any_": list(ids)}}, "limit": 200}
        )
        return found

    def create_run_from_deployment(
        self, deployment_id: str, parameters: Mapping[str, Any], tags: Sequence[str]
    ) -> httpx.Response:
        """The raw answer: the caller reads a refusal's detail (parameter errors). The
        parameters arrive as given (``literal``)."""
        return self._call(
            "POST",
            f"/deployments/{deployment_id}/create_flow_run",
            body={"parameters": literal(dict(parameters)), "tags": list(tags)},
        )


def auth_headers(auth_string: str | None, api_key: str | None) -> dict[str, str]:
    """The ``Authorization`` header Prefect's own client sends: basic auth with
    ``PREFECT_API_AUTH_STRING`` when it is set, else ``PREFECT_API_KEY`` as a bearer token."""
    if auth_string:
        return {"Authorization": f"Basic {base64.b64encode(auth_string.encode()).decode()}"}
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}
