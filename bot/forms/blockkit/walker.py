"""The walk over a view or a message that collects every broken Block Kit rule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from signoff.bot.forms.blockkit.rules import (
    ACCESSORY_ELEMENTS,
    ACTIONS_ELEMENTS,
    DATE,
    DATETIME_SECONDS,
    ID_ELEMENTS,
    INPUT_ELEMENT_TYPES,
    OPTION_ELEMENTS,
    PASSIVE_BLOCKS,
    TIME,
    VIEW_BLOCK_LIMIT,
    VIEW_SIZE_LIMIT,
    Obj,
    Surface,
    format_problem,
    view_size,
)


def _normalized(value: Any) -> Any:
    """Give plain_text objects Slack's default ``emoji: true`` so equal options compare equal."""
    if isinstance(value, Mapping):
        out = {key: _normalized(item) for key, item in value.items()}
        if out.get("type") == "plain_text":
            out.setdefault("emoji", True)
        return out
    if isinstance(value, list):
        return [_normalized(item) for item in value]
    return value


class Checker:
    """Walks one view or message and collects problems."""

    def __init__(self, surface: Surface) -> None:
        self.surface: Surface = surface
        self.problems: list[str] = []
        self._focus_seen = False

    def error(self, pointer: str, message: str) -> None:
        self.problems.append(format_problem(message, pointer))

    # -- primitives -------------------------------------------------------------------------

    def string(
        self, parent: Obj, key: str, ptr: str, limit: int, *, required: bool = False
    ) -> str | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.error(ptr, f"missing required field: {key}")
            return None
        if not isinstance(value, str):
            self.error(f"{ptr}/{key}", "must provide a string")
            return None
        if len(value) > limit:
            self.error(f"{ptr}/{key}", f"must be less than {limit + 1} characters")
        return value

    def boolean(self, parent: Obj, key: str, ptr: str) -> None:
        if key in parent and not isinstance(parent[key], bool):
            self.error(f"{ptr}/{key}", "must provide a boolean")

    def text(
        self,
        parent: Obj,
        key: str,
        ptr: str,
        limit: int,
        *,
        plain: bool = False,
        required: bool = False,
    ) -> None:
        obj = parent.get(key)
        if obj is None:
            if required:
                self.error(ptr, f"missing required field: {key}")
            return
        self.text_object(obj, f"{ptr}/{key}", limit, plain=plain)

    def text_object(self, obj: Any, ptr: str, limit: int, *, plain: bool = False) -> None:
        if not isinstance(obj, Mapping):
            self.error(ptr, "must be a text object")
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn"):
            self.error(f"{ptr}/type", "must be a valid enum value (plain_text or mrkdwn)")
        elif plain and kind != "plain_text":
            self.error(f"{ptr}/type", "must be plain_text, not mrkdwn")
        text = self.string(obj, "text", ptr, limit, required=True)
        if text == "":
            self.error(f"{ptr}/text", "must be more than 0 characters")

    def items(
        self, parent: Obj, key: str, ptr: str, low: int, high: int, *, required: bool = False
    ) -> list[Any] | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.error(ptr, f"missing required field: {key}")
            return None
        if not isinstance(value, list):
            self.error(f"{ptr}/{key}", "must provide an array")
            return None
        if len(value) < low:
            self.error(f"{ptr}/{key}", f"must provide at least {low} item(s)")
        if len(value) > high:
            self.error(f"{ptr}/{key}", f"no more than {high} items allowed")
        return value

    # -- views and blocks -------------------------------------------------------------------

    def view(self, view: Obj) -> None:
        ptr = "/view"
        raw_blocks = view.get("blocks")
        if self.surface == "modal":
            self.text(view, "title", ptr, 24, plain=True, required=True)
            self.text(view, "close", ptr, 24, plain=True)
            self.text(view, "submit", ptr, 24, plain=True)
            inputs = [
                i
                for i, block in enumerate(raw_blocks if isinstance(raw_blocks, list) else [])
                if isinstance(block, Mapping) and block.get("type") == "input"
            ]
            if "submit" not in view and inputs:
                # Slack's own (odd) pointer for this error, copied verbatim.
                self.error(
                    f"{ptr}/blocks/{inputs[0]}/input", "must define submit to use input block"
                )
        else:
            for key in ("title", "submit", "close"):
                if key in view:
                    self.error(f"{ptr}/{key}", f"{key} is not allowed in home views")
        self.string(view, "private_metadata", ptr, 3000)
        self.string(view, "callback_id", ptr, 255)
        self.string(view, "external_id", ptr, 255)
        for key in ("clear_on_close", "notify_on_close", "submit_disabled"):
            self.boolean(view, key, ptr)
        if raw_blocks is None:
            self.error(ptr, "missing required field: blocks")
        else:
            self.blocks(raw_blocks, f"{ptr}/blocks", VIEW_BLOCK_LIMIT, allow_empty=False)
        # Every part may be within its own limit and the whole still too large.
        if (size := view_size(view)) > VIEW_SIZE_LIMIT:
            self.error(ptr, f"must be no larger than {VIEW_SIZE_LIMIT} bytes, not {size}")

    def blocks(self, blocks: Any, ptr: str, limit: int, *, allow_empty: bool) -> None:
        if not isinstance(blocks, Sequence) or isinstance(blocks, str | bytes):
            self.error(ptr, "must provide an array")
            return
        if not blocks and not allow_empty:
            self.error(ptr, "must provide at least 1 item(s)")
        if len(blocks) > limit:
            self.error(ptr, f"no more than {limit} items allowed")
        seen: set[str] = set()
        where = "view" if self.surface != "message" else "message"
        for index, block in enumerate(blocks):
            block_ptr = f"{ptr}/{index}"
            if not isinstance(block, Mapping):
                self.error(block_ptr, "must be an object")
                continue
            block_id = self.string(block, "block_id", block_ptr, 255)
            if block_id is not None:
                if block_id in seen:
                    self.error(f"{block_ptr}/block_id", f"must be unique within the {where}")
                seen.add(block_id)
            self.block(block, block_ptr)

    def block(self, block: Obj, ptr: str) -> None:
        kind = block.get("type")
        if kind is None:
            self.error(ptr, "missing required field: type")
        elif kind == "section":
            self.text(block, "text", ptr, 3000)
            fields = self.items(block, "fields", ptr, 1, 10) or []
            for i, field in enumerate(fields):
                self.text_object(field, f"{ptr}/fields/{i}", 2000)
            if "text" not in block and "fields" not in block:
                self.error(ptr, "must provide either text or fields")
            if "accessory" in block:
                self.element(block["accessory"], f"{ptr}/accessory", ACCESSORY_ELEMENTS)
        elif kind == "header":
            self.text(block, "text", ptr, 150, plain=True, required=True)
        elif kind == "image":
            self.image(block, ptr)
            self.text(block, "title", ptr, 2000, plain=True)
        elif kind == "context":
            elements = self.items(block, "elements", ptr, 1, 10, required=True)
            for i, item in enumerate(elements or []):
                item_ptr = f"{ptr}/elements/{i}"
                if isinstance(item, Mapping) and item.get("type") == "image":
                    self.image(item, item_ptr)
                else:
                    self.text_object(item, item_ptr, 3000)
        elif kind == "actions":
            self.actions(block, ptr)
        elif kind == "input":
            self.input(block, ptr)
        elif kind == "markdown":
            self.string(block, "text", ptr, 12000, required=True)
        elif kind not in PASSIVE_BLOCKS:
            self.error(f"{ptr}/type", f"unsupported block type: {kind}")

    def image(self, obj: Obj, ptr: str) -> None:
        if "image_url" not in obj and "slack_file" not in obj:
            self.error(ptr, "missing required field: image_url")
        self.string(obj, "image_url", ptr, 3000)
        self.string(obj, "alt_text", ptr, 2000, required=True)

    def actions(self, block: Obj, ptr: str) -> None:
        elements = self.items(block, "elements", ptr, 1, 25, required=True)
        action_ids: set[str] = set()
        for i, element in enumerate(elements or []):
            element_ptr = f"{ptr}/elements/{i}"
            self.element(element, element_ptr, ACTIONS_ELEMENTS)
            action_id = element.get("action_id") if isinstance(element, Mapping) else None
            if isinstance(action_id, str):
                if action_id in action_ids:
                    self.error(f"{element_ptr}/action_id", "must be unique within the block")
                action_ids.add(action_id)

    def input(self, block: Obj, ptr: str) -> None:
        self.text(block, "label", ptr, 2000, plain=True, required=True)
        self.text(block, "hint", ptr, 2000, plain=True)
        self.boolean(block, "optional", ptr)
        self.boolean(block, "dispatch_action", ptr)
        element = block.get("element")
        if element is None:
            self.error(ptr, "missing required field: element")
            return
        self.element(element, f"{ptr}/element", INPUT_ELEMENT_TYPES)
        if isinstance(element, Mapping) and element.get("type") == "file_input":
            if block.get("dispatch_action"):
                self.error(f"{ptr}/dispatch_action", "unsupported type: file_input")
            if self.surface != "modal":
                self.error(f"{ptr}/element/type", "file_input is only supported in modals")

    # -- elements ---------------------------------------------------------------------------

    def element(self, el: Any, ptr: str, allowed: frozenset[str]) -> None:
        if not isinstance(el, Mapping):
            self.error(ptr, "must be an object")
            return
        kind = el.get("type")
        if kind not in allowed:
            self.error(ptr, "failed to match all allowed schemas")
            self.error(f"{ptr}/type", f"unsupported element type here: {kind}")
            return
        if kind == "image":
            self.image(el, ptr)
            return
        self.string(el, "action_id", ptr, 255)
        self.text(el, "placeholder", ptr, 150, plain=True)
        self.boolean(el, "focus_on_load", ptr)
        if el.get("focus_on_load") is True and self.surface != "message":
            if self._focus_seen:
                self.error(f"{ptr}/focus_on_load", "only one element per view can set focus")
            self._focus_seen = True
        if "confirm" in el:
            self.confirm(el["confirm"], f"{ptr}/confirm")
        if "max_selected_items" in el:
            self.integer(el, "max_selected_items", ptr, 1, 100)
        if kind in OPTION_ELEMENTS:
            high, mrkdwn, multi = OPTION_ELEMENTS[kind]
            self.initial_options(el, ptr, self.options(el, ptr, high, mrkdwn=mrkdwn), multi=multi)
        elif kind in ("external_select", "multi_external_select"):
            self.initial_options(el, ptr, None, multi=kind.startswith("multi"))
        elif kind in ID_ELEMENTS:
            self.ids(el, ptr, *ID_ELEMENTS[kind])
        elif kind in ("button", "workflow_button"):
            self.text(el, "text", ptr, 75, plain=True, required=True)
            self.string(el, "value", ptr, 2000)
            self.string(el, "url", ptr, 3000)
            if el.get("style") not in (None, "primary", "danger"):
                self.error(f"{ptr}/style", "must be a valid enum value (primary or danger)")
        elif kind == "overflow":
            if "option_groups" in el:
                self.error(f"{ptr}/option_groups", "overflow menus do not support option_groups")
            self.options({"options": el.get("options")}, ptr, 5)
        elif kind in ("plain_text_input", "email_text_input", "url_text_input"):
            self.text_input(el, ptr)
        elif kind == "number_input":
            self.number_input(el, ptr)
        else:
            self.pickers_and_files(el, ptr, kind)

    def confirm(self, confirm: Any, ptr: str) -> None:
        if not isinstance(confirm, Mapping):
            self.error(ptr, "must be an object")
            return
        self.text(confirm, "title", ptr, 100, plain=True, required=True)
        self.text(confirm, "text", ptr, 300, required=True)
        self.text(confirm, "confirm", ptr, 30, plain=True, required=True)
        self.text(confirm, "deny", ptr, 30, plain=True, required=True)

    def option(self, option: Any, ptr: str, *, mrkdwn: bool) -> None:
        if not isinstance(option, Mapping):
            self.error(ptr, "must be an object")
            return
        self.text(option, "text", ptr, 75, plain=not mrkdwn, required=True)
        self.string(option, "value", ptr, 150, required=True)
        self.text(option, "description", ptr, 75, plain=not mrkdwn)
        self.string(option, "url", ptr, 3000)

    def options(self, el: Obj, ptr: str, high: int, *, mrkdwn: bool = False) -> list[Any]:
        """Check ``options``/``option_groups`` and return every option, for initial matching."""
        if "option_groups" not in el:
            options = self.items(el, "options", ptr, 1, high, required=True) or []
            for i, option in enumerate(options):
                self.option(option, f"{ptr}/options/{i}", mrkdwn=mrkdwn)
            return options
        if "options" in el:
            self.error(ptr, "must provide either options or option_groups, not both")
        found: list[Any] = []
        for g, group in enumerate(self.items(el, "option_groups", ptr, 1, 100) or []):
            group_ptr = f"{ptr}/option_groups/{g}"
            if not isinstance(group, Mapping):
                self.error(group_ptr, "must be an object")
                continue
            self.text(group, "label", group_ptr, 75, plain=True, required=True)
            group_options = self.items(group, "options", group_ptr, 1, 100, required=True) or []
            for i, option in enumerate(group_options):
                self.option(option, f"{group_ptr}/options/{i}", mrkdwn=mrkdwn)
            found.extend(group_options)
        return found

    def initial_options(self, el: Obj, ptr: str, options: list[Any] | None, *, multi: bool) -> None:
        """Initial options must match an option exactly (``options=None``: just check shape)."""
        key = "initial_options" if multi else "initial_option"
        if key not in el:
            return
        if multi and not isinstance(el[key], list):
            self.error(f"{ptr}/{key}", "must provide an array")
            return
        initial = list(enumerate(el[key])) if multi else [(None, el[key])]
        known = [_normalized(option) for option in options or []]
        for index, item in initial:
            item_ptr = f"{ptr}/{key}" if index is None else f"{ptr}/{key}/{index}"
            if options is None:
                self.option(item, item_ptr, mrkdwn=False)
            elif _normalized(item) not in known:
                self.error(item_ptr, "must exactly match one of the provided options")

    def ids(self, el: Obj, ptr: str, single: str, multi: str) -> None:
        self.string(el, single, ptr, 255)
        values = el.get(multi)
        if values is not None and (
            not isinstance(values, list) or not all(isinstance(v, str) for v in values)
        ):
            self.error(f"{ptr}/{multi}", "must provide an array of strings")
        include = (
            el.get("filter", {}).get("include", []) if isinstance(el.get("filter"), Mapping) else []
        )
        if not isinstance(include, list) or not set(include) <= {"im", "mpim", "private", "public"}:
            self.error(f"{ptr}/filter/include", "must be im, mpim, private or public")

    def integer(self, el: Obj, key: str, ptr: str, low: int, high: int) -> int | None:
        value = el.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self.error(f"{ptr}/{key}", "must provide an integer")
            return None
        if not low <= value <= high:
            self.error(f"{ptr}/{key}", f"must be between {low} and {high}")
        return value

    def text_input(self, el: Obj, ptr: str) -> None:
        low = self.integer(el, "min_length", ptr, 0, 3000)
        high = self.integer(el, "max_length", ptr, 1, 3000)
        if low is not None and high is not None and low > high:
            self.error(f"{ptr}/min_length", "must be less than or equal to max_length")
        initial = self.string(el, "initial_value", ptr, 3000)
        if initial is not None and high is not None and len(initial) > high:
            self.error(f"{ptr}/initial_value", "must not be longer than max_length")
        self.boolean(el, "multiline", ptr)

    def number(self, el: Obj, key: str, ptr: str) -> Decimal | None:
        value = el.get(key)
        if value is None:
            return None
        try:
            number = Decimal(value) if isinstance(value, str) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            self.error(f"{ptr}/{key}", "must provide a string containing a number")
            return None
        return number

    def number_input(self, el: Obj, ptr: str) -> None:
        decimals = el.get("is_decimal_allowed")
        if decimals is None:
            self.error(ptr, "missing required field: is_decimal_allowed")
        self.boolean(el, "is_decimal_allowed", ptr)
        low = self.number(el, "min_value", ptr)
        high = self.number(el, "max_value", ptr)
        initial = self.number(el, "initial_value", ptr)
        if low is not None and high is not None and low > high:
            self.error(f"{ptr}/min_value", "must be less than or equal to max_value")
        if initial is None:
            return
        if (low is not None and initial < low) or (high is not None and initial > high):
            self.error(f"{ptr}/initial_value", "must be between min_value and max_value")
        if decimals is False and initial != initial.to_integral_value():
            self.error(
                f"{ptr}/initial_value", "must be an integer when is_decimal_allowed is false"
            )

    def pickers_and_files(self, el: Obj, ptr: str, kind: str) -> None:
        if kind == "datepicker":
            value = self.string(el, "initial_date", ptr, 255)
            if value is not None and not _is_date(value):
                self.error(f"{ptr}/initial_date", "must be a valid date in the format YYYY-MM-DD")
        elif kind == "timepicker":
            value = self.string(el, "initial_time", ptr, 255)
            if value is not None and TIME.fullmatch(value) is None:
                self.error(f"{ptr}/initial_time", "must be a valid time in the format HH:mm")
            self.string(el, "timezone", ptr, 255)
        elif kind == "datetimepicker" and el.get("initial_date_time") is not None:
            value = el["initial_date_time"]
            if not isinstance(value, int) or isinstance(value, bool):
                self.error(f"{ptr}/initial_date_time", "must provide an integer (UNIX seconds)")
            elif value not in DATETIME_SECONDS:
                self.error(f"{ptr}/initial_date_time", "must be a 10-digit UNIX time in seconds")
        elif kind == "rich_text_input" and el.get("initial_value") is not None:
            initial = el["initial_value"]
            if not isinstance(initial, Mapping) or initial.get("type") != "rich_text":
                self.error(f"{ptr}/initial_value", "must be a rich_text block")
        elif kind == "file_input":
            self.integer(el, "max_files", ptr, 1, 10)
            types = el.get("filetypes")
            if types is not None and (
                not isinstance(types, list) or not all(isinstance(t, str) for t in types)
            ):
                self.error(f"{ptr}/filetypes", "must provide an array of strings")


def _is_date(value: str) -> bool:
    if DATE.fullmatch(value) is None:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True
