"""Answering a generated modal as a person would, in the shapes Slack sends back.

The tests of the form generator and of submissions share these: build a model's view,
fill in ``view.state.values`` the way Slack would after someone answered, and read it
back (``roundtrip``).
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel

from signoff.bot.forms.modals import (
    block_id_for,
    build_input_view,
)
from signoff.bot.forms.submissions import parse_submission

KEEP = object()
"""An answer meaning "the person did not touch this input" (Slack sends the prefill)."""


def slack_state(view: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """Builds ``view.state.values`` in Slack's shapes, as if a person had answered.

    ``answers`` maps field paths to what the person did: typed text, the *visible text* of
    the option(s) they picked, a date, a time, epoch seconds, user/channel ids, or None to
    clear the input. Fields not in ``answers`` keep their prefilled value, as in Slack.
    Required inputs left empty fail here, because Slack would not let the modal submit.
    """
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        path = block["block_id"].removeprefix("field:")
        state = _element_state(element, answers.get(path, KEEP))
        empty = all(v in (None, "", []) for k, v in state.items() if k != "type")
        assert not (empty and not block.get("optional")), f"Slack requires {path!r}"
        values[block["block_id"]] = {element["action_id"]: state}
    return json.loads(json.dumps(values))  # exactly what a JSON payload can carry


def _element_state(element: dict[str, Any], answer: Any) -> dict[str, Any]:
    kind = element["type"]
    keep = answer is KEEP

    def pick(text: str) -> dict[str, Any]:
        found = [o for o in element["options"] if o["text"]["text"] == text]
        assert found, f"no option {text!r} in {element['options']}"
        return found[0]

    if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
        return {"type": kind, "value": element.get("initial_value") if keep else answer}
    if kind in ("radio_buttons", "static_select"):
        chosen = element.get("initial_option") if keep else answer and pick(answer)
        return {"type": kind, "selected_option": chosen}
    if kind in ("checkboxes", "multi_static_select"):
        chosen = element.get("initial_options", []) if keep else [pick(t) for t in answer or []]
        return {"type": kind, "selected_options": chosen}
    simple = {
        "datepicker": ("selected_date", "initial_date"),
        "timepicker": ("selected_time", "initial_time"),
        "datetimepicker": ("selected_date_time", "initial_date_time"),
        "users_select": ("selected_user", "initial_user"),
        "conversations_select": ("selected_conversation", "initial_conversation"),
        "multi_users_select": ("selected_users", "initial_users"),
        "multi_conversations_select": ("selected_conversations", "initial_conversations"),
    }
    state_key, initial_key = simple[kind]
    empty: Any = [] if kind.startswith("multi") else None
    value = element.get(initial_key, empty) if keep else (answer if answer is not None else empty)
    return {"type": kind, state_key: value}


def view_for(model: type[BaseModel], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("title", "Input needed")
    view = build_input_view(
        model.model_json_schema(), callback_id="run_input", private_metadata="r42", **kwargs
    )
    return view.to_dict()  # slack_sdk validation runs here


def element(view: dict[str, Any], path: str) -> dict[str, Any]:
    return input_block(view, path)["element"]


def input_block(view: dict[str, Any], path: str) -> dict[str, Any]:
    blocks = [b for b in view["blocks"] if b.get("block_id") == block_id_for(path)]
    assert len(blocks) == 1, f"no input for {path!r}"
    return blocks[0]


def roundtrip(
    model: type[BaseModel], answers: dict[str, Any], initial: dict[str, Any] | None = None
) -> Any:
    """Answers the model's modal and returns the validated model instance."""
    schema = model.model_json_schema()
    view = view_for(model, initial=initial)
    data, errors = parse_submission(schema, slack_state(view, answers))
    assert errors == {}
    Draft202012Validator(schema).validate(data)
    return model.model_validate(data)
