"""How the CLI shows runs: aligned text for people, JSON for scripts.

JSON output is built from the engine's domain values field by field; every datetime
becomes ISO 8601 and every enum its value.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import json
from collections.abc import Container, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeAlias, cast

from signoff import engine
from signoff.bot.backends import model
from signoff.engine.actors import printable

#: A value ``json.dumps`` can write.
JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"

#: A run, its detail and its requests for input, as the engine or a backend (Prefect's)
#: gives them: the fields shown have the same names in both.
Run: TypeAlias = "engine.Run | model.Run"
RunDetail: TypeAlias = "engine.RunDetail | model.RunDetail"
Pause: TypeAlias = "engine.Pause | model.Pause"

#: How many characters of a result or an error a table cell shows.
PREVIEW_WIDTH = 60
#: how many ``$ref`` and ``anyOf`` levels a field's description follows; past it (a schema
#: that refers to itself) the field reads as ``object``
_MAX_DEPTH = 20


def jsonable(value: object) -> JSONValue:
    """Turn a domain value (dataclasses, enums, datetimes, containers) into plain JSON data.

    Args:
        value: a ``Run``, ``RunDetail`` or anything they contain.

    Returns:
        Data that ``json.dumps`` writes without a ``default``.
    """
    if isinstance(value, engine.Run | model.Run):
        data = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        data["result"] = result_value(value.result)
        if value.unreadable is None:
            del data["unreadable"]  # only a run a listing could not read in full has one
        return data
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [jsonable(v) for v in value]
    return repr(value)


def result_value(preview: str | None) -> JSONValue:
    """A run's result as JSON data when it is JSON-able, else the text the engine stored.

    The engine keeps a ``repr`` of the result (up to 500 characters). A repr of plain data
    (dicts, lists, strings, numbers, booleans, None) is a Python literal: it is read back
    with ``ast.literal_eval``, which runs no code. Anything else (an object, a cut-off
    repr) stays text.
    """
    if preview is None:
        return None
    try:
        value = ast.literal_eval(preview)
        json.dumps(value, allow_nan=False)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return preview
    return cast(JSONValue, value)


def dump_json(value: object) -> str:
    """``value`` as indented JSON text (see ``jsonable``)."""
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False)


def format_time(at: datetime | None, *, timespec: str = "seconds") -> str:
    """A time, in UTC, to the second (``timespec="minutes"``: to the minute), or ``-`` when
    there is none. The year always has four digits (``0001-01-01``), which strftime's
    ``%Y`` leaves out on Linux (``1-01-01``)."""
    if at is None:
        return "-"
    utc = at.astimezone(UTC) if at.tzinfo else at
    return utc.replace(tzinfo=None).isoformat(" ", timespec)


def state_line(run: Run) -> str:
    """One line saying where a run is: ``<id> <state> (<name>: <message>)``."""
    detail = run.state_name
    if run.state_message:
        detail = f"{detail}: {run.state_message}"
    return f"{run.id} {run.state.value} ({detail})"


def runs_table(runs: Sequence[Run]) -> str:
    """A table of runs: short id, flow, state, creation and last update, who started each."""
    if not runs:
        return "no runs"
    rows = [
        [
            r.id[:8],
            r.flow_name if r.unreadable is None else f"UNREADABLE ({r.unreadable})",
            r.state.value,
            format_time(r.created_at),
            format_time(r.updated_at),
            r.started_by or "-",
        ]
        for r in runs
    ]
    headers = ["ID", "FLOW", "STATE", "CREATED (UTC)", "UPDATED (UTC)", "STARTED BY"]
    return "\n".join(_table(headers, rows, indent=""))


def detail_text(detail: RunDetail, tail: int) -> str:
    """Everything recorded about a run, as sections of aligned text.

    Args:
        detail: the run with its history, tasks, pauses and logs.
        tail: how many of the last log records to show.

    Returns:
        The text, without a trailing newline.
    """
    run = detail.run
    lines = [f"Run {run.id}"]
    lines += _fields(
        [
            ("flow", run.flow_name),
            ("state", f"{run.state.value} ({run.state_name})"),
            ("message", run.state_message or ""),
            ("started by", run.started_by or "-"),
            ("created", format_time(run.created_at)),
            ("updated", format_time(run.updated_at)),
            ("result", run.result or ""),
            ("tags", ", ".join(f"{k}={v}" for k, v in run.tags.items())),
        ]
    )
    lines += ["", "Parameters"]
    lines += _fields([(k, _compact(v)) for k, v in run.parameters.items()]) or ["  (none)"]
    lines += ["", "History"]
    lines += _table(
        ["AT (UTC)", "STATE", "NAME", "MESSAGE"],
        [[format_time(c.at), c.state.value, c.name, c.message or ""] for c in detail.history],
    )
    lines += ["", "Tasks"]
    lines += (
        _table(
            ["KEY", "STATE", "ATTEMPTS", "RESULT / ERROR"],
            [
                [t.key, t.state.value, str(t.attempts), _preview(t.error or t.result or "")]
                for t in detail.tasks
            ],
        )
        if detail.tasks
        else ["  (none)"]
    )
    lines += ["", "Pauses"]
    lines += [line for p in detail.pauses for line in _pause_lines(p)] or ["  (none)"]
    shown = detail.logs[-tail:] if tail > 0 else ()
    lines += ["", f"Logs (last {len(shown)} of {len(detail.logs)})"]
    lines += [
        _log_text(f"  {format_time(e.at)}  {e.level:<7} ", e.task_key, e.message) for e in shown
    ] or ["  (none)"]
    return "\n".join(lines)


def _log_text(head: str, task_key: str | None, message: str) -> str:
    """A log record: ``head``, then its message, whose further lines (a validation error's,
    say) are indented under its first.

    A flow may log what a person typed: indented, no line of it starts where a record or a
    section (``Audit trail``) does, and a terminal escape in it is written out.
    """
    first, *rest = message.split("\n")
    task = f"[{printable(task_key)}] " if task_key else ""
    pad = " " * len(head)
    return "\n".join(
        [head + task + printable(first), *((pad + printable(line)).rstrip() for line in rest)]
    )


def _pause_lines(pause: Pause) -> list[str]:
    kind = "suspend" if pause.suspend else "pause"
    head = f"  {pause.key}  {pause.status.value}  {kind}"
    if pause.title:
        head += f"  {pause.title}"
    fields: list[tuple[str, str]] = [
        ("asked", format_time(pause.created_at)),
        ("deadline", format_time(pause.deadline)),
    ]
    if pause.approvers:
        fields.append(("approvers", ", ".join(pause.approvers)))
    if pause.status.value == "waiting":
        # What an answer (``runs resume --input``) must hold, as the form would ask it.
        fields += _input_fields(pause.schema)
    answers: Sequence[engine.GivenAnswer | model.GivenAnswer] = pause.answers
    if pause.quorum > 1 or len(answers) > 1:
        # Each answer with who gave it, when and from where: the pause's responder is only
        # the last of them, and its response the list of their inputs.
        fields.append(("answers", f"{len(answers)} of {pause.quorum}"))
        fields += [
            (
                f"answer {n}",
                f"by {a.responder or '(anonymous)'} via {a.via or '-'} at {format_time(a.at)}: "
                + _compact(engine.hide_secrets(pause.schema, a.input)),
            )
            for n, a in enumerate(answers, 1)
        ]
    else:
        if pause.responder is not None or pause.answered_at is not None:
            fields.append(
                (
                    "answered",
                    f"by {pause.responder or '(anonymous)'} at {format_time(pause.answered_at)}",
                )
            )
        if pause.response is not None:
            fields.append(("response", _compact(engine.hide_secrets(pause.schema, pause.response))))
    errors = [(f"error {k or '(input)'}", v) for k, v in pause.errors.items()]
    shown = _fields([*fields, *errors], multiline={k for k, _ in errors})
    return [head, *(f"  {line}" for line in shown)]


def _input_fields(schema: Mapping[str, object] | None) -> list[tuple[str, str]]:
    """One ``field NAME`` line per field of a waiting pause's input schema: its type,
    whether it is required or its default, the values it may take, and its description."""
    if schema is None:
        return [("input", "none (resume it without --input)")]
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        return [("input", "an empty object: --input '{}'")]
    required = schema.get("required")
    needed = set(required) if isinstance(required, list) else set()
    shown: list[tuple[str, str]] = []
    for name, given in properties.items():
        node: Mapping[str, object] = given if isinstance(given, Mapping) else {}
        parts = [_field_type(node, schema)]
        if name in needed:
            parts.append("required")
        elif "default" in node:
            parts.append(f"default {_compact(node['default'])}")
        allowed, description = _choices(node, schema), node.get("description")
        if allowed:
            parts.append("one of " + ", ".join(_compact(v) for v in allowed))
        if isinstance(description, str):
            parts.append(description)
        shown.append((f"field {name}", "; ".join(parts)))
    return shown


def _field_type(node: Mapping[str, object], schema: Mapping[str, object], depth: int = 0) -> str:
    """A field's JSON type, ``a or b`` for a union, ``object`` when the schema names none.

    A ``$ref`` (an ``Enum``, a nested model) is described by the definition it points to.
    """
    resolved = _resolved(node, schema, depth)
    if resolved is None:
        return "object"
    options = resolved.get("anyOf")
    if isinstance(options, list):
        kinds = [_field_type(o, schema, depth + 1) for o in options if isinstance(o, Mapping)]
        return " or ".join(dict.fromkeys(kinds)) or "any"
    kind = resolved.get("type")
    if isinstance(kind, str):
        fmt = resolved.get("format")
        return f"{kind} ({fmt})" if isinstance(fmt, str) else kind
    return "any"


def _choices(
    node: Mapping[str, object], schema: Mapping[str, object], depth: int = 0
) -> list[object]:
    """The values a field may take (an ``enum``, also behind a ``$ref`` or in an
    ``anyOf`` such as ``Color | None``); empty when it may take any of its type."""
    resolved = _resolved(node, schema, depth)
    if resolved is None:
        return []
    allowed = resolved.get("enum")
    if isinstance(allowed, list):
        return allowed
    options = resolved.get("anyOf")
    found: list[object] = []
    for option in options if isinstance(options, list) else []:
        if isinstance(option, Mapping):
            found += [v for v in _choices(option, schema, depth + 1) if v not in found]
    return found


def _resolved(
    node: Mapping[str, object], schema: Mapping[str, object], depth: int
) -> Mapping[str, object] | None:
    """``node``, or the ``$defs`` entry its ``$ref`` names; None for a ``$ref`` that cannot
    be followed (outside ``$defs``, missing, or referring to itself past ``_MAX_DEPTH``)."""
    while "$ref" in node:
        ref, defs = node["$ref"], schema.get("$defs")
        target = (
            defs.get(ref.removeprefix("#/$defs/"))
            if isinstance(ref, str) and ref.startswith("#/$defs/") and isinstance(defs, Mapping)
            else None
        )
        depth += 1
        if not isinstance(target, Mapping) or depth > _MAX_DEPTH:
            return None
        node = target
    return node


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows under headers, in columns as wide as their widest cell."""
    return _table(headers, rows, indent="")


def _fields(pairs: Sequence[tuple[str, str]], multiline: Container[str] = ()) -> list[str]:
    """``key  value`` lines, values aligned. A value is one line (a newline in a name is
    written out), but one under a key in ``multiline`` (a validation error's text) has its
    further lines under its first, as a log record's are (``_log_text``)."""
    shown = [(k, v) for k, v in pairs if v != ""]
    width = max((len(k) for k, _ in shown), default=0)
    lines: list[str] = []
    for key, value in shown:
        first, *rest = value.split("\n") if key in multiline else [value]
        lines.append(f"  {key:<{width}}  {printable(first)}")
        lines += [(" " * (width + 4) + printable(line)).rstrip() for line in rest]
    return lines


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    # A stored newline or terminal escape (from before names were checked) stays in its cell.
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(c) for c in column) for column in zip(headers, *rows, strict=True)]
    return [
        indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]


def _compact(value: object) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False)


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_WIDTH else text[: PREVIEW_WIDTH - 1] + "…"
