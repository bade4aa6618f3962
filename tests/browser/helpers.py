"""Acting in the sandbox page the way a person does, with deadlines instead of sleeps."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

T = TypeVar("T")
TIMEOUT = 40  # generous: CI machines are shared, and a deadline costs nothing when met


def wait(browser: WebDriver, what: str, condition: Callable[[WebDriver], T]) -> T:
    """Wait (with a deadline) until ``condition(browser)`` is truthy; return it."""
    # The page swaps a part in when it changes, so an element found a moment ago may be gone.
    waiting = WebDriverWait(
        browser,
        TIMEOUT,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )

    def settled(b: WebDriver) -> T | bool:
        try:
            return condition(b)
        except WebDriverException as exc:
            # A link the page follows after a click (the Home tab) may still be loading:
            # the browser refuses to look at a page it is leaving. Look again.
            if "aborted by navigation" in (exc.msg or ""):
                return False
            raise

    return cast(T, waiting.until(settled, message=f"waiting for {what}"))


def gone(selector: str) -> Callable[[WebDriver], bool]:
    """A condition: nothing on the page matches ``selector``."""
    return lambda b: not b.find_elements(By.CSS_SELECTOR, selector)


def button(browser: WebDriver, text: str, within: str = "main") -> WebElement:
    """Wait for the button labelled ``text`` in ``within`` (``main``, ``aside``, ``form``)."""
    return wait(
        browser,
        f"the {text!r} button",
        lambda b: b.find_element(By.XPATH, f"//{within}//button[normalize-space()='{text}']"),
    )


def open_modal(browser: WebDriver) -> WebElement:
    """Wait for the open modal."""
    return wait(browser, "the modal", lambda b: b.find_element(By.CSS_SELECTOR, ".modal"))


def field(modal: WebElement, label: str) -> WebElement:
    """The input block of ``modal`` whose label starts with ``label``."""
    for block in modal.find_elements(By.CSS_SELECTOR, "[data-field]"):
        if block.find_element(By.CSS_SELECTOR, ".sk-label").text.startswith(label):
            return block
    raise AssertionError(f"no input labelled {label!r} in the modal")


def choose(modal: WebElement, label: str, *options: str) -> None:
    """Pick ``options`` (by their text) in the select, radio or checkbox group ``label``."""
    block = field(modal, label)
    selects = block.find_elements(By.CSS_SELECTOR, "select")
    if selects:
        select = Select(selects[0])
        if select.is_multiple:
            select.deselect_all()
        for option in options:
            select.select_by_visible_text(option)
        return
    for option in options:
        labels = block.find_elements(By.CSS_SELECTOR, "label.sk-choice")
        match = [c for c in labels if c.text.strip() == option]
        if not match:
            raise AssertionError(f"no option {option!r} for {label!r}")
        match[0].click()


def chosen(modal: WebElement, label: str) -> list[str]:
    """The texts of the options shown as picked for ``label``."""
    block = field(modal, label)
    selects = block.find_elements(By.CSS_SELECTOR, "select")
    if selects:
        return [o.text for o in Select(selects[0]).all_selected_options]
    checked = block.find_elements(By.CSS_SELECTOR, "input:checked")
    return [c.find_element(By.XPATH, "..").text.strip() for c in checked]


def type_into(modal: WebElement, label: str, text: str) -> None:
    """Replace the text of the input labelled ``label``."""
    box = field(modal, label).find_element(By.CSS_SELECTOR, "input, textarea")
    box.clear()
    if text:
        box.send_keys(text)


def hint_under(modal: WebElement, label: str) -> str:
    """The hint shown under the input labelled ``label`` ("" when none): where the bot puts
    an error in a form it shows again after refusing an answer."""
    found = field(modal, label).find_elements(By.CSS_SELECTOR, ".sk-hint")
    return found[0].text if found else ""


def outcome_modal(browser: WebDriver, title: str) -> WebElement:
    """Wait for the modal titled ``title`` (what the bot shows once it has an answer)."""
    return wait(
        browser,
        f"the modal {title!r}",
        lambda b: next(
            (m for m in b.find_elements(By.CSS_SELECTOR, ".modal") if title in m.text), None
        ),
    )


def error_under(modal: WebElement, label: str) -> str:
    """The error shown under the input labelled ``label`` ("" when none)."""
    found = field(modal, label).find_elements(By.CSS_SELECTOR, ".sk-error")
    return found[0].text if found else ""
