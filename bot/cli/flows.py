"""``signoff flows list``: the flows some files or modules define, before anything runs.

It shows what ``signoff run`` and ``/runs start`` would accept: each flow's name, its
parameters (with types and defaults) and who may answer its prompts. It opens no database.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, cast

import click

from signoff.bot.cli.render import JSONValue, dump_json, table_lines
from signoff.bot.cli.session import flows_option
from signoff.engine import load_flows, registered_flows

if TYPE_CHECKING:
    from signoff.engine import Flow


def parameter_text(parameter: inspect.Parameter) -> str:
    """``name: type = default`` as the flow's source spells it (annotations stay text)."""
    text = parameter.name
    annotation = parameter.annotation
    if annotation is not inspect.Parameter.empty:
        shown = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
        text += f": {shown}"
    if parameter.default is not inspect.Parameter.empty:
        text += f" = {parameter.default!r}"
    return text


def answerers_text(flow: Flow[..., Any]) -> str:
    """Who may answer the flow's prompts, in words."""
    who = ", ".join(flow.approvers) if flow.approvers else "anyone"
    return f"{who} (not who started the run)" if flow.forbid_starter else who


def flow_json(flow: Flow[..., Any]) -> dict[str, JSONValue]:
    """One flow as JSON data: name, description, parameters schema and answerers."""
    return {
        "name": flow.name,
        "description": flow.description,
        "parameters": [parameter_text(p) for p in flow.signature.parameters.values()],
        "parameters_schema": flow.parameters_schema(),
        "approvers": list(flow.approvers),
        "forbid_starter": flow.forbid_starter,
    }


@click.group("flows")
def flows() -> None:
    """Inspect the flows that files or modules define."""


@flows.command("list")
@flows_option(required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_flows(sources: tuple[str, ...], as_json: bool) -> None:
    """List flows: name, parameters, and who may answer their prompts."""
    load_flows(*sources)
    found = [cast("Flow[..., Any]", f) for f in registered_flows()]
    if as_json:
        click.echo(dump_json([flow_json(f) for f in found]))
        return
    if not found:
        click.echo("no flows")
        return
    rows = [
        [
            f.name,
            ", ".join(parameter_text(p) for p in f.signature.parameters.values()) or "-",
            answerers_text(f),
            (f.description or "").strip().split("\n", 1)[0],
        ]
        for f in found
    ]
    click.echo("\n".join(table_lines(["FLOW", "PARAMETERS", "WHO ANSWERS", "DESCRIPTION"], rows)))
