"""`signoff demo` as a newcomer runs it: a subprocess whose transcript tells the whole story."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import unquote

from bot.sandbox.render import BLOCK_KIT_BUILDER as BUILDER


def signoff(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        input=stdin,
    )


def test_demo_prints_the_whole_loop(tmp_path: Path) -> None:
    done = signoff("demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # the channel messages, with the prompt button
    assert "*greet-user* run" in out and "[ Provide input ]" in out
    # each modal as a readable form, prefilled, with a Block Kit Builder link
    assert 'Name (optional): [text: "anonymous"]' in out
    links = re.findall(r"^\[\d+\] [\w-]+ run \w{8}: (https://\S+)$", out, re.MULTILINE)
    assert len(links) == out.count("── modal ") == 4
    first = json.loads(unquote(links[0].removeprefix(BUILDER)))  # whole, so it opens
    assert first["type"] == "modal" and first["title"]["text"] == "greet-user"
    # the in-thread error for the model's own validator, and the prefilled re-prompt
    assert "@alice's answer was not accepted" in out
    assert "Green is only in-stock for medium, large, and XL sizes." in out
    assert "needs input again" in out
    assert "Size: (x) Small" in out and "Color: ( ) Red  (x) Green" in out
    # a structural error inside the modal, and a refused non-approver
    assert "field:reason: must be at least 3 characters long" in out
    assert "(only alice sees) Only @bob may answer this." in out
    # the deploy's reminder before its deadline, naming who may answer
    assert (
        ":bell: Reminder: *deploy-production* run" in out
        and "@bob (not @carol, who started it)" in out
    )
    # the final states, with who answered
    assert "greet-user         completed  result='Hello, Ada!'  input 1 accepted by @alice" in out
    assert "input 1 rejected by @alice, input 2 accepted by @bob" in out
    assert "deploy-production  completed" in out
    assert "demo finished in" in done.stderr


def test_demo_runs_your_flows_with_answers_from_a_file(tmp_path: Path) -> None:
    flows = tmp_path / "myflows.py"
    flows.write_text(
        textwrap.dedent(
            """
            from engine import flow, pause_flow_run
            from engine.input import RunInput

            class Refund(RunInput):
                amount: int
                approve: bool = False

            @flow
            def refund_customer() -> str:
                answer = pause_flow_run(wait_for_input=Refund)
                return f"refunded {answer.amount}" if answer.approve else "kept"
            """
        )
    )
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"refund-customer": [{"amount": 30, "approve": True}]}))
    done = signoff("demo", "--flows", str(flows), "--answers", str(answers), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Amount: [number" in done.stdout
    assert "refund-customer    completed  result='refunded 30'" in done.stdout


def test_demo_asks_at_the_prompt_for_flows_without_answers(tmp_path: Path) -> None:
    flows = tmp_path / "ask.py"
    flows.write_text(
        textwrap.dedent(
            """
            from engine import flow, pause_flow_run

            @flow
            def ask_twice(greeting: str) -> str:
                first = pause_flow_run(wait_for_input=int)
                second = pause_flow_run(wait_for_input=int)
                return f"{greeting} {first + second}"
            """
        )
    )
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"ask-twice": {"parameters": {"greeting": "sum"}}}))
    done = signoff(
        "demo",
        "--flows",
        str(flows),
        "--answers",
        str(answers),
        cwd=tmp_path,
        stdin='{"value": 2}\n{"value": 40}\n',
    )
    assert done.returncode == 0, done.stderr
    assert "JSON answer for ask-twice input 1" in done.stderr
    assert "ask-twice          completed  result='sum 42'" in done.stdout


def test_demo_reports_a_missing_flows_file_in_one_line(tmp_path: Path) -> None:
    done = signoff("demo", "--flows", str(tmp_path / "nope.py"), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: cannot load flows from")
    assert len(done.stderr.strip().splitlines()) == 1
