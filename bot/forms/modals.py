"""A Block Kit modal generated from a pydantic model's JSON schema.

``bot.forms.layout.schema_layout`` reads the schema into input fields and headings; this module
turns that layout into a ``slack_sdk`` view, each field's element made by
``bot.forms.elements``, and checks it against Block Kit's limits (``bot.forms.blockkit``). Each input block has ``block_id = block_id_for(path)`` and
``action_id = "value"``. Failures raise ``bot.errors.ModalError`` or its
``UnsupportedField``, which names the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import to_jsonable_python
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from signoff.bot.errors import ModalError, UnsupportedField
from signoff.bot.forms.blockkit import VIEW_SIZE_LIMIT, check_view, view_size
from signoff.bot.forms.elements import input_block
from signoff.bot.forms.labels import clip
from signoff.bot.forms.layout import (
    ACTION_ID,
    MAX_BLOCKS,
    MAX_TEXT,
    Choice,
    FieldGroup,
    InputField,
    JSONSchema,
    block_id_for,
    schema_layout,
)
from signoff.bot.forms.mrkdwn import literal_mrkdwn, markdown_to_mrkdwn

#: Slack's limit on a view's ``private_metadata``, which the bot's forms may fill
MAX_METADATA = 3000

#: What starts an input's hint that shows an error (see ``build_input_view``'s ``errors``).
ERROR_MARK = "⚠️ "

__all__ = [
    "ACTION_ID",
    "ERROR_MARK",
    "Choice",
    "FieldGroup",
    "InputField",
    "JSONSchema",
    "ModalError",
    "UnsupportedField",
    "block_id_for",
    "build_input_view",
    "check_renderable",
    "schema_layout",
]


def check_renderable(
    schema: JSONSchema, *, description: str | None = None, context: bool = True
) -> None:
    """Checks that a model's JSON schema can be shown as a modal.

    Counts the blocks as they will be sent: one per input and nested-model heading, plus
    the context line, the description (at least one section; it gives way down to that
    when the inputs need the room) and the divider between them and the inputs. Measures
    the view too, with the longest title and ``private_metadata`` a form may carry, since
    Slack refuses one over ``VIEW_SIZE_LIMIT`` bytes whatever its parts.

    Args:
        schema: The model's JSON schema.
        description: The Markdown shown above the inputs, if any.
        context: Whether the modal has a context line (the bot's forms always do).

    Raises:
        UnsupportedField: Naming the first field that cannot be shown, and why; ``field`` is
            ``""`` when the model as a whole is the problem (too many blocks).
    """
    _renderable_layout(schema, description=description, context=context)
    try:
        # Built as it will be sent, so that what only Block Kit's rules refuse is caught
        # now, when the flow asks, and not when someone clicks.
        build_input_view(
            schema,
            title="x" * 24,
            description=description,
            context="check" if context else None,
            callback_id="check",
            private_metadata="x" * MAX_METADATA,
        )
    except UnsupportedField:
        raise
    except ModalError as exc:
        raise UnsupportedField("", str(exc)) from exc


def _renderable_layout(
    schema: JSONSchema, *, description: str | None, context: bool
) -> tuple[InputField | FieldGroup, ...]:
    layout = schema_layout(schema)
    around = int(context) + int(bool(description and description.strip()))
    needed = len(layout) + around + int(bool(around and layout))
    if needed > MAX_BLOCKS:
        extra = f" ({len(layout)} for the fields, {needed - len(layout)} around them)"
        raise UnsupportedField(
            "", f"it needs {needed} blocks{extra if around else ''}; a modal holds {MAX_BLOCKS}"
        )
    return layout


def build_input_view(
    schema: JSONSchema,
    *,
    initial: Mapping[str, Any] | None = None,
    title: str,
    description: str | None = None,
    context: str | None = None,
    callback_id: str,
    private_metadata: str,
    submit: str = "Submit",
    errors: Mapping[str, str] | None = None,
) -> View:
    """Builds the modal that asks a person for a model's fields.

    Args:
        schema: The input model's JSON schema.
        initial: Values to prefill, nested like the model (e.g. a rejected submission). They
            win over schema defaults; a value that does not fit its input is left out.
        title: Modal title; clipped to Slack's 24 characters.
        description: Markdown shown above the inputs.
        context: A short mrkdwn line (flow, run, deadline) shown in a context block.
        callback_id: The view's callback id.
        private_metadata: Opaque reference returned with ``view_submission``.
        submit: Label of the submit button; clipped to 24 characters.
        errors: Messages keyed by input ``block_id`` (as ``errors_for_view`` gives them),
            shown in place of the input's hint. A view sent with ``views.update`` cannot
            carry Slack's own inline errors, which only a synchronous response can.

    Returns:
        The modal, already validated by ``slack_sdk``.

    Raises:
        UnsupportedField: If the schema cannot be shown as a modal.
        ModalError: If the title or submit label is empty, or the view breaks a Block Kit rule.
    """
    layout = _renderable_layout(schema, description=description, context=bool(context or errors))
    if not title.strip() or not submit.strip():
        raise ModalError("a modal needs a non-empty title and submit label")
    prefill = to_jsonable_python(initial or {})  # accepts model_dump() in python mode too
    fields: list[Block] = []
    marked: list[str] = []
    for entry in layout:
        if isinstance(entry, FieldGroup):
            fields.append(HeaderBlock(text=clip(entry.title, 150)))
        else:
            block = input_block(entry, _initial_for(entry, prefill))
            error = errors.get(block.block_id or "") if errors else None
            if error:
                block.hint = PlainTextObject(text=clip(f"{ERROR_MARK}{error}", 2000))
                marked.append(block.label.text if block.label else block.block_id or "")
            fields.append(block)
    if marked:
        # The form comes back looking as it was sent, scrolled to its top: an error under an
        # input further down went unseen, as if Submit had done nothing.
        names = ", ".join(f"*{literal_mrkdwn(name)}*" for name in marked)
        note = f":warning: Not accepted: see the note under {names} below."
        context = f"{context}\n{note}" if context else note
    head: list[Block] = []
    if context:
        head.append(ContextBlock(elements=[MarkdownTextObject(text=clip(context, MAX_TEXT))]))
    # _renderable_layout made sure at least one section fits.
    budget = max(MAX_BLOCKS - len(fields) - len(head) - 1, 1)
    head.extend(_description_sections(description, budget) if description else [])
    if head and fields:
        head.append(DividerBlock())
    view = View(
        type="modal",
        callback_id=callback_id,
        title=clip(title, 24),
        submit=clip(submit, 24),
        blocks=[*head, *fields] or [SectionBlock(text="Nothing to fill in.")],
        private_metadata=private_metadata,
    )
    _check(view)
    return view


def _check(view: View) -> None:
    try:
        payload = view.to_dict()
    except SlackObjectFormationError as exc:
        raise ModalError(f"the modal breaks a Block Kit rule: {exc}") from exc
    if too_large := _too_large(payload):
        raise ModalError(too_large)
    # slack_sdk.models misses some limits Slack enforces (see bot.forms.blockkit).
    if problems := check_view(payload):
        raise ModalError("the modal breaks Block Kit rules: " + "; ".join(problems))


def _too_large(payload: Mapping[str, Any]) -> str | None:
    """Why Slack would refuse ``payload`` as too large, naming the field that takes most."""
    size = view_size(payload)
    if size <= VIEW_SIZE_LIMIT:
        return None
    inputs = [b for b in payload.get("blocks") or [] if b.get("type") == "input"]
    biggest = max(inputs, key=view_size, default=None)
    most = ""
    if biggest is not None:
        name = str(biggest.get("block_id", "")).removeprefix(block_id_for(""))
        most = f" (the largest field, {name!r}, takes {view_size(biggest):,})"
    return f"it is {size:,} bytes as sent to Slack, and a modal holds {VIEW_SIZE_LIMIT:,}{most}"


def _description_sections(description: str, budget: int) -> list[Block]:
    chunks = _split(markdown_to_mrkdwn(description), MAX_TEXT)
    if len(chunks) > budget:
        # The inputs are what the person must fill in, so the prose gives way.
        chunks = chunks[: max(budget, 0)]
        if chunks:
            chunks[-1] = clip(chunks[-1] + " …", MAX_TEXT)
    return [SectionBlock(text=MarkdownTextObject(text=chunk)) for chunk in chunks]


def _split(text: str, size: int) -> list[str]:
    chunks: list[str] = []
    while len(text) > size:
        # Break between paragraphs, else lines, else words, so formatting is rarely cut.
        cuts = (text.rfind(sep, size // 2, size) for sep in ("\n\n", "\n", " "))
        cut = next((c for c in cuts if c > 0), size)
        chunks.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n ")
    return [*chunks, text] if text.strip() else chunks


def _initial_for(entry: InputField, prefill: Any) -> Any:
    value: Any = prefill
    for key in entry.path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return entry.default
        value = value[key]
    return value
