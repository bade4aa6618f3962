"""The reference shirt-order loop, clicked through the sandbox page in headless Chromium."""

from __future__ import annotations

from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from bot.sandbox.web import SandboxPage
from bot.testing import RunningBot
from engine import RunState

TIMEOUT = 15


def wait(browser: WebDriver, what: str, condition):  # type: ignore[no-untyped-def]
    """Wait (with a deadline, no sleeps) until ``condition(browser)`` is truthy."""
    return WebDriverWait(browser, TIMEOUT).until(condition, message=f"waiting for {what}")


def field(modal: WebElement, label: str) -> WebElement:
    """The input block of the open modal whose label starts with ``label``."""
    for block in modal.find_elements(By.CSS_SELECTOR, "[data-field]"):
        if block.find_element(By.CSS_SELECTOR, ".sk-label").text.startswith(label):
            return block
    raise AssertionError(f"no input labelled {label!r} in the modal")


def choose(modal: WebElement, label: str, option: str) -> None:
    """Pick ``option`` in the select or radio group labelled ``label``, as a person would."""
    block = field(modal, label)
    selects = block.find_elements(By.CSS_SELECTOR, "select")
    if selects:
        Select(selects[0]).select_by_visible_text(option)
        return
    for choice in block.find_elements(By.CSS_SELECTOR, "label.sk-choice"):
        if choice.text.strip() == option:
            choice.click()
            return
    raise AssertionError(f"no option {option!r} for {label!r}")


def chosen(modal: WebElement, label: str) -> str:
    """The option currently shown as picked for ``label``."""
    block = field(modal, label)
    selects = block.find_elements(By.CSS_SELECTOR, "select")
    if selects:
        return Select(selects[0]).first_selected_option.text
    checked = block.find_elements(By.CSS_SELECTOR, "input:checked")
    return checked[0].find_element(By.XPATH, "..").text.strip() if checked else ""


def open_modal(browser: WebDriver) -> WebElement:
    return wait(browser, "the modal", lambda b: b.find_element(By.CSS_SELECTOR, ".modal"))


def test_shirt_order_loop_with_the_mouse(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot, artifacts: Path
) -> None:
    run = demo_bot.engine.submit("get-shirt-order", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id)
    browser.get(page.url + "?as=U0ALICE")

    # The prompt in #general; its button opens the form generated from ShirtOrder.
    button = wait(
        browser,
        "the Provide input button",
        lambda b: b.find_element(By.XPATH, "//main//button[normalize-space()='Provide input']"),
    )
    browser.save_screenshot(str(artifacts / "channel.png"))
    button.click()
    modal = open_modal(browser)
    choose(modal, "Size", "Small")
    choose(modal, "Color", "Green")
    browser.save_screenshot(str(artifacts / "modal.png"))
    modal.find_element(By.CSS_SELECTOR, "[data-submit]").click()

    # The model's own validator refuses: the modal closes, the reason shows in the thread.
    wait(browser, "the modal to close", lambda b: not b.find_elements(By.CSS_SELECTOR, ".modal"))
    replies = wait(
        browser, "the thread link", lambda b: b.find_element(By.CSS_SELECTOR, "main a.replies")
    )
    replies.click()
    thread = wait(
        browser,
        "the refusal in the thread",
        lambda b: next(
            (t for t in b.find_elements(By.CSS_SELECTOR, ".thread") if "in-stock" in t.text),
            None,
        ),
    )
    assert "Green is only in-stock for medium, large, and XL sizes." in thread.text

    # The re-prompt in the thread opens the form again, prefilled with the refused answer.
    reprompt = wait(
        browser,
        "the re-prompt",
        lambda b: b.find_element(By.XPATH, "//aside//button[normalize-space()='Provide input']"),
    )
    browser.save_screenshot(str(artifacts / "thread.png"))
    reprompt.click()
    modal = open_modal(browser)
    assert chosen(modal, "Size") == "Small"
    assert chosen(modal, "Color") == "Green"
    choose(modal, "Color", "Red")
    modal.find_element(By.CSS_SELECTOR, "[data-submit]").click()

    wait(browser, "the modal to close", lambda b: not b.find_elements(By.CSS_SELECTOR, ".modal"))
    wait(
        browser,
        "the run shown as completed",
        lambda b: "completed" in b.find_element(By.CSS_SELECTOR, "main").text.lower(),
    )
    browser.save_screenshot(str(artifacts / "completed.png"))
    assert demo_bot.engine.get_run(run.id).state == RunState.COMPLETED
    assert "small red" in str(demo_bot.engine.get_run(run.id).result)
