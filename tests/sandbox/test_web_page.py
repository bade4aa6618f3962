"""The sandbox page without a browser: Block Kit to HTML, mrkdwn, and the page's HTTP rules."""

from __future__ import annotations

import http.client
import json
import re
import shlex
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape

from signoff.bot.forms.modals import build_input_view
from signoff.bot.sandbox.web import SandboxPage, Surface, render_blocks, to_html
from signoff.bot.sandbox.web.guard import refusal
from signoff.bot.sandbox.web.server import SHOWN_FLOWS
from signoff.bot.testing import RunningBot, running_bot
from tests.browser.everything_flows import Everything
from tests.support.waiting import wait_for

NAMES = {"U0BOB": "bob", "C0GENERAL": "general"}


def everything_html(errors: dict[str, str] | None = None) -> str:
    view = build_input_view(
        Everything.model_json_schema(),
        title="Everything",
        callback_id="run_input",
        private_metadata="{}",
        description="Fill in **all** of it",
    ).to_dict()
    surface = Surface(
        kind="view",
        names=NAMES,
        view_id="V1",
        errors=errors or {},
        users=[("U0ALICE", "alice"), ("U0BOB", "bob")],
        channels=[("C0GENERAL", "general")],
        tz="Europe/London",
    )
    return str(render_blocks(view["blocks"], surface))


def block(html: str, block_id: str) -> str:
    match = re.search(
        rf'<div class="sk-block sk-input-block[^"]*" data-block-id="{block_id}".*?</div>\n</div>|<div class="sk-block sk-input-block[^"]*" data-block-id="{block_id}".*?(?=<div class="sk-block|$)',
        html,
        re.S,
    )
    assert match, f"no input block {block_id}"
    return match.group(0)


def _without_label_ties(html: str) -> str:
    """``html`` without the ids that tie labels, hints and errors to inputs (hashes, checked
    on their own)."""
    return re.sub(r' (?:id|for|aria-labelledby|aria-describedby)="in-[^"]*"', "", html)


def test_every_element_the_form_generator_makes_is_drawn_as_an_html_control() -> None:
    html = _without_label_ties(everything_html())
    expected = {
        "title": '<input class="sk-input" dir="auto" type="text" data-kind="plain_text_input"',
        "notes": '<textarea class="sk-input" dir="auto" rows="4" data-kind="plain_text_input"',
        "contact": 'type="email" data-kind="email_text_input"',
        "site": 'type="url" data-kind="url_text_input"',
        "replicas": 'data-kind="number_input"',
        "approved": 'type="checkbox" name="field:approved/value" value="true"',
        "size": 'type="radio" name="field:size/value" value="medium" checked',
        "region": '<option value="eu" selected>Eu</option>',
        "labels": 'type="checkbox" name="field:labels/value" value="bug" checked',
        "teams": '<select class="sk-select" multiple',
        "day": 'type="date" data-kind="datepicker" data-block-id="field:day" data-action-id="value" name="field:day" value="2026-12-01"',
        "at": 'type="time" data-kind="timepicker" data-block-id="field:at" data-action-id="value" name="field:at" value="09:30"',
        "starts": 'type="datetime-local" data-kind="datetimepicker" data-block-id="field:starts" data-action-id="value" name="field:starts" value="2026-12-01T13:30"',
        "owner": '<option value="U0BOB">@bob</option>',
        "reviewers": 'data-kind="multi_users_select"',
        "channel": '<option value="C0GENERAL">#general</option>',
    }
    for name, snippet in expected.items():
        assert snippet in block(html, f"field:{name}"), name
    assert '<label class="sk-label" dir="auto">Title</label>' in html
    assert '<div class="sk-hint" dir="auto">A short name</div>' in html
    assert (
        '<label class="sk-label" dir="auto">Notes <span class="sk-optional">(optional)</span>'
        "</label>" in html
    )
    assert ">first line</textarea>" in html
    assert "Fill in <b>all</b> of it" in html  # the description, as mrkdwn


def test_labels_name_their_inputs_and_groups_of_choices() -> None:
    html = everything_html()
    title = re.search(
        r'<label class="sk-label" dir="auto" id="(in-V1-\w+)-label" for="(\1)">Title', html
    )
    assert title, block(html, "field:title")
    assert re.search(f'type="text" id="{title.group(1)}" [^>]*data-kind="plain_text_input"', html)
    size = block(html, "field:size")
    label = re.search(r'<label class="sk-label" dir="auto" id="([^"]+)">Size', size)
    assert label, size
    assert f'role="radiogroup" aria-labelledby="{label.group(1)}"' in size
    assert 'role="group"' in block(html, "field:labels")


def test_errors_show_under_their_inputs() -> None:
    html = everything_html(
        {"field:code": "String should match pattern", "field:title": "Too short"}
    )
    code = block(html, "field:code")
    assert "has-error" in code
    assert (
        '<div class="sk-error" role="alert">String should match pattern</div>'
        in _without_label_ties(code)
    )
    assert "sk-error" not in block(html, "field:replicas")
    assert 'aria-describedby="in-V1-' not in block(html, "field:replicas")  # nothing to read
    # Read with its input, before the input's hint.
    title = block(html, "field:title")
    control = re.search(r'aria-describedby="([^"]+)" aria-invalid="true" data-kind', title)
    assert control, title
    error, hint = control.group(1).split()
    assert f'<div class="sk-error" id="{error}" role="alert">Too short' in title
    assert f'<div class="sk-hint" dir="auto" id="{hint}">A short name' in title


def test_message_blocks_buttons_confirms_and_unknown_types() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Deploy <now>"}},
        {"type": "divider"},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "Approve *r42* for <@U0BOB>?"},
            "fields": [{"type": "mrkdwn", "text": "*Env*\nprod"}],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "in <#C0GENERAL>"}]},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve",
                    "value": "r42",
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Sure?"},
                        "text": {"type": "plain_text", "text": "It goes live."},
                        "confirm": {"type": "plain_text", "text": "Ship"},
                        "deny": {"type": "plain_text", "text": "Wait"},
                    },
                },
                {"type": "fancy_slider", "action_id": "x"},
            ],
        },
        {"type": "carousel", "block_id": "c1"},
    ]
    html = str(render_blocks(blocks, Surface(kind="message", names=NAMES, ts="1.2")))
    assert '<div class="sk-block sk-header" data-block-id="">Deploy &lt;now&gt;</div>' in html
    assert '<hr class="sk-block sk-divider">' in html
    assert 'Approve <b>r42</b> for <span class="mention">@bob</span>?' in html
    assert '<div class="sk-field"><b>Env</b><br>prod</div>' in html
    assert '<span class="mention channel">#general</span>' in html
    assert (
        'class="sk-button primary"' in html
        and 'data-value="r42"' in html
        and "data-confirm" in html
    )
    assert "<h3>Sure?</h3>" in html and ">Ship</button>" in html and ">Wait</button>" in html
    assert "Unknown element type <code>fancy_slider</code>" in html
    assert 'data-unknown-block="carousel">Unknown block type <code>carousel</code>' in html


@pytest.mark.parametrize(
    ("mrkdwn", "html"),
    [
        ("*bold* _it_ ~gone~ `x*y*`", "<b>bold</b> <i>it</i> <s>gone</s> <code>x*y*</code>"),
        (
            "<https://example.com|docs> <mailto:a@b.co>",
            '<a href="https://example.com" target="_blank" rel="noopener noreferrer">docs</a> <a href="mailto:a@b.co" target="_blank" rel="noopener noreferrer">mailto:a@b.co</a>',
        ),
        ("<javascript:alert(1)|click>", "click"),
        (
            "&lt;script&gt;alert(1)&lt;/script&gt; <script>",
            "&lt;script&gt;alert(1)&lt;/script&gt; script",
        ),
        (
            "<!date^1795749831^{time}|03:23 UTC> <!here>",
            '<time title="!date^1795749831^{time}">03:23 UTC</time> <span class="mention here">@here</span>',
        ),
        ("> quoted\nplain", "<blockquote>quoted</blockquote>plain"),
        ("```a *b*\n<c>```", "<pre>a *b*\n&lt;c&gt;</pre>"),
        (":warning: :no_such_emoji:", "⚠️ :no_such_emoji:"),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),
        # A style around a code span applies to it, as Slack draws /runs help's commands;
        # a token never runs across one.
        (
            "*`/runs`* — _see `show`_ <a `b` c>",
            "<b><code>/runs</code></b> — <i>see <code>show</code></i> &lt;a <code>b</code> c&gt;",
        ),
        # A date token is whole: the backtick in its fallback (a character shown as itself)
        # opens no code span with the next one, and bold around it holds.
        (
            "*a<!date^0^{_}|`>b<!date^0^{_}|`>c*",
            '<b>a<time title="!date^0^{_}">`</time>b<time title="!date^0^{_}">`</time>c</b>',
        ),
        # A NUL in the text is not where a token goes back in: it failed the whole page.
        (
            "a` \x000\x00 `b <@U0BOB> \x000\x00",
            'a<code> \ufffd0\ufffd </code>b <span class="mention">@bob</span> \ufffd0\ufffd',
        ),
    ],
)
def test_mrkdwn_as_html(mrkdwn: str, html: str) -> None:
    assert str(to_html(mrkdwn, NAMES)) == html


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[RunningBot, SandboxPage]]:
    with running_bot(["signoff.bot.demo.flows"], database_url=f"sqlite:///{tmp_path}/t.db") as bot:
        page = SandboxPage(bot.slack.workspace, bot.driver, flows=bot.engine.flows.names())
        page.start()
        try:
            yield bot, page
        finally:
            page.stop()


def test_the_page_stops_at_once_after_serving(served: tuple[RunningBot, SandboxPage]) -> None:
    """Stopping waited for the serving loop's half-second poll: each ``signoff sandbox``
    stop, and each test's page, took half a second more."""
    _, page = served
    with urllib.request.urlopen(page.url, timeout=10) as reply:
        assert reply.status == 200
    began = time.monotonic()
    page.stop()
    took = time.monotonic() - began
    assert took < 0.25, took


def post(url: str, body: object, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": content_type}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_page_serves_loopback_and_says_it_is_local(
    served: tuple[RunningBot, SandboxPage],
) -> None:
    _, page = served
    assert page.host == "127.0.0.1"
    with urllib.request.urlopen(page.url, timeout=10) as response:
        html = response.read().decode()
    assert f"serving 127.0.0.1:{page.port} only" in html
    assert f"/runs start {escape(shlex.quote(page.flows[0]))}" in html  # quoted, as typed
    assert '<script src="/static/page.js"></script>' in html
    # Its own icon: without one, the browser asked for /favicon.ico and logged the 404.
    assert '<link rel="icon" href="/static/icon.svg">' in html
    with urllib.request.urlopen(page.url + "static/icon.svg", timeout=10) as response:
        assert response.headers["Content-Type"] == "image/svg+xml"
        assert response.read().startswith(b"<svg")
    assert "http" not in re.sub(r'https?://127\.0\.0\.1[^"]*', "", html).split("<body")[0]  # no CDN


def test_a_process_with_many_flows_suggests_a_few_and_counts_the_rest(
    served: tuple[RunningBot, SandboxPage],
) -> None:
    bot, _ = served
    many = ["deploy to prod", *(f"flow-{i:03}" for i in range(149))]
    page = SandboxPage(bot.slack.workspace, bot.driver, flows=many)
    page.start()
    try:
        with urllib.request.urlopen(page.url, timeout=10) as response:
            html = response.read().decode()
    finally:
        page.stop()
    hint = html.split('<div class="hint-line">', 1)[1].split("</div>", 1)[0]
    assert hint.count("/runs start ") == SHOWN_FLOWS
    assert "/runs start flow-000" in hint
    # The rest were counted and never named: the count says where to find them.
    assert f"and {150 - SHOWN_FLOWS} more (<code>/runs start</code> lists them all)" in hint
    # A name with a space, as /runs start reads it (quoted).
    assert "<code>/runs start &#39;deploy to prod&#39;</code>" in hint


def test_actions_are_json_only_and_name_a_member(served: tuple[RunningBot, SandboxPage]) -> None:
    bot, page = served
    status, answer = post(page.url + "command", {"as": "alice", "text": "/runs help"}, "text/plain")
    assert status == 415 and "JSON" in answer["error"]
    status, answer = post(page.url + "command", {"as": "mallory", "text": "/runs help"})
    assert status == 400 and "mallory" in answer["error"]
    status, answer = post(page.url + "command", {"as": "alice", "text": "hello"})
    assert status == 400 and "slash commands only" in answer["error"]
    status, answer = post(page.url + "submit", {"as": "alice", "view_id": "V404", "values": {}})
    assert status == 400 and "no longer open" in answer["error"]
    assert not bot.slack.ephemeral("alice")

    status, answer = post(page.url + "command", {"as": "alice", "text": "/runs help"})
    assert (status, answer["ok"]) == (200, True)
    # The app's ephemeral reply reaches the sandbox after the page has its answer.
    shown = wait_for(lambda: bot.slack.ephemeral("alice"), what="the /runs help reply")
    assert "/runs start" in shown[-1].text


def test_malformed_actions_get_a_4xx_never_a_dropped_connection(
    served: tuple[RunningBot, SandboxPage],
) -> None:
    _, page = served
    for surface in ("message", ["x"], 3):
        status, answer = post(page.url + "act", {"as": "alice", "surface": surface})
        assert status == 400 and "'surface' must be an object" in answer["error"]
    deep = b'{"as": "alice", "surface": ' + b'{"a": ' * 100_000 + b"{}" + b"}" * 100_001
    request = urllib.request.Request(
        page.url + "act", data=deep, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as nested:
        urllib.request.urlopen(request, timeout=10)
    assert nested.value.code == 400
    # A negative length: the server refuses it rather than reading until the client gives up.
    with socket.create_connection((page.host, page.port), timeout=10) as raw:
        raw.sendall(
            f"POST /act HTTP/1.1\r\nHost: 127.0.0.1:{page.port}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: -1\r\n\r\n"
        )
        assert raw.recv(100).startswith(b"HTTP/1.0 413")


def test_a_refused_answer_is_shown_on_the_page(served: tuple[RunningBot, SandboxPage]) -> None:
    _, page = served
    # The app refuses /runs text longer than Slack sends (4,000 characters, escaped) with a 400.
    status, answer = post(page.url + "command", {"as": "alice", "text": "/runs " + "x" * 20_001})
    assert status == 200 and answer["ok"] is False
    assert "the app answered HTTP 400 to /runs" in answer["problems"][0]
    with urllib.request.urlopen(page.url + "?as=U0ALICE", timeout=10) as response:
        assert "the app answered HTTP 400 to /runs" in response.read().decode()


def send(
    page: SandboxPage, method: str, path: str, body: object = None, **headers: str
) -> tuple[int, http.client.HTTPResponse, bytes]:
    """``method path`` over a real connection, with exactly these headers (``Host`` too,
    when given); ``body`` is sent as JSON unless it is bytes."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    conn = http.client.HTTPConnection(page.host, page.port, timeout=10)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response, response.read()
    finally:
        conn.close()


JSON = "application/json"
HELP = {"as": "alice", "text": "/runs help"}


def test_an_action_sent_as_another_media_type_naming_json_is_refused(
    served: tuple[RunningBot, SandboxPage],
) -> None:
    bot, page = served
    # What a page on another site can send without a preflight, the type naming JSON inside.
    for content_type in ("text/plain; application/json", "text/plain;x=application/json"):
        status, _, body = send(page, "POST", "/command", HELP, Content_Type=content_type)
        assert status == 415 and "JSON" in json.loads(body)["error"], content_type
    assert not bot.slack.ephemeral("alice")
    status, _, body = send(
        page, "POST", "/command", HELP, Content_Type="Application/JSON; charset=utf-8"
    )
    assert (status, json.loads(body)["ok"]) == (200, True)


def test_a_request_from_another_origin_is_refused_and_says_why(
    served: tuple[RunningBot, SandboxPage],
) -> None:
    bot, page = served
    own = f"http://127.0.0.1:{page.port}"
    for origin in (
        "http://evil.example",
        f"http://localhost:{page.port}",
        "null",
        f"https://127.0.0.1:{page.port}",
    ):
        status, _, body = send(page, "POST", "/command", HELP, Content_Type=JSON, Origin=origin)
        error = json.loads(body)["error"]
        assert status == 403 and origin in error and "other sites" in error, origin
    assert not bot.slack.ephemeral("alice")
    status, _, body = send(page, "POST", "/command", HELP, Content_Type=JSON, Origin=own)
    assert (status, json.loads(body)["ok"]) == (200, True)


def test_no_other_site_may_frame_the_page(served: tuple[RunningBot, SandboxPage]) -> None:
    """Framed by another site, a click there acted as the page's own: an approval form
    opened for whoever the page showed."""
    _bot, page = served
    status, response, _ = send(page, "GET", "/", Host=f"127.0.0.1:{page.port}")
    assert status == 200
    assert response.getheader("Content-Security-Policy") == "frame-ancestors 'none'"
    assert response.getheader("X-Frame-Options") == "DENY"


def test_only_hosts_naming_the_page_are_answered_so_a_rebound_name_cannot_read_it(
    served: tuple[RunningBot, SandboxPage],
) -> None:
    bot, page = served
    port = page.port
    for host in (
        f"attacker.example:{port}",
        "127.0.0.1",
        f"127.0.0.1:{port + 1}",
        f"localhost.evil:{port}",
        f"a@127.0.0.1:{port}",
    ):
        status, _, body = send(page, "GET", "/", Host=host)
        assert status == 421 and f"127.0.0.1:{port}" in json.loads(body)["error"], host
        status, _, _ = send(page, "POST", "/command", HELP, Host=host, Content_Type=JSON)
        assert status == 421, host
    assert not bot.slack.ephemeral("alice")
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}", f"[::1]:{port}"):
        status, _, body = send(page, "GET", "/", Host=host)
        assert status == 200 and b"<html" in body, host


@pytest.mark.parametrize(
    ("bound", "host", "answered"),
    [
        (("127.0.0.1", 8765), "127.0.0.1:8765", True),
        (("127.0.0.1", 8765), "10.0.0.5:8765", False),
        (("::1", 8765), "[::1]:8765", True),
        (("192.168.1.5", 8765), "192.168.1.5:8765", True),
        (("192.168.1.5", 8765), "localhost:8765", True),
        (("mybox.lan", 8765), "MyBox.lan:8765", True),
        # Bound to every interface: any address of the machine, but still no names.
        (("0.0.0.0", 8765), "10.0.0.5:8765", True),
        (("::", 8765), "[fe80::1]:8765", True),
        (("0.0.0.0", 8765), "mybox.lan:8765", False),
        (("0.0.0.0", 8765), "10.0.0.5:80", False),
        (("127.0.0.1", 80), "localhost", True),
        (("127.0.0.1", 8765), "127.0.0.1:x", False),
        (("127.0.0.1", 8765), "", False),
    ],
)
def test_which_hosts_are_the_pages(bound: tuple[str, int], host: str, answered: bool) -> None:
    assert (refusal(host, None, bound) is None) == answered
    # A page served from that host may act on it; from any other, not.
    origin = f"http://{host}"
    assert (refusal(host, origin, bound) is None) == answered
    assert refusal(host, "http://other.example", bound) is not None


def test_head_answers_as_get_without_the_body(served: tuple[RunningBot, SandboxPage]) -> None:
    _, page = served
    for path in ("/", "/regions", "/static/page.js"):
        _, got, full = send(page, "GET", path)
        status, response, body = send(page, "HEAD", path)
        assert (status, body) == (200, b""), path
        assert response.getheader("Content-Type") == got.getheader("Content-Type")
        assert int(response.getheader("Content-Length")) > 0


def test_other_methods_get_405_naming_the_allowed_ones_in_json(
    served: tuple[RunningBot, SandboxPage],
) -> None:
    bot, page = served
    for method in ("PUT", "DELETE", "OPTIONS", "PATCH"):
        for path, allowed in (("/", "GET, HEAD"), ("/command", "POST")):
            status, response, body = send(page, method, path, HELP, Content_Type=JSON)
            assert (status, response.getheader("Allow")) == (405, allowed), (method, path)
            assert response.getheader("Content-Type") == JSON
            assert f"not {method}" in json.loads(body)["error"]
    status, response, _ = send(page, "GET", "/command")
    assert (status, response.getheader("Allow")) == (405, "POST")
    status, response, _ = send(page, "POST", "/regions", HELP, Content_Type=JSON)
    assert (status, response.getheader("Allow")) == (405, "GET, HEAD")
    assert not bot.slack.ephemeral("alice")
    # A method no one knows: the server's own 501, in JSON like the rest.
    status, response, body = send(page, "BREW", "/")
    assert status == 501 and "BREW" in json.loads(body)["error"]
    status, _, body = send(page, "POST", "/nosuch", HELP, Content_Type=JSON)
    assert status == 404 and "/nosuch" in json.loads(body)["error"]
