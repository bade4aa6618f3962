"""The sandbox page stays readable whatever the app or a person puts on it: no text
widens the page past the window, and no label spills over the controls beside it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from signoff.bot.sandbox.web import SandboxPage
from signoff.bot.testing import RunningBot
from tests.browser.helpers import button, wait

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


@pytest.fixture
def narrow(browser: WebDriver) -> Iterator[Callable[[int], None]]:
    """Resizes the session's one browser for a test, and gives the others back its size."""
    size = browser.get_window_size()
    try:
        yield lambda width: browser.set_window_size(width, size["height"])
    finally:
        browser.set_window_size(size["width"], size["height"])


def _shown(browser: WebDriver, element: WebElement) -> bool:
    """True when ``element`` is laid out wholly inside the window and is what shows at its
    middle: not squeezed to nothing, clipped by its pane, nor under another pane."""
    return bool(
        browser.execute_script(
            "const e = arguments[0], r = e.getBoundingClientRect();"
            "if (!(r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0"
            "      && r.right <= window.innerWidth && r.bottom <= window.innerHeight)) return false;"
            "const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
            "return !!top && e.contains(top);",
            element,
        )
    )


@pytest.mark.parametrize("width", [420, 800])
def test_in_a_narrow_window_the_channel_and_an_open_thread_each_show_whole(
    browser: WebDriver,
    page: SandboxPage,
    demo_bot: RunningBot,
    narrow: Callable[[int], None],
    width: int,
) -> None:
    """Half a laptop's screen, or a phone: the sidebar and thread used to keep their full
    widths, squeezing the channel to nothing, its Send button and prompts off the window."""
    run = demo_bot.engine.submit("greet-user", {}, started_by="U0CAROL")
    prompt = demo_bot.root_message(run.id, timeout=40)
    narrow(width)
    browser.get(page.url + "?as=U0ALICE")
    provide = button(browser, "Provide input")
    send = browser.find_element(By.CSS_SELECTOR, "#composer button[type=submit]")
    home = browser.find_element(By.CSS_SELECTOR, "[data-open-home]")
    for what, element in (("Provide input", provide), ("Send", send), ("the Home link", home)):
        assert _shown(browser, element), f"{what} is not wholly in a {width}px window"
    width_laid, shown = _page_width(browser)
    assert width_laid <= shown, "the page scrolls sideways"

    # The thread takes the channel's place, and its ✕ gives the channel back.
    browser.get(page.url + f"?as=U0ALICE&thread={prompt.ts}")
    in_thread = button(browser, "Provide input", within="aside")
    assert _shown(browser, in_thread), f"the thread's prompt is not whole at {width}px"
    # The channel beside it, if shown at all, is not so narrow that a button's label breaks.
    for other in browser.find_elements(
        By.XPATH, "//main//button[normalize-space()='Provide input']"
    ):
        if other.is_displayed():
            assert other.size["height"] <= in_thread.size["height"], "the channel is squeezed"
    close = browser.find_element(By.CSS_SELECTOR, ".close-thread")
    assert _shown(browser, close)
    width_laid, shown = _page_width(browser)
    assert width_laid <= shown, "the page scrolls sideways with the thread open"
    close.click()
    send = wait(
        browser,
        "the channel back",
        lambda b: b.find_element(By.CSS_SELECTOR, "#composer button[type=submit]"),
    )
    wait(browser, "the Send button in the window", lambda b: _shown(b, send))


def test_the_refusal_of_a_command_goes_once_it_is_corrected_and_uncovers_the_flows(
    browser: WebDriver, page: SandboxPage
) -> None:
    """The sandbox's refusal of what was typed stayed up until the next send, over the list
    of flows under the box, the very hint for what to type instead."""
    browser.get(page.url + "?as=U0ALICE")
    flows = [
        f for f in browser.find_elements(By.CSS_SELECTOR, ".hint-line code") if _shown(browser, f)
    ]
    assert flows
    composer = browser.find_element(By.ID, "composer-text")
    composer.send_keys("start greet-user")
    browser.find_element(By.CSS_SELECTOR, "#composer button[type=submit]").click()
    said = wait(browser, "the refusal", lambda b: b.find_element(By.ID, "toast").text)
    assert "slash commands only" in said
    assert not all(_shown(browser, one) for one in flows), "the refusal covers no flow"

    composer.send_keys(Keys.HOME, "/runs ")
    wait(browser, "the refusal to go", lambda b: not b.find_element(By.ID, "toast").is_displayed())
    for one in flows:
        assert _shown(browser, one), f"{one.text!r} is covered"
