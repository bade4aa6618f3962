"""Slack ``mrkdwn`` as safe HTML: bold, italic, strike, code, quotes, links and mentions.

Slack's own rules, in brief: ``*bold*``, ``_italic_``, ``~strike~``, ```` `code` ````, fenced
```` ``` ```` blocks, ``>`` quotes, and ``<...>`` tokens for links (``<url|label>``), mentions
(``<@U...>``, ``<#C...>``, ``<!subteam^S...>``, ``<!here>``) and dates
(``<!date^ts^format|fallback>``, shown by their fallback). The text arrives escaped the way
Slack escapes it (``&amp; &lt; &gt;``); everything is HTML-escaped again before it is shown.

    >>> str(to_html("*Deploy* <@U0BOB>?", {"U0BOB": "bob"}))
    '<b>Deploy</b> <span class="mention">@bob</span>?'
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from markupsafe import Markup, escape

__all__ = ["EMOJI", "plain_html", "to_html"]

_FENCE = re.compile(r"```(.*?)```", re.DOTALL)
_CODE = re.compile(r"`([^`\n]+)`")
#: a NUL stands for a code span or token already drawn (``_inline``), never inside a token
_TOKEN = re.compile(r"<([^<>\n\x00]+)>")
_DATE = re.compile(r"<(!date\^[^<>\n\x00]+)>")
_STYLES = (
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), "b"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), "i"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])"), "s"),
)
_SAFE_SCHEMES = ("http://", "https://", "mailto:")
_EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")
#: Shortcodes Slack draws as emoji; the ones Signoff's messages use and a few common ones.
#: Others stay as their ``:code:`` text.
EMOJI = {
    "warning": "⚠️", "x": "❌", "white_check_mark": "✅", "heavy_check_mark": "✔️",
    "raised_hand": "✋", "no_entry_sign": "🚫", "no_entry": "⛔", "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳", "boom": "💥", "bell": "🔔", "arrow_forward": "▶️",
    "alarm_clock": "⏰", "rocket": "🚀", "tada": "🎉", "eyes": "👀", "lock": "🔒",
    "memo": "📝", "information_source": "ℹ️", "question": "❓", "thumbsup": "👍", "+1": "👍",
    "thumbsdown": "👎", "-1": "👎", "stopwatch": "⏱️", "calendar": "📅", "fire": "🔥",
}  # fmt: skip


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _token(body: str, names: Mapping[str, str]) -> Markup:
    ref, _, label = body.partition("|")
    label = _unescape(label)
    if ref.startswith("@"):
        return Markup('<span class="mention">@{}</span>').format(
            label or names.get(ref[1:], ref[1:])
        )
    if ref.startswith("#"):
        name = label or names.get(ref[1:], ref[1:])
        return Markup('<span class="mention channel">#{}</span>').format(name)
    if ref.startswith("!subteam^"):
        group = ref.removeprefix("!subteam^")
        return Markup('<span class="mention">@{}</span>').format(
            label.lstrip("@") or names.get(group, group)
        )
    if ref.startswith("!date^"):
        return Markup('<time title="{}">{}</time>').format(ref, label or ref)
    if ref.startswith("!"):
        return Markup('<span class="mention here">@{}</span>').format(ref[1:])
    url = _unescape(ref)
    if not url.startswith(_SAFE_SCHEMES):
        # Anything else (javascript:, data:) is shown, never made clickable.
        return escape(label or url)
    return Markup('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>').format(
        url, label or url
    )


def _inline(text: str, names: Mapping[str, str], tokens: list[Markup]) -> str:
    """Escaped HTML for text whose code spans are in ``tokens`` already: links and mentions,
    then the bold/italic/strike marks, which may wrap a code span (``*`/runs`*``)."""

    def stash(match: re.Match[str]) -> str:
        tokens.append(_token(match.group(1), names))
        return f"\x00{len(tokens) - 1}\x00"

    html = str(escape(_unescape(_TOKEN.sub(stash, text))))
    for pattern, tag in _STYLES:
        html = pattern.sub(rf"<{tag}>\1</{tag}>", html)
    html = _EMOJI_CODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), html)
    return re.sub(r"\x00(\d+)\x00", lambda m: str(tokens[int(m.group(1))]), html)


def _paragraph(text: str, names: Mapping[str, str]) -> str:
    # Code spans first, set aside as placeholders: nothing inside one is styled, and a
    # style around one still applies, as Slack draws *`/runs`* in bold.
    tokens: list[Markup] = []

    def stash(match: re.Match[str]) -> str:
        tokens.append(Markup("<code>{}</code>").format(_unescape(match.group(1))))
        return f"\x00{len(tokens) - 1}\x00"

    def stash_date(match: re.Match[str]) -> str:
        tokens.append(_token(match.group(1), names))
        return f"\x00{len(tokens) - 1}\x00"

    # A date token is whole before anything else is read: a backtick in its fallback text
    # (how an app shows one as itself) neither opens nor closes a code span.
    text = _DATE.sub(stash_date, text)
    lines = _inline(_CODE.sub(stash, text), names, tokens).split("\n")
    out: list[str] = []
    for line in lines:
        if line.startswith("&gt;"):
            out.append(f"<blockquote>{line.removeprefix('&gt;').lstrip()}</blockquote>")
        else:
            out.append(line + "<br>")
    return "".join(out).removesuffix("<br>")


def to_html(text: str, names: Mapping[str, str] | None = None) -> Markup:
    """Slack mrkdwn ``text`` as HTML that is safe to put into a page.

    Args:
        text: The mrkdwn, as the app sent it.
        names: Ids to handles and channel names, for mentions (``<@U0BOB>`` -> ``@bob``).
    """
    known = names or {}
    # NUL marks where a token goes back in (``_inline``); one in the text itself is shown
    # as the replacement character, as a browser shows what it cannot.
    text = text.replace("\x00", "\ufffd")
    parts: list[str] = []
    last = 0
    for match in _FENCE.finditer(text):
        parts.append(_paragraph(text[last : match.start()], known))
        parts.append(f"<pre>{escape(_unescape(match.group(1).strip(chr(10))))}</pre>")
        last = match.end()
    parts.append(_paragraph(text[last:], known))
    return Markup("".join(parts))


def plain_html(text: str) -> Markup:
    """``plain_text`` as HTML: escaped, line breaks kept."""
    return Markup("<br>".join(str(escape(line)) for line in text.split("\n")))
