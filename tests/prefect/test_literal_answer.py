"""What a person types reaches the Prefect flow as typed, also an object holding
``__prefect_kind``: Prefect's server "hydrates" a resume's input and a new run's
parameters, and such an object stood for something else. Typed into a form's JSON field,
``{"__prefect_kind": "workspace_variable", "variable_name": ...}`` handed the flow the
value of any Prefect variable, and ``"jinja"`` a rendered template."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends import Accepted, Actor
from signoff.bot.backends.prefect import PrefectBackend
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]


def _logged(backend: PrefectBackend, run_id: str, prefix: str) -> object:
    lines = [str(log.get("message")) for log in backend.api.logs(run_id)]
    found = [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]
    return json.loads(found[0]) if found else None


def test_placeholders_typed_in_a_parameter_and_an_answer_reach_the_flow_as_typed(
    prefect_backend: PrefectBackend, served_flows: str
) -> None:
    hidden = f"signoff_test_hidden_{uuid.uuid4().hex[:8]}"
    prefect_backend.api.create_variable(hidden, "s3cret")
    typed = {
        "leak": {"__prefect_kind": "workspace_variable", "variable_name": hidden},
        "sum": [{"__prefect_kind": "jinja", "template": "{{ 6 * 7 }}"}],
        "nested": {"plain": "x", "inner": {"__prefect_kind": "none", "value": 1}},
    }
    try:
        run = prefect_backend.start_run(
            f"literal-answer/{served_flows}", {"note": typed}, started_by=Actor("U0CAROL")
        )
        pause = wait_for(
            lambda: (p := prefect_backend.waiting_pause(run.id)) and p.schema and p,
            timeout=120,
            what="the run to ask for its answer",
        )
        answered = prefect_backend.answer(
            run.id, pause.key, {"data": typed}, responder=Actor("U0ALICE")
        )
        assert isinstance(answered, Accepted), answered
        got = wait_for(
            lambda: _logged(prefect_backend, run.id, "answer: "),
            timeout=120,
            what="the flow to log its answer",
        )
        # Before: {"leak": "s3cret", "nested": {"inner": 1, "plain": "x"}, "sum": ["42"]}
        assert got == typed
        assert _logged(prefect_backend, run.id, "parameter: ") == typed
        assert prefect_backend.api.flow_run(run.id)["parameters"] == {"note": typed}
    finally:
        prefect_backend.api.delete_variable(hidden)
