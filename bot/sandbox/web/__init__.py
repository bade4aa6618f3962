"""The sandbox as a page in a browser: channels, threads, modals and Home, laid out like Slack.

:class:`SandboxPage` serves it (loopback only by default) and sends every click and submission
through the sandbox's driver, so the app gets the same signed requests Slack would send.
:func:`render_blocks` draws Block Kit as HTML from the JSON the app sent::

    with running_bot(["flows/deploy.py"]) as bot:
        page = SandboxPage(bot.slack.workspace, bot.driver)
        page.start()
        print(page.url)

Modules: :mod:`.server` (the page and people's actions), :mod:`.handler` (HTTP: routes,
methods, JSON answers), :mod:`.guard` (which requests it answers:
its own, not another site's), :mod:`.page` (what one person sees),
:mod:`.blocks` (Block Kit to HTML), :mod:`.mrkdwn` (mrkdwn to HTML); ``templates/`` (Jinja)
and ``static/`` (the page's one style sheet and one script; no build step, nothing from a CDN).
"""

from __future__ import annotations

from signoff.bot.sandbox.web.blocks import Surface, render_blocks
from signoff.bot.sandbox.web.mrkdwn import to_html
from signoff.bot.sandbox.web.page import Place
from signoff.bot.sandbox.web.server import LOOPBACK, SandboxPage

__all__ = ["LOOPBACK", "Place", "SandboxPage", "Surface", "render_blocks", "to_html"]
