"""Another site's page, open in the same browser as the sandbox page, cannot act through it."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from signoff.bot.sandbox.web import SandboxPage
from signoff.bot.testing import RunningBot
from tests.browser.helpers import wait

pytestmark = pytest.mark.timeout(120)

#: A page that posts a slash command to the sandbox page without a preflight: ``no-cors``
#: with a "simple" content type that names JSON inside it.
EVIL = """<!doctype html><html><body><p id="s">sending</p><script>
fetch(%(url)s, {method: "POST", mode: "no-cors",
  headers: {"Content-Type": "text/plain; application/json"},
  body: JSON.stringify({as: "alice", channel: "C0GENERAL", text: %(text)s})})
  .then(() => { document.getElementById("s").textContent = "sent"; })
  .catch((e) => { document.getElementById("s").textContent = "failed " + e; });
</script></body></html>"""


@pytest.fixture
def other_site(page: SandboxPage) -> Iterator[str]:
    """A page on another origin (``localhost``, another port) aimed at ``page``."""
    html = EVIL % {
        "url": json.dumps(page.url + "command"),
        "text": json.dumps(f"/runs start {page.flows[0]}"),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_page_on_another_site_cannot_start_a_run(
    browser: WebDriver,
    page: SandboxPage,
    demo_bot: RunningBot,
    other_site: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="signoff.bot.sandbox.web.handler")
    browser.get(other_site)
    status = wait(
        browser,
        "the other site's request to be answered",
        lambda b: (text := b.find_element(By.ID, "s").text) != "sending" and text,
    )
    assert status == "sent"  # the browser sent it (no preflight): the page had to refuse it
    refused = [r for r in caplog.records if getattr(r, "action", "") == "sandbox_page_refused"]
    assert refused and "refused POST /command" in refused[0].getMessage()
    assert demo_bot.engine.list_runs() == []
    assert not demo_bot.slack.ephemeral("alice")
