"""The sandbox page in headless Chromium: every input, errors, ephemerals, confirms, Home."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from signoff.bot.sandbox.web import SandboxPage
from signoff.bot.slack import ids
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import RunState
from tests.browser.helpers import (
    button,
    choose,
    chosen,
    error_under,
    field,
    gone,
    hint_under,
    open_modal,
    outcome_modal,
    type_into,
    wait,
)

# A whole loop through a real browser; slow machines get time, the waits keep deadlines.
pytestmark = pytest.mark.timeout(300)


def test_every_input_element_is_filled_in_and_submitted(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot, artifacts: Path
) -> None:
    run = demo_bot.engine.submit("everything", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + "?as=U0ALICE")
    button(browser, "Provide input").click()
    modal = open_modal(browser)

    # Labels, hints, optional markers and initial values, as the form generator set them.
    assert field(modal, "Title").text.splitlines()[0] == "Title"
    assert "A short name" in field(modal, "Title").text
    assert "(optional)" in field(modal, "Notes").text
    assert "(optional)" not in field(modal, "Contact").text
    notes = field(modal, "Notes").find_element(By.TAG_NAME, "textarea")
    assert notes.get_attribute("value") == "first line"
    assert chosen(modal, "Size") == ["Medium"]
    assert chosen(modal, "Region") == ["Eu"]
    assert chosen(modal, "Labels") == ["Bug"]
    day = field(modal, "Day").find_element(By.TAG_NAME, "input")
    assert day.get_attribute("value") == "2026-12-01"
    assert field(modal, "At").find_element(By.TAG_NAME, "input").get_attribute("value") == "09:30"
    starts = field(modal, "Starts").find_element(By.TAG_NAME, "input")
    assert starts.get_attribute("value") == "2026-12-01T13:30"  # alice's zone is London: GMT
    browser.save_screenshot(str(artifacts / "everything-modal.png"))

    # Empty required inputs: the Slack client refuses, says so under each of them, and keeps
    # what was typed.
    type_into(modal, "Title", "Ship it")
    modal.find_element(By.CSS_SELECTOR, "[data-submit]").click()
    wait(browser, "the client's errors", lambda b: error_under(open_modal(b), "Contact"))
    modal = open_modal(browser)
    assert error_under(modal, "Contact") == "Please complete this required field."
    assert error_under(modal, "Owner") == "Please complete this required field."
    assert error_under(modal, "Title") == ""
    assert (
        field(modal, "Title").find_element(By.TAG_NAME, "input").get_attribute("value") == "Ship it"
    )
    assert not demo_bot.slack.calls("views.update")

    type_into(modal, "Contact", "ops@example.com")
    type_into(modal, "Replicas", "3")
    type_into(modal, "Code", "abc")  # the pattern is checked by the app, not the client
    choose(modal, "Approved", "Yes")
    choose(modal, "Size", "Large")
    choose(modal, "Region", "Us")
    choose(modal, "Labels", "Docs")
    choose(modal, "Teams", "A", "C")
    day = field(modal, "Day").find_element(By.TAG_NAME, "input")
    browser.execute_script("arguments[0].value = '2026-12-24'", day)
    choose(modal, "Owner", "@bob")
    choose(modal, "Reviewers", "@carol")
    choose(modal, "Channel", "#general")
    modal.find_element(By.CSS_SELECTOR, "[data-submit]").click()

    # The app acknowledges at once; the schema's verdict then comes back as the form again,
    # with the message under the input, and what was typed stays.
    def error_shown(b: WebDriver) -> bool:
        shown = open_modal(b)  # "Submitting..." until the outcome replaces it
        return bool(shown.find_elements(By.CSS_SELECTOR, "[data-field]")) and (
            "⚠️" in hint_under(shown, "Code")
        )

    wait(browser, "the app's error under Code", error_shown)
    modal = open_modal(browser)
    assert "pattern" in hint_under(modal, "Code") or "match" in hint_under(modal, "Code")
    assert "⚠️" not in hint_under(modal, "Title")
    title = field(modal, "Title").find_element(By.TAG_NAME, "input")
    assert title.get_attribute("value") == "Ship it"
    browser.save_screenshot(str(artifacts / "modal-errors.png"))

    type_into(modal, "Code", "XYZ")
    modal.find_element(By.CSS_SELECTOR, "[data-submit]").click()
    outcome_modal(browser, "Answer recorded").find_element(
        By.CSS_SELECTOR, "[data-close-modal]"
    ).click()
    wait(browser, "the modal to close", gone(".modal"))

    def finished() -> object:
        current = demo_bot.engine.get_run(run.id)
        return current if current.state.is_final else None

    done = wait(browser, "the run to finish", lambda _b: finished())
    assert done.state == RunState.COMPLETED
    answer = json.loads(ast.literal_eval(str(done.result)))  # the result is kept as its repr
    assert answer == {
        "title": "Ship it",
        "notes": "first line",
        "contact": "ops@example.com",
        "site": None,
        "replicas": 3,
        "code": "XYZ",
        "approved": True,
        "size": "large",
        "region": "us",
        "labels": ["bug", "docs"],
        "teams": ["a", "c"],
        "day": "2026-12-24",
        "at": "09:30:00",
        "starts": "2026-12-01T13:30:00Z",
        "owner": "U0BOB",
        "reviewers": ["U0CAROL"],
        "channel": "C0GENERAL",
    }


def test_a_form_the_app_refuses_says_at_its_top_which_input_to_fix(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    """The app's verdict comes back as the form again, its message under the input; with the
    input far below, the form looked unchanged, as if Submit had done nothing."""
    run = demo_bot.engine.submit("everything", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + "?as=U0ALICE")
    button(browser, "Provide input").click()
    modal = open_modal(browser)
    type_into(modal, "Title", "Ship it")
    type_into(modal, "Contact", "ops@example.com")
    type_into(modal, "Code", "abc")  # the pattern is checked by the app, not the client
    choose(modal, "Owner", "@bob")
    modal.find_element(By.CSS_SELECTOR, "[data-submit]").click()

    def refused(b: WebDriver) -> WebElement | None:
        shown = open_modal(b)  # "Submitting..." until the form comes back
        fields = shown.find_elements(By.CSS_SELECTOR, "[data-field]")
        return shown if fields and "⚠️" in hint_under(shown, "Code") else None

    modal = wait(browser, "the form back with the app's error", refused)
    body = modal.find_element(By.CSS_SELECTOR, ".modal-body")
    code = field(modal, "Code")
    below = browser.execute_script(
        "return arguments[0].getBoundingClientRect().top >= arguments[1].getBoundingClientRect().bottom",
        code,
        body,
    )
    assert below, "Code is in view anyway; the form is too short to show the problem"
    shown = browser.execute_script(
        "const b = arguments[0].getBoundingClientRect();"
        "return Array.from(arguments[0].querySelectorAll('.sk-context')).filter((c) => {"
        "  const r = c.getBoundingClientRect(); return r.top >= b.top && r.bottom <= b.bottom;"
        "}).map((c) => c.innerText).join('\\n');",
        body,
    )
    assert "⚠️" in shown and "Code" in shown, shown


def test_a_double_click_on_submit_sends_the_answer_once(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    """As Slack's Submit does: the second click sent the answer again, and its outcome ("This
    input was already answered by @alice") replaced "Answer recorded", as if hers were lost."""
    run = demo_bot.engine.submit("greet-user", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + "?as=U0ALICE")
    button(browser, "Provide input").click()
    modal = open_modal(browser)
    type_into(modal, "Name", "zed")
    # Counts the submissions the page sends (each is sent at once, within its click).
    browser.execute_script(
        "window.submissions = 0; const send = window.fetch;"
        "window.fetch = (url, options) => {"
        "  if (url === '/submit') window.submissions += 1; return send(url, options); };"
    )
    ActionChains(browser).double_click(
        modal.find_element(By.CSS_SELECTOR, "[data-submit]")
    ).perform()
    assert browser.execute_script("return window.submissions") == 1
    outcome_modal(browser, "Answer recorded")
    done = wait(
        browser,
        "the run to finish",
        lambda _b: (current := demo_bot.engine.get_run(run.id)).state.is_final and current,
    )
    assert "Hello, zed!" in str(done.result)
    assert "Answer recorded" in open_modal(browser).text


def test_a_double_click_on_a_button_in_a_message_sends_one_click(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    """As Slack's buttons do while the app answers: the second click on a decision answered
    again, and the app told her the input was "already answered by @alice"."""
    run = demo_bot.engine.submit("long-decision", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + "?as=U0ALICE")
    yes = wait(
        browser,
        "the decision's yes",
        lambda b: next(
            (
                x
                for x in b.find_elements(By.CSS_SELECTOR, "main .sk-actions button")
                if x.text.endswith(": yes")
            ),
            None,
        ),
    )
    browser.execute_script(
        "window.clicks = 0; const send = window.fetch;"
        "window.fetch = (url, options) => {"
        "  if (url === '/act') window.clicks += 1; return send(url, options); };"
    )
    ActionChains(browser).double_click(yes).perform()
    assert browser.execute_script("return window.clicks") == 1
    done = wait(
        browser,
        "the run to finish",
        lambda _b: (current := demo_bot.engine.get_run(run.id)).state.is_final and current,
    )
    assert done.result is True or "True" in str(done.result)
    wait(
        browser,
        "the prompt to show the answer",
        lambda b: "Answered by @alice" in b.find_element(By.CSS_SELECTOR, "main").text,
    )
    assert "already answered" not in browser.find_element(By.CSS_SELECTOR, "main").text


def test_enter_pressed_twice_sends_the_command_once(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    """As Slack's message box: it empties as the command is sent. It kept the text until the
    app answered, so a second Enter meanwhile started a second run."""
    browser.get(page.url + "?as=U0ALICE")
    browser.execute_script(
        "window.commands = 0; const send = window.fetch;"
        "window.fetch = (url, options) => {"
        "  if (url === '/command') window.commands += 1; return send(url, options); };"
    )
    composer = browser.find_element(By.ID, "composer-text")
    composer.send_keys("/runs start greet-user", Keys.ENTER, Keys.ENTER)
    assert browser.execute_script("return window.commands") == 1
    wait(
        browser,
        "the run started",
        lambda b: "Started greet-user run" in b.find_element(By.CSS_SELECTOR, "main").text,
    )
    assert composer.get_attribute("value") == ""

    # What the sandbox refuses to send stays in the box, to be corrected.
    composer.send_keys("runs start greet-user", Keys.ENTER)
    # The refusal itself: another notice (the page's poll timing out on a busy machine)
    # may show first, while the box is empty between sending and the refusal.
    wait(
        browser,
        "the refusal",
        lambda b: "slash commands only" in b.find_element(By.ID, "toast").text,
    )
    wait(
        browser,
        "the refused text back in the box",
        lambda b: composer.get_attribute("value") == "runs start greet-user",
    )


def test_new_messages_appear_without_a_reload(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    browser.get(page.url + "?as=U0BOB")
    browser.execute_script("window.sameDocument = true")
    run = demo_bot.engine.submit("greet-user", {}, started_by="U0CAROL")
    wait(
        browser,
        "the new prompt",
        lambda b: run.id[:8] in b.find_element(By.CSS_SELECTOR, "main").text,
    )
    assert browser.execute_script("return window.sameDocument") is True


def test_ephemeral_messages_show_only_to_their_user(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    demo_bot.engine.submit("greet-user", {}, started_by="U0CAROL")
    browser.get(page.url + "?as=U0ALICE")
    composer = browser.find_element(By.ID, "composer-text")
    composer.send_keys("/runs help")
    browser.find_element(By.CSS_SELECTOR, "#composer button").click()
    note = wait(
        browser,
        "the ephemeral answer",
        lambda b: b.find_element(By.CSS_SELECTOR, "main .msg.ephemeral"),
    )
    assert "Only visible to you" in note.text
    assert "/runs start" in note.text

    Select(browser.find_element(By.ID, "who")).select_by_visible_text("@bob")
    wait(browser, "bob's view", lambda b: "U0BOB" in b.current_url)
    assert not browser.find_elements(By.CSS_SELECTOR, "main .msg.ephemeral")


def test_a_confirm_dialog_asks_before_the_click_is_sent(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    run = demo_bot.engine.submit("greet-user", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    # A message as an app posts it, with the bot's own cancel button behind a confirm.
    demo_bot.slack.client().chat_postMessage(
        channel="C0GENERAL",
        text="Cancel?",
        blocks=[
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ids.CANCEL_RUN,
                        "value": run.id,
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Cancel run"},
                        "confirm": {
                            "title": {"type": "plain_text", "text": "Cancel this run?"},
                            "text": {"type": "mrkdwn", "text": "It *stops* for good."},
                            "confirm": {"type": "plain_text", "text": "Cancel it"},
                            "deny": {"type": "plain_text", "text": "Keep it"},
                        },
                    }
                ],
            }
        ],
    )
    browser.get(page.url + "?as=U0ALICE")
    button(browser, "Cancel run").click()
    dialog = wait(
        browser, "the confirm dialog", lambda b: b.find_element(By.CSS_SELECTOR, "dialog[open]")
    )
    assert "Cancel this run?" in dialog.text and "It stops for good." in dialog.text
    dialog.find_element(By.XPATH, ".//button[normalize-space()='Keep it']").click()
    wait(browser, "the dialog to close", gone("dialog[open]"))
    assert demo_bot.engine.get_run(run.id).state.is_waiting

    button(browser, "Cancel run").click()
    dialog = wait(
        browser, "the confirm dialog", lambda b: b.find_element(By.CSS_SELECTOR, "dialog[open]")
    )
    dialog.find_element(By.XPATH, ".//button[normalize-space()='Cancel it']").click()
    wait(
        browser,
        "the run to be cancelled",
        lambda _b: demo_bot.engine.get_run(run.id).state == RunState.CANCELLED,
    )
    wait(
        browser, "the answer", lambda b: "Cancelled" in b.find_element(By.CSS_SELECTOR, "main").text
    )


def test_the_home_tab_shows_what_the_app_published(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    demo_bot.engine.submit("greet-user", {}, started_by="U0CAROL")
    browser.get(page.url + "?as=U0ALICE")
    # Opening the tab sends app_home_opened, as Slack does; the bot publishes its Home.
    browser.find_element(By.CSS_SELECTOR, "[data-open-home]").click()
    published = demo_bot.slack.wait_for(lambda ws: ws.home_view("U0ALICE"), timeout=40)
    texts = [
        b["text"]["text"]
        for b in published.blocks
        if b.get("type") in ("header", "section") and isinstance(b.get("text"), dict)
    ]
    assert texts, "the bot's Home has no header or section to look for"
    wait(browser, "the Home tab", lambda b: b.find_element(By.CSS_SELECTOR, ".home-view"))
    wait(
        browser,
        "the bot's Home on the page",
        lambda b: (
            texts[0].replace("*", "")[:20] in b.find_element(By.CSS_SELECTOR, ".home-view").text
        ),
    )
    assert demo_bot.slack.calls("views.publish")

    if demo_bot.slack.home_view("U0BOB") is None:
        Select(browser.find_element(By.ID, "who")).select_by_visible_text("@bob")
        wait(browser, "bob's Home", lambda b: "U0BOB" in b.current_url)
        assert "has not published a Home tab" in browser.find_element(By.CSS_SELECTOR, "main").text


def _in_modal(browser: WebDriver) -> bool:
    return bool(browser.execute_script("return !!document.activeElement.closest('.modal')"))


def test_an_open_modal_has_the_keyboard(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    """As in Slack: focus moves into the modal, Tab stays in it (Enter on a button behind
    it would send that click), and Escape closes it, giving the keyboard back to the button
    that opened it."""
    run = demo_bot.engine.submit("get-shirt-order", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + "?as=U0ALICE")
    button(browser, "Provide input").send_keys(Keys.ENTER)
    open_modal(browser)
    wait(browser, "focus in the modal", _in_modal)
    assert browser.switch_to.active_element.get_attribute("value") == "small"  # the first field
    for _ in range(12):  # more stops than the modal has: round it, never behind it
        ActionChains(browser).send_keys(Keys.TAB).perform()
        assert _in_modal(browser), browser.switch_to.active_element.get_attribute("outerHTML")
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    wait(browser, "the modal to close", gone(".modal"))
    assert demo_bot.slack.workspace.view_stack("U0ALICE") == []
    # Behind it again, the keyboard is where it was: Enter opens the form again.
    wait(
        browser,
        "the keyboard back on the button",
        lambda b: b.switch_to.active_element.text == "Provide input",
    )
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    open_modal(browser)
    wait(browser, "focus in the reopened modal", _in_modal)


def test_another_user_can_be_picked_while_a_modal_is_open(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    """The modal's overlay covered the user picker: to act as someone else, the form had to
    be closed (and what was typed in it lost) first. Each user's modal is their own."""
    run = demo_bot.engine.submit("get-shirt-order", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + "?as=U0ALICE")
    button(browser, "Provide input").click()
    open_modal(browser)
    who = browser.find_element(By.ID, "who")
    who.click()  # as a person does: refused while something covers it
    Select(who).select_by_visible_text("@bob")
    wait(browser, "Bob's page", lambda b: "as=U0BOB" in b.current_url)
    wait(browser, "Bob's page without Alice's modal", gone(".modal"))
    Select(browser.find_element(By.ID, "who")).select_by_visible_text("@alice")
    wait(browser, "Alice's page", lambda b: "as=U0ALICE" in b.current_url)
    open_modal(browser)
    assert len(demo_bot.slack.workspace.view_stack("U0ALICE")) == 1


def test_every_input_in_a_modal_is_named_by_its_label(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    """Clicking a label puts the caret in its input, and a screen reader names each input
    (and each group of choices) by the label above it, as in Slack."""
    run = demo_bot.engine.submit("everything", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + "?as=U0ALICE")
    button(browser, "Provide input").click()
    modal = open_modal(browser)

    field(modal, "Contact").find_element(By.CSS_SELECTOR, ".sk-label").click()
    focused = browser.switch_to.active_element
    assert focused.get_attribute("data-block-id") == "field:contact"

    unnamed = []
    for block in modal.find_elements(By.CSS_SELECTOR, "[data-field]"):
        label = block.find_element(By.CSS_SELECTOR, ".sk-label").text
        control = block.find_element(By.CSS_SELECTOR, "[data-kind]")
        role = control.aria_role
        if control.get_attribute("data-kind") in ("checkboxes", "radio_buttons"):
            assert role in ("group", "radiogroup"), (label, role)
        if control.accessible_name.strip() != label:
            unnamed.append((label, control.accessible_name))
    assert unnamed == []


def _toast(browser: WebDriver) -> str:
    shown = browser.find_element(By.ID, "toast")
    return str(shown.text) if shown.is_displayed() else ""


def test_the_page_says_while_the_sandbox_is_not_answering_and_recovers_when_it_is_back(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    run = demo_bot.engine.submit("greet-user", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + "?as=U0ALICE")
    button(browser, "Provide input")
    port = page.port
    page.stop()  # the sandbox stopped (Ctrl-C, a crash, a restart)

    said = wait(browser, "word that the sandbox is down", lambda b: _toast(b))
    assert "not answering" in said and "Failed to fetch" not in said, said
    assert "nothing you do here is sent" in said
    browser.execute_script("document.querySelector('#toast').hidden = true")
    button(browser, "Provide input").click()  # a click while it is down says so again
    wait(browser, "word that the click was not sent", lambda b: "not answering" in _toast(b))
    assert demo_bot.engine.get_run(run.id).state.is_waiting

    back = SandboxPage(demo_bot.slack.workspace, demo_bot.driver, port=port)
    back.start()
    try:
        wait(browser, "the notice to go once the sandbox answers", lambda b: not _toast(b))
        button(browser, "Provide input").click()
        open_modal(browser)
    finally:
        back.stop()


def _overflows(browser: WebDriver, selector: str) -> int:
    """How many pixels ``selector`` is wider than its box (0: it wraps, nothing to scroll)."""
    return int(
        browser.execute_script(
            "const el = document.querySelector(arguments[0]);"
            "return el.scrollWidth - el.clientWidth;",
            selector,
        )
    )


def test_a_word_longer_than_a_line_wraps_instead_of_widening_the_page(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    run = demo_bot.engine.submit("long-words", {}, started_by="U0CAROL")
    prompt = demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + f"?as=U0ALICE&thread={prompt.ts}")  # the prompt in its thread too
    button(browser, "Provide input")
    assert _overflows(browser, "main .messages") == 0
    assert _overflows(browser, ".thread .pane-body") == 0

    button(browser, "Provide input", within="main").click()
    modal = open_modal(browser)
    assert "Target https://example.com/" in field(modal, "Target").text
    assert _overflows(browser, ".modal-body") == 0


def test_right_to_left_text_is_set_right_to_left_and_left_to_right_text_is_not(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    run = demo_bot.engine.submit("right-to-left", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + "?as=U0ALICE")
    button(browser, "Provide input").click()
    modal = open_modal(browser)
    note = field(modal, "ملاحظة")

    def rtl(selector: str, within: WebElement) -> bool:
        element = within.find_element(By.CSS_SELECTOR, selector)
        return bool(browser.execute_script("return arguments[0].matches(':dir(rtl)')", element))

    assert rtl(".sk-label", note) and rtl(".sk-hint", note)
    assert rtl(".sk-text", modal)  # the description
    typed = note.find_element(By.CSS_SELECTOR, ".sk-input")
    typed.send_keys("شكرا")
    assert rtl(".sk-input", note)
    typed.clear()
    typed.send_keys("thanks")
    assert not rtl(".sk-input", note)


def test_an_error_under_a_group_of_choices_takes_the_keyboard_there_and_is_read_with_it(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    """Submitted with nothing chosen, the form says so under Size and Color: the keyboard
    lands in Size, whose error (and hint) a screen reader reads with it."""
    run = demo_bot.engine.submit("get-shirt-order", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + "?as=U0ALICE")
    button(browser, "Provide input").send_keys(Keys.ENTER)
    open_modal(browser).find_element(By.CSS_SELECTOR, "[data-submit]").send_keys(Keys.ENTER)
    wait(browser, "the client's errors", lambda b: error_under(open_modal(b), "Size"))

    focused = wait(
        browser,
        "the keyboard in the first input in error",
        lambda b: (
            b.switch_to.active_element.get_attribute("name") == "field:size/value"
            and b.switch_to.active_element
        ),
    )
    group = focused.find_element(By.XPATH, "ancestor::*[@data-kind][1]")
    assert group.get_attribute("aria-invalid") == "true"
    described = (group.get_attribute("aria-describedby") or "").split()
    said = [browser.find_element(By.ID, ref).text for ref in described]
    assert "Please complete this required field." in said


def test_answering_a_run_halfway_up_a_busy_channel_keeps_the_channel_where_it_was(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    """Dozens of runs waiting: the one answered is updated in place, and the channel stays
    scrolled to it instead of jumping to the top."""
    runs = [demo_bot.engine.submit("greet-user", {}, started_by="U0CAROL") for _ in range(30)]
    prompts = [demo_bot.root_message(run.id, timeout=40) for run in runs]
    browser.get(page.url + "?as=U0ALICE")
    shown = wait(
        browser,
        "a prompt halfway up",
        lambda b: b.find_element(By.CSS_SELECTOR, f'main .msg[data-ts="{prompts[12].ts}"]'),
    )
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", shown)
    scrolled = browser.execute_script("return document.querySelector('main .messages').scrollTop")
    assert scrolled > 0
    shown.find_element(By.XPATH, ".//button[normalize-space()='Provide input']").click()
    modal = open_modal(browser)
    assert runs[12].id[:8] in modal.text
    type_into(modal, "Name", "zed")
    modal.find_element(By.CSS_SELECTOR, "[data-submit]").click()
    outcome_modal(browser, "Answer recorded").find_element(
        By.CSS_SELECTOR, "[data-close-modal]"
    ).click()
    wait(browser, "the modal to close", gone(".modal"))
    wait(
        browser,
        "the prompt to show the answer",
        lambda b: (
            "Provide input"
            not in b.find_element(By.CSS_SELECTOR, f'main .msg[data-ts="{prompts[12].ts}"]').text
        ),
    )
    now = browser.execute_script("return document.querySelector('main .messages').scrollTop")
    assert abs(now - scrolled) < 40, (scrolled, now)


def _in_view(browser: WebDriver, ts: str) -> bool:
    """True when the channel's message ``ts`` is within the part of it scrolled into view
    (looked up afresh: the page redraws the channel as it changes)."""
    return bool(
        browser.execute_script(
            "const m = document.querySelector(`main .msg[data-ts='${arguments[0]}']`);"
            "if (!m) return false;"
            "const r = m.getBoundingClientRect(), p = m.closest('.pane-body').getBoundingClientRect();"
            "return r.height > 0 && r.top >= p.top && r.bottom <= p.bottom;",
            ts,
        )
    )


def test_the_answer_to_a_click_halfway_up_a_busy_channel_is_announced_at_its_foot(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    """The app answers a click with a message at the channel's bottom; scrolled up to the
    prompt, nothing seemed to happen. A button at the foot says a message came, and goes to it."""
    mine = demo_bot.engine.submit("deploy-production", {}, started_by="U0ALICE")
    prompt = demo_bot.root_message(mine.id, timeout=40)
    for _ in range(20):
        demo_bot.root_message(
            demo_bot.engine.submit("greet-user", {}, started_by="U0CAROL").id, timeout=40
        )
    browser.get(page.url + "?as=U0ALICE")
    shown = wait(
        browser,
        "alice's deploy, high up the channel",
        lambda b: b.find_element(By.CSS_SELECTOR, f'main .msg[data-ts="{prompt.ts}"]'),
    )
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", shown)
    before = {
        m.get_attribute("data-ts") for m in browser.find_elements(By.CSS_SELECTOR, "main .msg")
    }
    # She started it, and it forbids its starter to answer: the app says so below.
    shown.find_element(By.XPATH, ".//button[normalize-space()='Provide input']").click()
    answer = wait(
        browser,
        "the app's answer",
        lambda b: next(
            (
                m.get_attribute("data-ts")
                for m in b.find_elements(By.CSS_SELECTOR, "main .msg")
                if m.get_attribute("data-ts") not in before
                and "someone else has to answer" in m.text
            ),
            None,
        ),
    )
    assert not _in_view(browser, answer)
    assert _in_view(browser, prompt.ts), "the channel jumped away from where she was"

    pill = wait(
        browser,
        "the button counting the new message",
        lambda b: next(
            (
                p
                for p in b.find_elements(By.CSS_SELECTOR, ".new-below")
                if p.text == "↓ 1 new message"
            ),
            None,
        ),
    )
    pill.click()
    wait(browser, "the answer scrolled into view", lambda b: _in_view(b, answer))
    wait(browser, "the button to go", gone(".new-below"))


def test_what_was_typed_into_a_modal_survives_reloading_the_page(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot
) -> None:
    """The modal stays open across a reload (the sandbox holds it); so does what was typed
    and chosen in it, though nothing reaches the app before Submit."""
    run = demo_bot.engine.submit("everything", {}, started_by="U0CAROL")
    demo_bot.root_message(run.id, timeout=40)
    browser.get(page.url + "?as=U0ALICE")
    button(browser, "Provide input").click()
    modal = open_modal(browser)
    type_into(modal, "Title", "Typed before the reload")
    type_into(modal, "Notes", "")
    choose(modal, "Size", "Large")
    choose(modal, "Labels", "Docs")
    choose(modal, "Teams", "B", "D")
    choose(modal, "Owner", "@bob")

    browser.refresh()
    modal = open_modal(browser)
    title = field(modal, "Title").find_element(By.TAG_NAME, "input")
    assert title.get_attribute("value") == "Typed before the reload"
    assert field(modal, "Notes").find_element(By.TAG_NAME, "textarea").get_attribute("value") == ""
    assert chosen(modal, "Size") == ["Large"]
    assert chosen(modal, "Labels") == ["Bug", "Docs"]
    assert chosen(modal, "Teams") == ["B", "D"]
    assert chosen(modal, "Owner") == ["@bob"]
    assert chosen(modal, "Region") == ["Eu"]  # untouched: as the app set it

    # Closed and opened again, the form starts afresh, as in Slack.
    modal.find_element(By.CSS_SELECTOR, "footer [data-close-modal]").click()
    wait(browser, "the modal to close", gone(".modal"))
    button(browser, "Provide input").click()
    modal = open_modal(browser)
    browser.refresh()
    modal = open_modal(browser)
    assert field(modal, "Title").find_element(By.TAG_NAME, "input").get_attribute("value") == ""


def test_what_was_typed_into_a_modal_is_not_put_into_a_restarted_sandboxs_form(
    browser: WebDriver, page: SandboxPage, demo_bot: RunningBot, tmp_path: Path
) -> None:
    """A restarted sandbox numbers its views afresh: the same steps give its form the old
    one's id, and a reload filled it in with what was typed into the old form."""
    flows = ["signoff.bot.demo.flows"]

    def open_form(bot: RunningBot) -> WebElement:
        run = bot.engine.submit("greet-user", {}, started_by="U0CAROL")
        prompt = bot.root_message(run.id, timeout=40)
        wait(
            browser,
            "the run's prompt",
            lambda b: b.find_element(By.CSS_SELECTOR, f'main .msg[data-ts="{prompt.ts}"] button'),
        )
        button(browser, "Provide input").click()
        return open_modal(browser)

    browser.get(page.url + "?as=U0ALICE")
    old = open_form(demo_bot)
    type_into(old, "Name", "typed into the old sandbox")
    view_id = old.get_attribute("data-view-id")
    page.stop()

    with running_bot(flows, database_url=f"sqlite:///{tmp_path}/restarted.db") as again:
        served = SandboxPage(again.slack.workspace, again.driver, port=page.port)
        served.start()
        try:
            # The tab reconnects by itself and shows the new sandbox.
            wait(browser, "the old form to go", gone(".modal"))
            new = open_form(again)
            assert new.get_attribute("data-view-id") == view_id
            browser.refresh()
            name = field(open_modal(browser), "Name").find_element(By.TAG_NAME, "input")
            assert name.get_attribute("value") == "anonymous"  # as the app set it
        finally:
            served.stop()
