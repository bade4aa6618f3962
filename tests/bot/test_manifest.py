"""``signoff manifest``: built from the code's commands and the Web API methods it calls, so
that ``manifest.yml``, the code and the sandbox's scopes cannot drift apart."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from slack_sdk import WebClient

from signoff.bot.cli.main import main
from signoff.bot.sandbox import SlackSandbox
from signoff.bot.slack.manifest import METHOD_SCOPES, bot_scopes, build, render

ROOT = Path(__file__).resolve().parents[2]
#: the sandbox and the demo drive Slack's side; they are not the app
NOT_THE_APP = ("sandbox", "demo")


def parse(path: Path) -> ast.Module:
    # CPython 3.11 can raise SystemError ("AST constructor recursion depth mismatch") when
    # another test in this process changed the recursion limit; parsing again succeeds.
    try:
        return ast.parse(path.read_text())
    except SystemError:
        return ast.parse(path.read_text())


def web_api_methods_called() -> dict[str, str]:
    """Every ``client.chat_postMessage(...)``-style call in the app's code: method -> where."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        relative = path.relative_to(ROOT / "bot")
        if relative.parts[0].split(".")[0] in NOT_THE_APP:
            continue
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                if not name.startswith("_") and name in vars(WebClient):
                    found.setdefault(name.replace("_", "."), f"bot/{relative}:{node.lineno}")
    return found


def test_manifest_yml_is_the_commands_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest"]) == 0
    printed = capsys.readouterr().out
    assert printed == render()
    assert (ROOT / "manifest.yml").read_text() == printed, (
        "regenerate: signoff manifest > manifest.yml"
    )


def test_every_web_api_method_the_code_calls_has_its_scope_and_no_more() -> None:
    called = web_api_methods_called()
    missing = {m: where for m, where in called.items() if m not in METHOD_SCOPES}
    assert not missing, f"add these methods and their scopes to bot/slack/manifest.py: {missing}"
    unused = sorted(set(METHOD_SCOPES) - set(called))
    assert not unused, f"bot/slack/manifest.py lists methods the code never calls: {unused}"


def test_the_sandbox_grants_the_manifests_scopes() -> None:
    with SlackSandbox() as slack:
        answer = slack.client().auth_test()
    assert sorted(answer.headers["x-oauth-scopes"].split(",")) == bot_scopes()


def test_socket_mode_and_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest", "--socket-mode"]) == 0
    socket = yaml.safe_load(capsys.readouterr().out)
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in socket["settings"]["interactivity"]
    assert all("url" not in c for c in socket["features"]["slash_commands"])
    assert main(["manifest", "--url", "https://approvals.acme.test/"]) == 0
    http = yaml.safe_load(capsys.readouterr().out)
    assert http["settings"]["interactivity"]["request_url"] == (
        "https://approvals.acme.test/slack/events"
    )
    assert http == build(url="https://approvals.acme.test")
    assert main(["manifest", "--url", "ftp://x"]) == 2
    assert "--url" in capsys.readouterr().err
    # the request URL itself: it became .../slack/events/slack/events, answered by nothing
    assert main(["manifest", "--url", "https://approvals.acme.test/slack/events"]) == 2
    assert (
        "/slack/events is added to it; give the base URL, https://approvals.acme.test"
        in capsys.readouterr().err
    )
    # it was dropped without a word
    assert main(["manifest", "--socket-mode", "--url", "https://approvals.acme.test"]) == 2
    assert "--url is for HTTP mode; a --socket-mode manifest has no URLs" in capsys.readouterr().err


def listeners(kind: str) -> set[object]:
    """What the app's ``@app.<kind>(...)`` listeners (``event``, ``message``) listen to."""
    listened = set()
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if path.relative_to(ROOT / "bot").parts[0].split(".")[0] in NOT_THE_APP:
            continue
        for node in ast.walk(parse(path)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == kind
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "app"
            ):
                first = node.args[0] if node.args else None
                listened.add(first.value if isinstance(first, ast.Constant) else None)
    return listened


def test_every_event_the_app_listens_to_is_subscribed() -> None:
    listened = listeners("event")
    assert listened == set(build()["settings"]["event_subscriptions"]["bot_events"])


def test_the_messages_tab_shows_the_apps_messages_but_takes_none() -> None:
    """Direct prompts (notify="dm") and reassignments arrive in the Messages tab; the app
    reads no messages, so what someone typed there went unanswered."""
    assert not listeners("message") and "message" not in listeners("event")
    app_home = build()["features"]["app_home"]
    assert app_home["messages_tab_enabled"] is True
    assert app_home["messages_tab_read_only_enabled"] is True


def test_the_header_names_the_module_that_builds_the_manifest() -> None:
    named = re.search(r"\((bot/[\w/]+\.py)\)", render())
    assert named is not None and (ROOT / named.group(1)).is_file()
