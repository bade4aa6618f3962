"""Markdown (as flow authors write it) to Slack mrkdwn.

Slack's mrkdwn is not Markdown: bold is ``*x*``, links are ``<url|text>``, there are no
headings or real lists, and ``&``, ``<`` and ``>`` must be escaped as HTML entities. We parse
with markdown-it-py (CommonMark plus strikethrough, raw HTML off) and walk the syntax tree, so
the output follows the structure the author meant rather than a pile of regex rewrites.

mrkdwn has no escape character either, so a ``*``, ``_``, ``~`` or ````` meant as itself (a
flow's name, ``\\*`` in Markdown) goes out as the fallback text of a date token whose format
is not a date (``<!date^0^{_}|*>``): Slack shows a fallback as written, never as formatting.
Known gap: emphasis inside a word (``foo**bar**``) is not rendered by Slack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

__all__ = [
    "clip_mrkdwn",
    "escape_clipped",
    "escape_mrkdwn",
    "literal_clipped",
    "literal_mrkdwn",
    "markdown_to_mrkdwn",
    "unescape_mrkdwn",
]

# Raw HTML is off so that "<b>" in a description is shown, not silently dropped.
_PARSER = MarkdownIt("commonmark", {"html": False}).enable("strikethrough")

# Mentions written in Slack's own syntax are kept as they are, because escaping them would
# show "<@U123>" literally instead of the person's name.
_MENTION = re.compile(
    r"<(?:@[UW][A-Z0-9]+|#[CG][A-Z0-9]+(?:\|[^<>|]*)?|!subteam\^S[A-Z0-9]+(?:\|[^<>|]*)?)>"
)
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_RULE = "―" * 10
#: what Slack reads as bold, italic, strike and code; ``:`` too in a name, as in ``:x:``
_FORMATTING = re.compile(r"[*_~`]")
_FORMATTING_OR_EMOJI = re.compile(r"[*_~`:]")
#: a ``<...>`` token cut off by a length limit
_OPEN_TOKEN = re.compile(r"<[^<>]*$")


def escape_mrkdwn(text: str) -> str:
    """Escapes the three characters Slack treats as control characters in mrkdwn.

    Args:
        text: Plain text.

    Returns:
        The text with ``&``, ``<`` and ``>`` replaced by HTML entities.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def literal_mrkdwn(text: str, *, emoji: bool = False) -> str:
    """``text`` as mrkdwn that Slack shows exactly as written: ``&``, ``<`` and ``>``
    escaped, and each formatting character in a date token's fallback, which Slack shows
    as it is (so ``*`` in a flow's name neither ends the bold around it nor starts one).

    Args:
        text: Plain text: a name, a title, a field's name.
        emoji: Whether ``:code:`` in it may still show as an emoji (text an author wrote,
            as in a description); a name's colons are kept as colons.

    Returns:
        The mrkdwn, to put inside formatting (``*{...}*``) or beside it.
    """
    special = _FORMATTING if emoji else _FORMATTING_OR_EMOJI
    return special.sub(lambda m: f"<!date^0^{{_}}|{m.group(0)}>", escape_mrkdwn(text))


def escape_clipped(text: str, limit: int) -> str:
    """``escape_mrkdwn(text)`` in at most ``limit`` characters: cut, with an ellipsis, where
    the escaped text would grow past it (each ``&``, ``<`` and ``>`` takes four or five), and
    never in the middle of an entity.

    Args:
        text: Plain text.
        limit: The most characters the escaped text may take (at least 1).

    Returns:
        The escaped text, whole if it fits.
    """
    return _clipped(text, limit, escape_mrkdwn)


def literal_clipped(text: str, limit: int, *, emoji: bool = False) -> str:
    """``literal_mrkdwn(text, emoji=emoji)`` in at most ``limit`` characters, cut as
    ``escape_clipped`` cuts: with an ellipsis, never inside an entity or a date token.

    Args:
        text: Plain text.
        limit: The most characters the mrkdwn may take (at least 1).
        emoji: As for ``literal_mrkdwn``.

    Returns:
        The mrkdwn, whole if it fits.
    """
    return _clipped(text, limit, partial(literal_mrkdwn, emoji=emoji))


def _clipped(text: str, limit: int, escape: Callable[[str], str]) -> str:
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    kept, room = [], limit - 1  # one for the ellipsis
    for char in text:
        written = escape(char)
        if len(written) > room:
            break
        kept.append(written)
        room -= len(written)
    return "".join(kept).rstrip() + "…"


def clip_mrkdwn(text: str, limit: int) -> str:
    """mrkdwn cut to ``limit`` characters (a section's 3,000) without leaving half a token
    (a link, a mention, a date token carrying a ``*``) at the end.

    Args:
        text: mrkdwn.
        limit: The most characters it may take.

    Returns:
        The text, whole if it fits.
    """
    if len(text) <= limit:
        return text
    return _OPEN_TOKEN.sub("", text[:limit])


def unescape_mrkdwn(text: str) -> str:
    """Undoes ``escape_mrkdwn``: text as Slack sends it (a slash command's ``text``) back to
    what the person typed.

    Args:
        text: Text with ``&amp;``, ``&lt;`` and ``&gt;`` in it.

    Returns:
        The text with those three entities replaced by ``&``, ``<`` and ``>``.
    """
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def markdown_to_mrkdwn(text: str) -> str:
    """Converts Markdown to Slack mrkdwn.

    Headings become bold lines, lists get ``•`` or ``1.`` markers with indented nesting,
    block quotes get ``>`` on every line and fenced or indented code becomes a triple-backtick
    block. Soft line breaks become spaces, as in any Markdown renderer.

    Args:
        text: CommonMark text, e.g. the ``description`` given to ``with_initial_data``.

    Returns:
        The same content as mrkdwn, without leading or trailing blank lines.
    """
    root = SyntaxTreeNode(_PARSER.parse(text))
    return _blocks(root.children, tight=False).strip("\n")


def _blocks(nodes: Sequence[SyntaxTreeNode], *, tight: bool) -> str:
    rendered = (_block(node) for node in nodes)
    return ("\n" if tight else "\n\n").join(part for part in rendered if part)


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "paragraph":
        return _inline(node.children[0].children) if node.children else ""
    if kind == "heading":
        content = _inline(node.children[0].children, bold=True) if node.children else ""
        return f"*{content}*" if content.strip() else ""
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind == "blockquote":
        content = _blocks(node.children, tight=False)
        return "\n".join(f"> {line}" if line else ">" for line in content.split("\n"))
    if kind in ("fence", "code_block"):
        code = node.content if node.content.endswith("\n") else node.content + "\n"
        return f"```\n{escape_mrkdwn(code)}```"
    if kind == "hr":
        return _RULE
    if kind == "inline":
        return _inline(node.children)
    # Anything a future parser rule adds still shows its text rather than vanishing.
    if node.children:
        return _blocks(node.children, tight=False)
    return escape_mrkdwn(node.content)


def _list(node: SyntaxTreeNode) -> str:
    ordered = node.type == "ordered_list"
    start = int(node.attrs.get("start", 1)) if ordered else 1
    items: list[str] = []
    # markdown-it hides the paragraphs of tight lists; loose lists keep a blank line between
    # items, as the author wrote them.
    tight = all(
        child.hidden
        for item in node.children
        for child in item.children
        if child.type == "paragraph"
    )
    for number, item in enumerate(node.children, start=start):
        marker = f"{number}." if ordered else "•"
        body = _blocks(item.children, tight=tight)
        indent = " " * (len(marker) + 1)
        first, *rest = body.split("\n") if body else [""]
        lines = [f"{marker} {first}".rstrip()]
        lines.extend(f"{indent}{line}" if line else "" for line in rest)
        items.append("\n".join(lines))
    return ("\n" if tight else "\n\n").join(items)


def _inline(nodes: Sequence[SyntaxTreeNode], *, bold: bool = False, in_link: bool = False) -> str:
    return "".join(_span(node, bold=bold, in_link=in_link) for node in nodes)


def _span(node: SyntaxTreeNode, *, bold: bool, in_link: bool) -> str:
    kind = node.type
    if kind == "text":
        return _text(node.content, in_link=in_link)
    if kind == "softbreak":
        return " "
    if kind == "hardbreak":
        return "\n"
    if kind == "code_inline":
        return f"`{escape_mrkdwn(node.content)}`"
    if kind == "strong":
        inner = _inline(node.children, bold=True, in_link=in_link)
        # Slack has no nested bold, and "**" would show up literally.
        return inner if bold else f"*{inner}*"
    if kind == "em":
        return f"_{_inline(node.children, bold=bold, in_link=in_link)}_"
    if kind == "s":
        return f"~{_inline(node.children, bold=bold, in_link=in_link)}~"
    if kind in ("link", "image"):
        target = str(node.attrs.get("href" if kind == "link" else "src", ""))
        linked = bool(_HAS_SCHEME.match(target))
        return _link(target, _inline(node.children, bold=bold, in_link=in_link or linked))
    if node.children:
        return _inline(node.children, bold=bold, in_link=in_link)
    return _text(node.content, in_link=in_link)


def _link(target: str, label: str) -> str:
    # Slack cannot resolve relative links; showing just the label is better than a dead link.
    if not _HAS_SCHEME.match(target):
        return label
    url = escape_mrkdwn(target).replace("|", "%7C")
    if not label or label == url:
        return f"<{url}>"
    return f"<{url}|{label}>"


def _text(text: str, *, in_link: bool = False) -> str:
    # Text is what the author meant as itself: its "*" or "_" (written "\\*") is not
    # formatting. A link's label cannot hold a date token, so there it is only escaped.
    written = escape_mrkdwn if in_link else partial(literal_mrkdwn, emoji=True)
    parts: list[str] = []
    position = 0
    for mention in _MENTION.finditer(text):
        parts.append(written(text[position : mention.start()]))
        parts.append(mention.group(0))
        position = mention.end()
    parts.append(written(text[position:]))
    return "".join(parts)
