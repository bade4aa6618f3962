"""The sandbox page stays readable whatever the app or a person puts on it: no text
widens the page past the window, and no label spills over the controls beside it."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from signoff.bot.sandbox.web import SandboxPage
from signoff.bot.testing import RunningBot
from tests.browser.helpers import wait

pytestmark = pytest.mark.timeout(300)


def _page_width(browser: WebDriver) -> tuple[int, int]:
    """How wide the page is laid out, and how wide the window shows it."""
    width, shown = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];"
    )
    return int(width), int(shown)


def test_a_long_word_in_the_notice_wraps_instead_of_widening_the_page(
    browser: WebDriver, page: SandboxPage
) -> None:
    browser.get(page.url + "?as=U0ALICE")
    # A mistyped command that is one long word: the app's refusal names it in the notice.
    composer = browser.find_element(By.ID, "composer-text")
    composer.send_keys("/" + "x" * 2000)
    browser.find_element(By.CSS_SELECTOR, "#composer button[type=submit]").click()
    notice = wait(browser, "the notice", lambda b: b.find_element(By.CSS_SELECTOR, ".notice"))
    assert "the app answered HTTP 400" in notice.text
    width, shown = _page_width(browser)
    assert width <= shown, "the page scrolls sideways"
    send = browser.find_element(By.CSS_SELECTOR, "#composer button[type=submit]")
    assert send.rect["x"] + send.rect["width"] <= shown


def test_a_long_button_label_wraps_inside_its_button_not_over_the_next_one(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    run = demo_bot.engine.submit("long-decision", {}, started_by="U0CAROL")
    prompt = demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + f"?as=U0ALICE&thread={prompt.ts}")  # the thread pane is narrow
    buttons = wait(
        browser,
        "the decision's buttons in the thread",
        lambda b: b.find_elements(By.CSS_SELECTOR, ".thread .sk-actions button"),
    )
    assert any(": yes" in b.text for b in buttons)
    for one in buttons:
        spill = browser.execute_script(
            "return arguments[0].scrollHeight - arguments[0].clientHeight;", one
        )
        assert spill <= 0, f"{one.text!r} spills out of its button"
    boxes = [b.rect for b in buttons]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["width"] <= b["x"]
                or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"]
                or b["y"] + b["height"] <= a["y"]
            )
            assert apart, "two buttons overlap"
