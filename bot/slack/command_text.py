"""How ``/runs`` reads what was typed: words split as a shell splits them, with JSON values
kept whole, and the quotes and spaces Slack's clients put in for you read as typed ones."""

from __future__ import annotations

import io
import json
import re
import shlex

from signoff.bot.forms.mrkdwn import unescape_mrkdwn

#: a ``name=`` whose value starts as JSON does: a list, an object or a double-quoted string
_JSON_PAIR = re.compile(r"""[^\s'"\\=]+=(?=[\[{"])""")
_JSON = json.JSONDecoder()
#: what separates words: every space ``str.isspace`` knows, the non-breaking one (macOS
#: types it for Option-Space) and the thin and ideographic ones included
_SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_DOUBLE = "\u201c\u201d\u201e"  # left and right double quotes, low double quote
_OPEN_SINGLE = "\u2018"  # left single quote
_SINGLE = "\u2018\u2019"  # left and right single quotes (the right one is also an apostrophe)


def straight_quotes(text: str) -> str:
    """``text`` with the curly quotes a client typed for straight ones made straight.

    Slack on macOS (and iOS) turns ``'two words'`` into left and right single quotes
    (U+2018, U+2019) and ``"x"`` into left and right double quotes (U+201C, U+201D).
    Outside quotes typed straight, a curly double quote (or U+201E) opens and closes a
    double quote. A left single quote opens a single one, as does a right one at the start
    of a word or after ``=``; inside a single quote opened curly, a right single quote
    closes it before a space or the end, so that an apostrophe inside stays one. Any other
    right single quote is an apostrophe (``it\u2019s``) and stays, as does every curly
    quote inside straight ones.
    """
    if not any(c in text for c in _DOUBLE + _SINGLE):
        return text
    out: list[str] = []
    quote = ""  # the straight quote we are inside, if any
    curly = False  # whether it was opened curly
    index = 0
    while index < len(text):
        char = text[index]
        after = text[index + 1] if index + 1 < len(text) else ""
        before = text[index - 1] if index else ""
        if not quote:
            if char == "\\":
                out.append(text[index : index + 2])
                index += 2
                continue
            if char in "'\"":
                quote, curly = char, False
            elif char in _DOUBLE:
                quote, curly, char = '"', True, '"'
            elif char == _OPEN_SINGLE or (
                char in _SINGLE and (not before or before.isspace() or before == "=")
            ):
                quote, curly, char = "'", True, "'"
        elif quote == '"':
            if char == "\\" and not curly:
                out.append(text[index : index + 2])
                index += 2
                continue
            if char == '"' or (curly and char in _DOUBLE):
                quote, char = "", '"'
        elif char == "'" or (curly and char in _SINGLE and (not after or after.isspace())):
            quote, char = "", "'"
        out.append(char)
        index += 1
    return "".join(out)


def command_words(text: str) -> list[str]:
    """The words of ``/runs`` text, as Slack sends it.

    Words are split as a shell splits them (``name='two words'``, ``name="two words"``),
    except that a ``name=`` value that is JSON as typed stays whole, spaces and quotes
    included: ``tags=["a b","c"]`` and ``meta={"k": 1}`` are one word each, for
    ``parameter_value`` to read as JSON, and ``name="a\u00e9"`` is read as a JSON string.
    Slack sends ``&``, ``<`` and ``>`` as ``&amp;``, ``&lt;`` and ``&gt;``; they are
    turned back first. Curly quotes are read as straight ones (``straight_quotes``), and a
    non-breaking space between words as a space.

    Raises:
        ValueError: a quote is not closed.
    """
    text = straight_quotes(unescape_mrkdwn(text))
    words: list[str] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return words
        if pair := _JSON_PAIR.match(text, position):
            try:
                value, end = _JSON.raw_decode(text, pair.end())
            except (ValueError, RecursionError):
                # Not JSON after all, or nested past what the parser reads (it recurses
                # once per level): read as a shell would.
                end = 0
            if end and (end == len(text) or text[end].isspace()):
                # A string is given as JSON reads it; a list or an object as typed.
                as_typed = value if isinstance(value, str) else text[pair.end() : end]
                words.append(pair.group() + as_typed)
                position = end
                continue
        # One word as a shell reads it; the rest of the text is left for the next.
        stream = io.StringIO(text[position:])
        lexer = shlex.shlex(stream, posix=True)
        lexer.whitespace_split = True
        lexer.whitespace = _SPACES
        lexer.commenters = ""
        word = lexer.get_token()
        rest = stream.read()
        if word is None:  # only whitespace was left (cannot happen: skipped above)
            return words
        words.append(word)
        position = len(text) - len(rest)


__all__ = ["command_words", "straight_quotes"]
