"""``signoff manifest``: built from the code's commands and the Web API methods it calls, so
that ``manifest.yml``, the code and the sandbox's scopes cannot drift apart."""

from __future__ import annotations

import ast
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
    assert not missing, f"add these methods and their scopes to bot/manifest.py: {missing}"
    unused = sorted(set(METHOD_SCOPES) - set(called))
    assert not unused, f"bot/manifest.py lists methods the code never calls: {unused}"


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


def test_every_event_the_app_listens_to_is_subscribed() -> None:
    listened = set()
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if path.relative_to(ROOT / "bot").parts[0].split(".")[0] in NOT_THE_APP:
            continue
        for node in ast.walk(parse(path)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "event"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                listened.add(node.args[0].value)
    assert listened == set(build()["settings"]["event_subscriptions"]["bot_events"])
