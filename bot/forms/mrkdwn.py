"""Markdown (as flow authors write it) to Slack mrkdwn.

Slack's mrkdwn is not Markdown: bold is ``*x*``, links are ``<url|text>``, there are no
headings or real lists, and ``&``, ``<`` and ``>`` must be escaped as HTML entities. We parse
with markdown-it-py (CommonMark plus strikethrough, raw HTML off) and walk the syntax tree, so
the output follows the structure the author meant rather than a pile of regex rewrites.

Known gaps, because mrkdwn has no escape character: a literal ``*``, ``_``, ``~`` or `````
in the source (for instance ``\\*``) may still be read as formatting by Slack, and emphasis
inside a word (``foo**bar**``) is not rendered by Slack.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

__all__ = ["escape_clipped", "escape_mrkdwn", "markdown_to_mrkdwn", "unescape_mrkdwn"]

# Raw HTML is off so that "<b>" in a description is shown, not silently dropped.
_PARSER = MarkdownIt("commonmark", {"html": False}).enable("strikethrough")

# Mentions written in Slack's own syntax are kept as they are, because escaping them would
# show "<@U123>" literally instead of the person's name.
_MENTION = re.compile(
    r"<(?:@[UW][A-Z0-9]+|#[CG][A-Z0-9]+(?:\|[^<>|]*)?|!subteam\^S[A-Z0-9]+(?:\|[^<>|]*)?)>"
)
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_RULE = "―" * 10


def escape_mrkdwn(text: str) -> str:
    """Escapes the three characters Slack treats as control characters in mrkdwn.

    Args:
        text: Plain text.

    Returns:
        The text with ``&``, ``<`` and ``>`` replaced by HTML entities.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
    escaped = escape_mrkdwn(text)
    if len(escaped) <= limit:
        return escaped
    kept, room = [], limit - 1  # one for the ellipsis
    for char in text:
        written = escape_mrkdwn(char)
        if len(written) > room:
            break
        kept.append(written)
        room -= len(written)
    return "".join(kept).rstrip() + "…"


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


def _inline(nodes: Sequence[SyntaxTreeNode], *, bold: bool = False) -> str:
    return "".join(_span(node, bold=bold) for node in nodes)


def _span(node: SyntaxTreeNode, *, bold: bool) -> str:
    kind = node.type
    if kind == "text":
        return _text(node.content)
    if kind == "softbreak":
        return " "
    if kind == "hardbreak":
        return "\n"
    if kind == "code_inline":
        return f"`{escape_mrkdwn(node.content)}`"
    if kind == "strong":
        inner = _inline(node.children, bold=True)
        # Slack has no nested bold, and "**" would show up literally.
        return inner if bold else f"*{inner}*"
    if kind == "em":
        return f"_{_inline(node.children, bold=bold)}_"
    if kind == "s":
        return f"~{_inline(node.children, bold=bold)}~"
    if kind in ("link", "image"):
        target = str(node.attrs.get("href" if kind == "link" else "src", ""))
        return _link(target, _inline(node.children, bold=bold))
    return _inline(node.children, bold=bold) if node.children else _text(node.content)


def _link(target: str, label: str) -> str:
    # Slack cannot resolve relative links; showing just the label is better than a dead link.
    if not _HAS_SCHEME.match(target):
        return label
    url = escape_mrkdwn(target).replace("|", "%7C")
    if not label or label == url:
        return f"<{url}>"
    return f"<{url}|{label}>"


def _text(text: str) -> str:
    parts: list[str] = []
    position = 0
    for mention in _MENTION.finditer(text):
        parts.append(escape_mrkdwn(text[position : mention.start()]))
        parts.append(mention.group(0))
        position = mention.end()
    parts.append(escape_mrkdwn(text[position:]))
    return "".join(parts)
