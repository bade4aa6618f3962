from __future__ import annotations

import pytest

from signoff.bot.forms.mrkdwn import (
    clip_mrkdwn,
    escape_clipped,
    escape_mrkdwn,
    literal_clipped,
    literal_mrkdwn,
    markdown_to_mrkdwn,
)


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*em* and _em_", "_em_ and _em_"),
        ("~~gone~~", "~gone~"),
        ("`a < b`", "`a &lt; b`"),
        ("[docs](https://x.io/a?b=1&c=2)", "<https://x.io/a?b=1&amp;c=2|docs>"),
        ("<https://x.io>", "<https://x.io>"),
        ("[pipe](https://x.io/a|b)", "<https://x.io/a%7Cb|pipe>"),
        ("[relative](/runs/1)", "relative"),
        ("![chart](https://x.io/c.png)", "<https://x.io/c.png|chart>"),
        ("# Title with **bold**", "*Title with bold*"),
        ("Tom & Jerry <3 > 2", "Tom &amp; Jerry &lt;3 &gt; 2"),
        ("<b>html</b>", "&lt;b&gt;html&lt;/b&gt;"),
        ("Ask <@U0ABC123> in <#C0ABC123|ops>", "Ask <@U0ABC123> in <#C0ABC123|ops>"),
        ("soft\nbreak", "soft break"),
        ("hard  \nbreak", "hard\nbreak"),
        ("---", "――――――――――"),
    ],
)
def test_inline_and_simple_blocks(markdown: str, mrkdwn: str) -> None:
    assert markdown_to_mrkdwn(markdown) == mrkdwn


def test_lists_nest_and_number() -> None:
    markdown = "- one\n- two\n  1. a\n  2. b\n- three\n\n3. x\n4. y\n"
    assert markdown_to_mrkdwn(markdown) == ("• one\n• two\n  1. a\n  2. b\n• three\n\n3. x\n4. y")


def test_loose_list_keeps_paragraphs_apart() -> None:
    assert markdown_to_mrkdwn("- a\n\n  more a\n- b\n") == "• a\n\n  more a\n\n• b"


def test_blockquote_and_code() -> None:
    markdown = "> quoted **text**\n>\n> - item\n\n```python\nif a < b & c:\n    pass\n```\n"
    assert markdown_to_mrkdwn(markdown) == (
        "> quoted *text*\n>\n> • item\n\n```\nif a &lt; b &amp; c:\n    pass\n```"
    )
    assert markdown_to_mrkdwn("    indented\n") == "```\nindented\n```"


def test_paragraphs_are_separated_by_blank_lines() -> None:
    assert markdown_to_mrkdwn("\n\nfirst\n\nsecond\n\n") == "first\n\nsecond"
    assert markdown_to_mrkdwn("") == ""


def test_escape() -> None:
    assert escape_mrkdwn("a&b<c>d") == "a&amp;b&lt;c&gt;d"


def test_escaped_text_is_cut_to_its_length_once_escaped_never_inside_an_entity() -> None:
    assert escape_clipped("a<b", 6) == "a&lt;b"
    assert escape_clipped("a<b&c", 8) == "a&lt;b…"  # "&amp;" would not fit whole
    assert escape_clipped("<" * 100, 10) == "&lt;&lt;…"
    page = "<p>&nbsp;</p>" * 500
    assert len(escape_clipped(page, 2000)) <= 2000


def test_formatting_characters_meant_as_themselves_go_in_a_date_tokens_fallback() -> None:
    assert literal_mrkdwn("a*b_c~d`e:x:") == (
        "a<!date^0^{_}|*>b<!date^0^{_}|_>c<!date^0^{_}|~>d<!date^0^{_}|`>e"
        "<!date^0^{_}|:>x<!date^0^{_}|:>"
    )
    assert literal_mrkdwn("a<b> & :x:", emoji=True) == "a&lt;b&gt; &amp; :x:"
    # Markdown's escaped characters are text; a link's label only escapes (no token fits).
    assert markdown_to_mrkdwn("\\*not bold\\*") == "<!date^0^{_}|*>not bold<!date^0^{_}|*>"
    assert markdown_to_mrkdwn("[a_b](https://x.io) :rocket:") == "<https://x.io|a_b> :rocket:"


def test_literal_text_and_mrkdwn_are_never_cut_inside_a_token() -> None:
    assert literal_clipped("ab*c", 16) == "ab…"  # the token would not fit whole
    assert literal_clipped("ab*cd", 18) == "ab<!date^0^{_}|*>…"
    assert clip_mrkdwn("x <!date^0^{_}|*> y", 8) == "x "
    assert clip_mrkdwn("short", 8) == "short"
