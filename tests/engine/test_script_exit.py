"""A script that uses the engine ``get_engine`` made, and never closes it, leaves nothing
behind as it exits: not its process in the process table (where a worker would count it
alive for an owner timeout), not its wake-up socket, and not a run reading "paused" with
nobody left to hand it the answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from signoff.engine import Engine, EngineSettings, RunState, Worker, load_flows
from signoff.engine.store.wakeups import LocalWakeups
from tests.conftest import FAST
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]

COMPLETES = """
    from signoff.engine import flow

    @flow
    def hello():
        return "hi"

    print(hello())
"""

LEAVES_A_PAUSE = """
    import threading, time
    from signoff.engine import RunState, flow, get_engine, pause_flow_run
    from signoff.engine.input import RunInput

    class Go(RunInput):
        ok: bool

    @flow
    def deploy():
        pause_flow_run(wait_for_input=Go)

    threading.Thread(target=deploy, daemon=True).start()
    deadline = time.monotonic() + 30
    while not get_engine().list_runs(states=[RunState.PAUSED]):
        assert time.monotonic() < deadline, "the flow never paused"
        time.sleep(0.02)
    print("exiting")
"""


def run_script(tmp_path: Path, source: str) -> str:
    """Run ``source`` as a script on a database of its own, to its end; the database's URL."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    url = f"sqlite:///{tmp_path}/signoff.db"
    env = {**os.environ, "SIGNOFF_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return url


def test_a_script_that_ends_leaves_no_process_and_no_socket_behind(tmp_path: Path) -> None:
    url = run_script(tmp_path, COMPLETES)
    folder = LocalWakeups(str(tmp_path / "signoff.db")).folder
    # Nothing else used this database: its wake-up folder went with the script's socket.
    assert not folder.exists() or list(folder.iterdir()) == []
    engine = Engine(EngineSettings.load(database_url=url))
    try:
        (run,) = engine.list_runs()
        assert run.state is RunState.COMPLETED
        others = engine.store.live_processes(3600) - {engine.process_id}
        assert others == set(), "the script's process is still taken for alive"
    finally:
        engine.close()


def test_a_run_paused_when_its_script_exits_is_suspended_for_a_worker(tmp_path: Path) -> None:
    url = run_script(tmp_path, LEAVES_A_PAUSE)
    engine = Engine(EngineSettings.load(database_url=url))
    try:
        (run,) = engine.list_runs()
        # Not "paused" in a process that is gone: answering it runs the flow again.
        assert run.state is RunState.SUSPENDED
        engine.resume(run.id, {"ok": True}, responder="ada")
        assert engine.get_run(run.id).state is RunState.SCHEDULED
    finally:
        engine.close()


WAITS_IN_THE_MAIN_THREAD = """
    from signoff.engine import flow, pause_flow_run
    from signoff.engine.input import RunInput

    class Go(RunInput):
        ok: bool

    @flow
    def deploy():
        print("waiting", flush=True)
        pause_flow_run(wait_for_input=Go)

    deploy()
"""

AWAITS_UNDER_ASYNCIO_RUN = """
    import asyncio
    from signoff.engine import flow, pause_flow_run
    from signoff.engine.input import RunInput

    class Go(RunInput):
        ok: bool

    @flow
    async def deploy():
        print("waiting", flush=True)
        await pause_flow_run(wait_for_input=Go)

    asyncio.run(deploy())
"""


@pytest.mark.parametrize(
    "source", [WAITS_IN_THE_MAIN_THREAD, AWAITS_UNDER_ASYNCIO_RUN], ids=["sync", "async"]
)
def test_ctrl_c_on_a_script_whose_flow_waits_suspends_the_run(tmp_path: Path, source: str) -> None:
    """The run was marked crashed with its pause still waiting: the question was lost, and
    answering it said the run had crashed. Under ``asyncio.run``, Ctrl-C reaches the flow
    as a cancellation, not a ``KeyboardInterrupt``; it was taken for the flow's own
    ``asyncio.wait_for`` running out, and the run crashed with its pause timed out."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    url = f"sqlite:///{tmp_path}/signoff.db"
    env = {**os.environ, "SIGNOFF_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    engine = Engine(EngineSettings.load(database_url=url))
    with subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        try:
            assert process.stdout is not None and process.stdout.readline() == b"waiting\n"
            wait_for(lambda: engine.list_runs(states=[RunState.PAUSED]), what="the flow to pause")
            process.send_signal(signal.SIGINT)
            assert process.wait(30) == -signal.SIGINT  # as Python ends on a KeyboardInterrupt
            (run,) = engine.list_runs()
            assert run.state is RunState.SUSPENDED
            assert engine.waiting_pause(run.id) is not None
            engine.resume(run.id, {"ok": True}, responder="ada")
            assert engine.get_run(run.id).state is RunState.SCHEDULED
        finally:
            if process.poll() is None:
                process.kill()
            engine.close()


NESTED_FLOWS = """
    from signoff.engine import flow, pause_flow_run
    from signoff.engine.input import RunInput

    class Go(RunInput):
        ok: bool

    @flow(name="ctrl-c-approval")
    def approval() -> bool:
        print("waiting", flush=True)
        return pause_flow_run(wait_for_input=Go).ok

    @flow(name="ctrl-c-release")
    def release() -> str:
        return "released" if approval() else "held"

    @flow(name="ctrl-c-approval-async")
    async def approval_async() -> bool:
        print("waiting", flush=True)
        return (await pause_flow_run(wait_for_input=Go)).ok

    @flow(name="ctrl-c-release-async")
    async def release_async() -> str:
        return "released" if await approval_async() else "held"
"""


@pytest.mark.parametrize(
    ("call", "outer_name"),
    [
        ("release()", "ctrl-c-release"),
        ("asyncio.run(release_async())", "ctrl-c-release-async"),
    ],
    ids=["sync", "async"],
)
def test_ctrl_c_while_a_called_flow_waits_leaves_both_runs_for_a_worker(
    tmp_path: Path, call: str, outer_name: str
) -> None:
    """Both runs crashed and the question was closed, where a process killed outright left
    them for a worker to take over. Ctrl-C now leaves them as that does: a worker runs the
    outer flow again, takes the called flow up where it waits, and the answer finishes
    both."""
    # Flow names no other test module registers: the worker runs what the registry holds.
    (tmp_path / "nested_flows.py").write_text(textwrap.dedent(NESTED_FLOWS))
    script = tmp_path / "script.py"
    script.write_text(f"import asyncio\nfrom nested_flows import *\n\n{call}\n")
    url = f"sqlite:///{tmp_path}/signoff.db"
    env = {
        **os.environ,
        "SIGNOFF_DATABASE_URL": url,
        "PYTHONPATH": f"{ROOT}:{tmp_path}",
        # Should its exit not take it out of the process table, it is taken for dead soon.
        "SIGNOFF_HEARTBEAT_SECONDS": "0.2",
        "SIGNOFF_OWNER_TIMEOUT_SECONDS": "1",
    }
    engine = Engine(EngineSettings.load(database_url=url, **FAST))
    try:
        with subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as process:
            assert process.stdout is not None and process.stdout.readline() == b"waiting\n"
            wait_for(lambda: engine.list_runs(states=[RunState.PAUSED]), what="the pause")
            process.send_signal(signal.SIGINT)
            assert process.wait(30) == -signal.SIGINT
        (outer,) = engine.list_runs(flow_name=outer_name)
        (inner,) = engine.list_runs(flow_name=outer_name.replace("release", "approval"))
        assert (outer.state, inner.state) == (RunState.RUNNING, RunState.SUSPENDED)
        load_flows(str(tmp_path / "nested_flows.py"))
        worker = Worker(engine)
        worker.start()
        try:
            # The outer run, its process gone, is run again and takes the called flow up.
            wait_for(
                lambda: engine.get_run(inner.id).state is RunState.PAUSED,
                timeout=30,
                what="the worker to take the called flow up",
            )
            engine.resume(inner.id, {"ok": True}, responder="ada")
            done = wait_for(
                lambda: (r := engine.get_run(outer.id)).state.is_final and r, timeout=20
            )
        finally:
            worker.stop()
        assert (done.state, done.result) == (RunState.COMPLETED, "'released'")
        assert [r.id for r in engine.list_runs(flow_name=inner.flow_name)] == [inner.id]
    finally:
        engine.close()
