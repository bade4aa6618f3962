"""Starting runs of Prefect deployments, and cancelling runs, as the permissions allow.

A flow is named ``flow/deployment`` (or by its flow alone when it has one deployment); its
start form is the deployment's parameter schema. Starting and cancelling are audited on
the run (``records``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from signoff.bot.backends.model import JSON, Action, Actor, Refusal, Run, RunState, StartForm
from signoff.bot.backends.prefect import runs as prefect_runs
from signoff.bot.backends.prefect.api import Doc
from signoff.bot.backends.prefect.reading import RunReading
from signoff.bot.backends.prefect.refusals import field_errors
from signoff.bot.errors import (
    BackendError,
    FlowUnknown,
    NotPermitted,
    ParametersInvalid,
    RunNotChangeable,
)

logger = logging.getLogger(__name__)


class RunControl(RunReading):
    """Starting and cancelling runs on the Prefect server."""

    def flow_names(self) -> list[str]:
        deployments = self.api.deployments()
        if not deployments:
            return []
        flows = {
            str(f["id"]): str(f["name"])
            for f in self.api.flows([str(d["flow_id"]) for d in deployments])
        }
        return sorted(f"{flows.get(str(d['flow_id']), '?')}/{d['name']}" for d in deployments)

    def _deployment(self, name: str) -> Doc | None:
        flow, sep, deployment = name.partition("/")
        if not sep:
            # A flow with exactly one deployment may be named alone.
            matches = [n for n in self.flow_names() if n.partition("/")[0] == flow]
            if len(matches) != 1:
                return None
            flow, _, deployment = matches[0].partition("/")
        return self.api.deployment_by_name(flow, deployment)

    def _deployment_name(self, deployment: Doc) -> str:
        return f"{self._name('flow', str(deployment['flow_id']))}/{deployment['name']}"

    def start_form(self, flow: str) -> StartForm | None:
        deployment = self._deployment(flow)
        if deployment is None:
            return None
        schema = dict(deployment.get("parameter_openapi_schema") or {})
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        return StartForm(
            name=self._deployment_name(deployment),
            schema=schema,
            description=deployment.get("description") or None,
        )

    def may_start(self, actor: Actor, flow: str) -> Refusal | None:
        deployment = self._deployment(flow)
        if deployment is None:
            raise FlowUnknown(flow, tuple(self.flow_names()))
        name = self._deployment_name(deployment)
        permission = self.permissions.for_run(name.partition("/")[0], str(deployment["name"]))
        return self.rules.start(actor, name, permission)

    def start_run(
        self,
        flow: str,
        parameters: Mapping[str, JSON],
        *,
        started_by: Actor,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        deployment = self._deployment(flow)
        if deployment is None:
            raise FlowUnknown(flow, tuple(self.flow_names()))
        name = self._deployment_name(deployment)
        refused = self.may_start(started_by, name)
        if refused is not None:
            raise NotPermitted("start", started_by.id, refused.reason, allowed=refused.allowed)
        run_tags = [f"signoff.started_by:{started_by.id}"]
        run_tags += [f"{k}:{v}" for k, v in (tags or {}).items() if v]
        if self.demo is not None:
            run_tags.append(f"{prefect_runs.DEMO_TAG}:{self.demo}")
        response = self.api.create_run_from_deployment(str(deployment["id"]), parameters, run_tags)
        if response.status_code >= 400:
            detail = str(response.json().get("detail") if response.content else response.text)
            raise ParametersInvalid(
                name, field_errors(detail), f"Prefect refused to start {name}: {detail[:500]}"
            )
        created = self._run(response.json())
        self.records.audit(
            created.id,
            "run.started",
            started_by,
            data={"parameters": dict(parameters)},
        )
        logger.info(
            "Prefect run created",
            extra={"action": "prefect_run_created", "run_id": created.id, "flow": name},
        )
        return created

    def cancel(self, run_id: str, *, by: Actor, reason: str | None = None) -> Run:
        doc = self._doc(run_id)
        run = self._run(doc)
        if run.state.is_final:
            raise RunNotChangeable(run.id, run.state.value, RunState.CANCELLED.value)
        waiting = self._waiting(doc)
        refused = self.rules.cancel(by, run, self._permission(doc), waiting)
        if refused is not None:
            self._audit_refusal(run.id, by, None, Action.CANCEL, refused)
            raise NotPermitted(
                "cancel", by.id, refused.reason, allowed=refused.allowed, run_id=run.id
            )
        state = doc.get("state") or {}
        # A run with a live process (running, or paused in its process) is asked to stop
        # (Cancelling, which its runner or worker acts on); one without is cancelled outright.
        # So is a pause whose flow never stored its input's schema: its process is gone.
        live = state.get("type") in ("RUNNING", "CANCELLING") or (
            state.get("type") == "PAUSED"
            and not (state.get("state_details") or {}).get("pause_reschedule")
            and (waiting is None or waiting.unanswerable is None)
        )
        kind, label = ("CANCELLING", "Cancelling") if live else ("CANCELLED", "Cancelled")
        message = reason or f"cancelled by {by.id}"
        result = self.api.set_state(
            run.id, {"type": kind, "name": label, "message": message}, force=not live
        )
        if result.get("status") != "ACCEPT":
            why = (result.get("details") or {}).get("reason") or result.get("status")
            raise BackendError(f"Prefect did not cancel run {run.id}: {why}")
        self.records.audit(
            run.id,
            "run.cancelled",
            by,
            data={"reason": message},
        )
        logger.info(
            "Prefect run cancelled", extra={"action": "prefect_run_cancelled", "run_id": run.id}
        )
        return self.get_run(run.id)


__all__ = ["RunControl"]
