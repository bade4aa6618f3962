"""The reference shirt-order loop, clicked through the sandbox page in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from signoff.bot.sandbox.web import SandboxPage
from signoff.bot.testing import RunningBot
from signoff.engine import RunState
from tests.browser.helpers import button, choose, chosen, gone, open_modal, outcome_modal, wait

# A whole loop through a real browser; slow machines get time, the waits keep deadlines.
pytestmark = pytest.mark.timeout(300)


def test_shirt_order_loop_with_the_mouse(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot, artifacts: Path
) -> None:
    run = demo_bot.engine.submit("get-shirt-order", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + "?as=U0ALICE")

    # The prompt in #general; its button opens the form generated from ShirtOrder.
    provide = button(browser, "Provide input")
    browser.save_screenshot(str(artifacts / "channel.png"))
    provide.click()
    modal = open_modal(browser)
    choose(modal, "Size", "Small")
    choose(modal, "Color", "Green")
    browser.save_screenshot(str(artifacts / "modal.png"))
    modal.find_element(By.CSS_SELECTOR, "[data-submit]").click()

    # The model's own validator refuses: the modal says so, and the thread says why.
    refused = outcome_modal(browser, "Not accepted")
    assert "in-stock" in refused.text
    refused.find_element(By.CSS_SELECTOR, "[data-close-modal]").click()
    wait(browser, "the modal to close", gone(".modal"))
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
    reprompt = button(browser, "Provide input", within="aside")
    browser.save_screenshot(str(artifacts / "thread.png"))
    reprompt.click()
    modal = open_modal(browser)
    assert chosen(modal, "Size") == ["Small"]
    assert chosen(modal, "Color") == ["Green"]
    choose(modal, "Color", "Red")
    modal.find_element(By.CSS_SELECTOR, "[data-submit]").click()

    outcome_modal(browser, "Answer recorded").find_element(
        By.CSS_SELECTOR, "[data-close-modal]"
    ).click()
    wait(browser, "the modal to close", gone(".modal"))
    wait(
        browser,
        "the run shown as completed",
        lambda b: "completed" in b.find_element(By.CSS_SELECTOR, "main").text.lower(),
    )
    browser.save_screenshot(str(artifacts / "completed.png"))
    assert demo_bot.engine.get_run(run.id).state == RunState.COMPLETED
    assert "small red" in str(demo_bot.engine.get_run(run.id).result)
