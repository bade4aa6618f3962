"""What ``signoff demo --flows`` does with each flow: parameters and answers, checked first.

The answers file (``--answers``) maps flow names to either a list of answers or
``{"parameters": {...}, "answers": [...], "as": "bob"}``. An answer is the form's values,
or ``{"as": "bob", "input": {...}}`` to have someone other than the entry's person (default
alice) give it. ``--param name=value`` sets a parameter of every flow that takes ``name``,
over the file's. Every problem names the file (or the option) it is in; keys the demo does
not use are reported as ignored, never silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click

from signoff.bot.errors import JsonTooDeep
from signoff.bot.forms.json_text import read_json
from signoff.bot.forms.parameters import parameter_value
from signoff.bot.sandbox.workspace import DEFAULT_USERS

__all__ = ["Answer", "Plan", "load_plans", "read_answer", "read_answers_file"]

#: who answers when the file does not say
DEFAULT_RESPONDER = "alice"
_ENTRY_KEYS = ("parameters", "answers", "as")
_USERS = tuple(user.name for user in DEFAULT_USERS)


@dataclass(frozen=True)
class Answer:
    """One submission: the form's values and the sandbox user who gives them."""

    values: dict[str, Any]
    user: str = DEFAULT_RESPONDER


@dataclass
class Plan:
    """A flow's parameters, and its answers (None: ask at the prompt)."""

    parameters: dict[str, Any] = field(default_factory=dict)
    answers: list[Answer] | None = None
    user: str = DEFAULT_RESPONDER


def _user(value: object, where: str) -> str:
    if not isinstance(value, str) or value not in _USERS:
        raise click.ClickException(
            f"{where}: 'as' must be one of the sandbox's users ({', '.join(_USERS)}), "
            f"got {json.dumps(value)}"
        )
    return value


def _answer(value: object, default_user: str, where: str) -> Answer:
    if isinstance(value, dict) and set(value) == {"as", "input"}:
        if not isinstance(value["input"], dict):
            raise click.ClickException(f"{where}: 'input' must be a JSON object of form values")
        return Answer(dict(value["input"]), _user(value["as"], where))
    if not isinstance(value, dict):
        raise click.ClickException(
            f"{where}: an answer is a JSON object of form values, got {json.dumps(value)[:80]}"
        )
    return Answer(dict(value), default_user)


def _entry(name: str, value: object, source: str) -> Plan:
    where = f"{source}: {name}"
    if isinstance(value, list):
        return Plan(
            answers=[_answer(a, DEFAULT_RESPONDER, f"{where}[{i}]") for i, a in enumerate(value)]
        )
    if not isinstance(value, dict):
        raise click.ClickException(
            f"{where}: expected a list of answers or an object with 'parameters', "
            f"'answers' and 'as', got {json.dumps(value)[:80]}"
        )
    for key in value:
        if key not in _ENTRY_KEYS:
            click.secho(
                f"warning: {where}: ignored key {key!r} (the demo reads {', '.join(_ENTRY_KEYS)})",
                fg="yellow",
                err=True,
            )
    parameters = value.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise click.ClickException(f"{where}: 'parameters' must be a JSON object")
    user = _user(value["as"], where) if "as" in value else DEFAULT_RESPONDER
    answers = value.get("answers")
    if answers is not None and not isinstance(answers, list):
        raise click.ClickException(f"{where}: 'answers' must be a list of answers")
    return Plan(
        dict(parameters),
        None
        if answers is None
        else [_answer(a, user, f"{where}.answers[{i}]") for i, a in enumerate(answers)],
        user,
    )


def read_answers_file(path: str) -> object:
    """The JSON in the answers file at ``path``.

    Raises:
        click.ClickException: It cannot be read, is not UTF-8, is not JSON, or is JSON
            ``_strict_json`` refuses (named).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read it: {exc.strerror}") from None
    try:
        return _strict_json(text)
    except json.JSONDecodeError as exc:
        raise click.ClickException(
            f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


def _strict_json(text: str) -> Any:
    """``text`` read as JSON as ``signoff runs resume --input`` reads it: nesting past
    ``MAX_NESTING`` levels, a name given twice in one object, Python's ``NaN`` and
    ``Infinity``, and text holding a lone surrogate (an escape such as ``"\\ud800"``, half
    of a character, which no form sends and the engine refuses) are each refused by name,
    not sent to the bot to fail there, unexplained.

    Raises:
        ValueError: what is wrong (``json.JSONDecodeError`` when it is not JSON at all).
    """
    value = read_json(text, object_pairs_hook=_names_once, parse_constant=_not_a_number)
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "a text holds a lone surrogate (an escape such as \\ud800, half of a character)"
        ) from None
    return value


def _names_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            raise ValueError(f"the name {name!r} is given twice in one object")
        fields[name] = value
    return fields


def _not_a_number(word: str) -> NoReturn:
    raise ValueError(f"{word} is not a JSON number")


def load_plans(
    path: str | None,
    flows: Mapping[str, Sequence[str]],
    params: Mapping[str, str],
    schemas: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> dict[str, Plan]:
    """Each flow's plan from the answers file and ``--param``.

    Args:
        path: The answers file, or None.
        flows: Flow name -> the names of its parameters.
        params: ``--param`` texts, read for each flow that takes them as its parameter's
            type takes text (``version=3`` stays "3" for a ``str``; ``count=3`` is 3).
        schemas: Flow name -> its parameters JSON schema (None, or missing: every value
            is read as JSON where it parses).

    Raises:
        click.ClickException: The file is not JSON or has the wrong shape (the message
            names the file and the entry), or a ``--param`` no flow takes or that is JSON
            nested too deeply.
    """
    data: object = {}
    if path is not None:
        data = read_answers_file(path)
        if not isinstance(data, dict):
            raise click.ClickException(
                f'{path}: expected a JSON object of flow names, like {{"my-flow": [...]}}'
            )
    plans = {name: Plan() for name in flows}
    for name, value in data.items() if isinstance(data, dict) else ():
        if name not in flows:
            click.secho(
                f"warning: {path}: no flow named {name!r} (flows: {', '.join(flows)}); "
                "its entry is ignored",
                fg="yellow",
                err=True,
            )
            continue
        plans[name] = _entry(name, value, str(path))
    for key, value in params.items():
        takers = [name for name, names in flows.items() if key in names]
        if not takers:
            taken = "; ".join(f"{n}: {', '.join(p) or 'none'}" for n, p in flows.items())
            raise click.ClickException(
                f"--param {key}: no flow takes a parameter {key!r} ({taken})"
            )
        for name in takers:
            try:
                read = parameter_value((schemas or {}).get(name), key, value)
            except JsonTooDeep as exc:
                raise click.ClickException(f"--param {key}: {exc}") from exc
            plans[name].parameters[key] = read
    return plans


def read_answer(typed: str, user: str = DEFAULT_RESPONDER) -> Answer:
    """An answer typed at the prompt: a JSON object, given by ``user``, or by the sandbox
    user whose name comes first (``bob {"approve": true}``), for a pause only some may
    answer.

    Raises:
        ValueError: with what is wrong, to show before asking again.
    """
    name, _, rest = typed.strip().partition(" ")
    if name in _USERS and rest.strip():
        user, typed = name, rest
    elif name.isidentifier() and name not in ("true", "false", "null") and rest.strip():
        # "dave {...}" was reported as "not valid JSON", which hid the misspelt name
        raise ValueError(f"no sandbox user {name!r}; answer as one of {', '.join(_USERS)}")
    try:
        value = _strict_json(typed)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(value, dict):
        raise ValueError(
            'an answer is a JSON object of form values, like {"approve": true}, '
            f'or one given as another user, like bob {{"approve": true}} ({", ".join(_USERS)})'
        )
    return Answer(value, user)
