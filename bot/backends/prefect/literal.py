"""Values sent to Prefect exactly as typed, past its "hydration".

Prefect's server hydrates a resume's ``run_input`` and a new run's parameters before it
checks and stores them (``prefect.utilities.schema_tools.hydration``, called by
``POST /flow_runs/{id}/resume`` and ``POST /deployments/{id}/create_flow_run``, with Jinja
and workspace variables rendered): any object holding the key ``__prefect_kind`` is
replaced by what it stands for. ``{"__prefect_kind": "workspace_variable",
"variable_name": "x"}`` becomes the value of the workspace's variable ``x``,
``{"__prefect_kind": "jinja", "template": "..."}`` the rendered template, and an object of
a kind Prefect does not know its ``value`` (or nothing). So an answer typed into a form's
JSON field reached the flow as something else, and could read any Prefect variable.

Prefect's own ``json`` placeholder whose ``value`` is text is parsed, and what it parses to
is not hydrated again: each object holding the key is sent as one, carrying its JSON, and
arrives as typed. Nothing is refused, and values without the key are sent unchanged.
"""

from __future__ import annotations

import json
from typing import Any

#: the key that marks an object as a placeholder to Prefect's hydration
KIND = "__prefect_kind"


def literal(value: Any) -> Any:
    """``value`` with each object that holds ``KIND`` (the outermost of them) wrapped as
    ``{"__prefect_kind": "json", "value": "<its JSON text>"}``, which Prefect hydrates
    back to that object, unchanged."""
    if isinstance(value, dict):
        if KIND in value:
            return {KIND: "json", "value": json.dumps(value)}
        return {key: literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [literal(item) for item in value]
    return value


__all__ = ["KIND", "literal"]
