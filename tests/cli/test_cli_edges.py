"""The command line tells the truth: verdicts, waiting, groups, and flows that move or grow."""

from __future__ import annotations

import enum
import json
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Literal

import pydantic
import pytest

from signoff.engine import Engine, EngineSettings, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from signoff.engine.store.wakeups import LocalWakeups
from tests.cli.in_process import run_cli
from tests.cli.test_cli import Cli, error_line
from tests.engine.test_model_validators import strips_a_note
from tests.support.forwarding import free_port
from tests.support.running import start, waiting
from tests.support.waiting import wait_for

FLOWS = """
import pydantic

from signoff.engine import flow, pause_flow_run
from signoff.engine.input import RunInput


class Shirt(RunInput):
    size: str
    color: str

    @pydantic.field_validator("color")
    @classmethod
    def in_stock(cls, value, info):
        if value == "green" and info.data.get("size") == "small":
            raise ValueError("Green is only in stock for medium and large.")
        return value


@flow(name="edge-shirt", approvers=["U0BOB", "S0SRE"])
def shirt() -> str:
    answer = pause_flow_run(wait_for_input=Shirt)
    return f"{answer.size} {answer.color}"


@flow(name="edge-fail")
def fail() -> None:
    pause_flow_run(wait_for_input=bool)
    raise RuntimeError("boom after the answer")
"""


#: several CLI processes per test, each seconds to start on a busy machine
pytestmark = pytest.mark.timeout(600)


def use(cli: Cli, flows: str) -> None:
    cli.flows.write_text(flows)


def test_resume_exits_1_with_the_models_reasons_when_it_refuses(cli: Cli) -> None:
    use(cli, FLOWS)
    run_id = cli.submit("edge-shirt")
    cli.start_worker()
    cli.wait_for_state(run_id, "paused")

    refused = cli(
        "runs", "resume", run_id, "--input", '{"size": "small", "color": "green"}', "--as", "U0BOB"
    )
    assert refused.returncode == 1, refused.stdout
    assert "refused the answer" in error_line(refused)
    assert "Green is only in stock for medium and large." in refused.stderr
    assert cli.show(run_id)["pauses"][0]["status"] == "rejected"

    # The flow does not loop, so the run failed; a good answer to a new run is accepted.
    second = cli.submit("edge-shirt")
    cli.wait_for_state(second, "paused")
    out = cli.ok(
        "runs", "resume", second, "--input", '{"size": "large", "color": "red"}', "--as", "U0BOB"
    )
    assert out == f"resumed {second} (input '1') as U0BOB; the flow accepted it\n"
    engine = Engine(EngineSettings.load(database_url=cli.env["SIGNOFF_DATABASE_URL"]))
    try:
        # The audit trail says the answer came from the command line.
        answers = [r for r in engine.audit_trail(second) if r.actor_id == "U0BOB"]
        assert answers and {r.via for r in answers} == {"cli"}
    finally:
        engine.close()


def test_resume_exits_1_at_once_when_the_models_validator_raises_something_else(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A validator raising AttributeError (``v.strip()`` on None) left no verdict: the
    command waited out --verdict-timeout and exited 0, saying no worker judged it. The
    flow raises it, and the command reports the refusal as it does a ValidationError."""
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", engine.settings.database_url)
    thread, box = start(strips_a_note)
    pause = waiting(engine, "strips-a-note")
    status, out, err = run_cli(
        capsys, "runs", "resume", pause.run_id, "--input", '{"note": null}', "--as", "alice",
        "--verdict-timeout", "20",
    )  # fmt: skip
    assert (status, out) == (1, ""), err
    assert err.splitlines()[-1] == (
        f"error: the flow refused the answer to {pause.run_id} (input '1') as alice: "
        "input: loading the answer raised AttributeError: 'NoneType' object has no "
        "attribute 'strip'"
    )
    thread.join(10)
    assert box == {"result": "flow saw the error"}


def test_as_answers_for_a_group_member_when_told_the_group(cli: Cli) -> None:
    use(cli, FLOWS)
    run_id = cli.submit("edge-shirt")
    cli.start_worker()
    cli.wait_for_state(run_id, "paused")
    answer = '{"size": "large", "color": "black"}'
    refused = cli("runs", "resume", run_id, "--input", answer, "--as", "alice")
    assert "alice may not answer" in error_line(refused)
    out = cli.ok("runs", "resume", run_id, "--input", answer, "--as", "alice", "--group", "S0SRE")
    assert out.startswith(f"resumed {run_id} (input '1') as alice")
    assert cli.wait_for_state(run_id, "completed")["run"]["result"] == "large black"


def test_run_wait_waits_until_the_run_finishes_and_fails_with_it(cli: Cli) -> None:
    use(cli, FLOWS)
    cli.start_worker()
    waiting = cli.popen("run", "edge-fail", "--flows", str(cli.flows), "--wait")
    try:
        engine = Engine(EngineSettings.load(database_url=cli.env["SIGNOFF_DATABASE_URL"]))
        try:
            run_id = wait_for(
                lambda: next(iter(engine.list_runs(states=[RunState.PAUSED])), None),
                timeout=120,
                what="the run to pause",
            ).id
        finally:
            engine.close()
        assert waiting.poll() is None  # a pause is not the end
        cli.ok("runs", "resume", run_id, "--input", '{"value": true}')
        out, _err = waiting.communicate(timeout=180)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 1
    assert out.splitlines() == [
        run_id,
        f"{run_id} failed (Failed: RuntimeError: boom after the answer)",
    ]

    paused = cli("run", "edge-shirt", "--flows", str(cli.flows), "--until", "paused")
    assert paused.returncode == 0, paused.stderr
    paused_id, state = paused.stdout.splitlines()
    assert state.startswith(f"{paused_id} paused")
    again = cli("runs", "wait", paused_id[:8], "--until", "paused")
    assert again.stdout.startswith(f"{paused_id} paused")


def test_run_wait_says_when_no_worker_takes_the_run(cli: Cli) -> None:
    use(cli, FLOWS)
    waiting = cli.popen("run", "edge-shirt", "--flows", str(cli.flows), "--wait")
    try:
        assert waiting.stderr is not None
        line = waiting.stderr.readline()  # blocks until the note, or the process ends
        assert "no worker has taken run" in line and "signoff worker" in line
        assert waiting.poll() is None  # it says so, and keeps waiting
    finally:
        waiting.terminate()
        _out, err = waiting.communicate(timeout=30)
    # SIGTERM ends the wait as Ctrl-C would: the engine closed, its wake-up socket gone.
    assert waiting.returncode == 143, err
    assert err.rstrip().endswith("error: terminated")
    url = cli.env["SIGNOFF_DATABASE_URL"]
    if url.startswith("sqlite"):
        folder = LocalWakeups(url.split(":///", 1)[1]).folder
        left = [entry.name for entry in folder.iterdir()] if folder.exists() else []
        assert not [name for name in left if name.startswith(f"{waiting.pid}-")]


MOVING = """
from dataclasses import dataclass

from signoff.engine import flow, suspend_flow_run, task


@dataclass
class Order:
    id: str
    total: int


@task
def fetch(order_id: str) -> Order:
    return Order(order_id, 120)


@flow(name="edge-refund")
def refund(order_id: str) -> str:
    order = fetch(order_id)
    approved = suspend_flow_run(wait_for_input=bool)
    return f"{order.id} {order.total} {approved}"
"""


def test_a_suspended_run_survives_its_flows_file_moving(cli: Cli, tmp_path: Path) -> None:
    old = tmp_path / "release-1" / "refunds.py"
    old.parent.mkdir()
    old.write_text(MOVING)
    run_id = cli.ok("run", "edge-refund", "--flows", str(old), "--param", "order_id=A-1").strip()
    first = subprocess.Popen(
        [sys.executable, "-m", "signoff.bot.cli", "worker", "--flows", str(old)],
        env=cli.env,
        cwd=cli.tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cli.workers.append((first, tmp_path / "first.log"))  # stopped at the end either way
    cli.wait_for_state(run_id, "suspended")
    first.terminate()
    first.wait(timeout=30)

    # The next release lives elsewhere; the old path is gone.
    new = tmp_path / "release-2" / "refunds.py"
    new.parent.mkdir()
    shutil.move(old, new)
    shutil.rmtree(old.parent)
    cli.ok("runs", "resume", run_id, "--input", '{"value": true}', "--verdict-timeout", "0")
    cli.flows = new
    cli.start_worker()
    done = cli.wait_for_state(run_id, "completed")
    # The task's stored Order (pickled from the old path) came back on the re-run.
    assert done["run"]["result"] == "A-1 120 True"
    assert done["tasks"][0]["attempts"] == 1


def test_flows_from_a_directory_import_modules_beside_them(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "pricing.py").write_text("def price(n: int) -> int:\n    return n * 3\n")
    (folder / "quotes.py").write_text(
        "from signoff import flow\nfrom pricing import price\n\n\n"
        "@flow(name='edge-quote')\ndef quote(n: int) -> int:\n    return price(n)\n"
    )
    (folder / "greet.py").write_text(
        "from signoff import flow\n\n\n@flow(name='edge-greet')\ndef greet() -> str:\n"
        "    return 'hi'\n"
    )
    cli.flows = folder
    cli.start_worker()
    quoted = cli("run", "edge-quote", "--flows", "flows/", "--param", "n=4", "--wait")
    assert quoted.returncode == 0, quoted.stderr
    assert cli.show(quoted.stdout.split()[0])["run"]["result"] == 12
    greeted = cli("run", "edge-greet", "--flows", "flows", "--wait")
    assert greeted.returncode == 0, greeted.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no .py files" in error_line(cli("run", "edge-greet", "--flows", str(empty)))


TEXT_PARAMETERS = """
import enum
from typing import Literal

from signoff.engine import flow


class Build(str, enum.Enum):
    FIRST = "1"
    SECOND = "2"


@flow(name="edge-tag")
def tag(version: str, ticket: str | None = None, build: Build = Build.FIRST,
        env: Literal["1", "2"] = "1", count: int = 1) -> str:
    return f"{version} {ticket} {build.value} {env} {count}"
"""


def test_a_parameter_that_takes_text_keeps_a_value_that_reads_as_a_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ticket=1234`` for a ``str | None`` (or an Enum of strings) was read as the number
    1234 and refused ("Input should be a valid string"), where /runs start keeps it as
    typed; a parameter that is not text still reads JSON."""
    (tmp_path / "flows.py").write_text(TEXT_PARAMETERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", f"sqlite:///{tmp_path / 'params.db'}")
    given = ("version=1.10", "ticket=1234", "build=2", "env=2", "count=3")
    args = [a for pair in given for a in ("--param", pair)]
    status, out, err = run_cli(capsys, "run", "edge-tag", "--flows", "flows.py", *args, "--json")
    assert status == 0, err
    assert json.loads(out)["parameters"] == {
        "version": "1.10", "ticket": "1234", "build": "2", "env": "2", "count": 3
    }  # fmt: skip


class Color(enum.Enum):
    red = "red"
    blue = "blue"


class Paint(RunInput):
    color: Color = Color.red
    shade: Color | None = None
    tone: Literal["red", "blue"] = "red"


@flow(name="edge-paint")
def paint() -> str:
    return pause_flow_run(wait_for_input=Paint, timeout=60).color.value


def test_runs_show_describes_an_enum_field_as_its_values(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An Enum field (a ``$ref`` into the schema's ``$defs``) read ``object``, with no
    choices; it reads as the ``Literal`` of the same strings does, ``| None`` too."""
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", engine.settings.database_url)
    thread, box = start(paint)
    pause = waiting(engine, "edge-paint")
    status, out, err = run_cli(capsys, "runs", "show", pause.run_id)
    assert status == 0, err
    assert '  field color  string; default "red"; one of "red", "blue"\n' in out
    assert '  field shade  string or null; default null; one of "red", "blue"\n' in out
    assert '  field tone   string; default "red"; one of "red", "blue"\n' in out
    engine.resume(pause.run_id, {"color": "blue"}, responder="alice")
    thread.join(10)
    assert box == {"result": "blue"}


DATE_PARAMETERS = """
import datetime
import uuid

from signoff.engine import flow


@flow(name="edge-dated")
def dated(day: datetime.date, until: datetime.date | None = None,
          ticket: uuid.UUID | None = None, note: str | None = None) -> str:
    return f"{day} {until} {ticket} {note}"
"""


def test_null_gives_none_to_a_date_or_uuid_parameter_and_a_date_stays_as_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``until=null`` for a ``date | None`` was kept as the text "null" (a date is a string
    in JSON) and refused ("input is too short"), where ``count=null`` gives None; only text
    keeps ``null`` as typed."""
    (tmp_path / "flows.py").write_text(DATE_PARAMETERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", f"sqlite:///{tmp_path / 'params.db'}")
    given = ("day=2024-01-02", "until=null", "ticket=null", "note=null")
    args = [a for pair in given for a in ("--param", pair)]
    status, out, err = run_cli(capsys, "run", "edge-dated", "--flows", "flows.py", *args, "--json")
    assert status == 0, err
    assert json.loads(out)["parameters"] == {
        "day": "2024-01-02", "until": None, "ticket": None, "note": "null"
    }  # fmt: skip


class Shipment(RunInput):
    to: str

    @pydantic.field_validator("to")
    @classmethod
    def served(cls, value: str) -> str:
        raise ValueError(f"we do not ship to {value}\nask the shop for a quote instead")


@flow(name="edge-shipment")
def shipment() -> str:
    try:
        return pause_flow_run(wait_for_input=Shipment, timeout=60).to
    except pydantic.ValidationError:
        return "refused"


def test_runs_show_gives_a_refusal_of_several_lines_as_lines(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A validator's message of two lines came out on one, its line break written as
    ``\\n``; its second line goes under its first, as a log record's do."""
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", engine.settings.database_url)
    thread, box = start(shipment)
    pause = waiting(engine, "edge-shipment")
    engine.resume(pause.run_id, {"to": "Mars"}, responder="alice")
    thread.join(10)
    assert box == {"result": "refused"}
    status, out, err = run_cli(capsys, "runs", "show", pause.run_id)
    assert status == 0, err
    [first] = [line for line in out.splitlines() if "error to" in line]
    after = out.splitlines()[out.splitlines().index(first) + 1]
    assert first == "    error to  we do not ship to Mars"
    assert after == " " * first.index("we") + "ask the shop for a quote instead"


def test_a_worker_answers_health_probes_and_scrapes_on_the_port_it_is_given(cli: Cli) -> None:
    """A worker deployed on its own had nothing an orchestrator could probe, nor anything
    Prometheus could scrape."""
    port = free_port()
    worker = cli.start_worker(options=["--health-port", str(port)])
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return fetch(f"{base}/readyz")[0] == 200
        except OSError:  # not listening yet
            return False

    wait_for(ready, timeout=60, what="the worker ready")
    assert fetch(f"{base}/healthz") == (200, '{"ok": true}')
    run_id = cli.submit("cli-approve", "--param", "n=1")
    cli.wait_for_state(run_id, "paused")
    status, metrics = fetch(f"{base}/metrics")
    assert status == 200 and 'signoff_runs{state="paused"} 1.0' in metrics
    assert "signoff_waiting_inputs 1.0" in metrics
    assert cli.stop_workers() == [0]
    assert worker.poll() == 0
    with pytest.raises(OSError):
        fetch(f"{base}/healthz")


def test_a_worker_whose_health_port_is_taken_says_so_and_takes_no_run(cli: Cli) -> None:
    run_id = cli.submit("cli-approve", "--param", "n=1")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = cli.start_worker(options=["--health-port", str(port)])
        assert worker.wait(60) == 1
    log = cli.workers[0][1].read_text()
    assert log.endswith(f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n")
    assert "worker started" not in log
    assert cli.show(run_id)["run"]["state"] == "scheduled"
    refused = cli("worker", "--health-host", "0.0.0.0")
    assert refused.returncode == 2 and "--health-host needs --health-port" in refused.stderr


def fetch(url: str) -> tuple[int, str]:
    """The status and body of ``GET url`` (an HTTP error status included)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
