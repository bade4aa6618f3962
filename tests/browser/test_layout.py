"""The sandbox page stays readable whatever the app or a person puts on it: no text
widens the page past the window, and no label spills over the controls beside it."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from signoff.bot.sandbox.web import SandboxPage
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
