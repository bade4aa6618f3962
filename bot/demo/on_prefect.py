"""``signoff demo --backend prefect``: the reference flows on a real, throwaway Prefect server
(SQLite, temporary home), answered in the local Slack sandbox through the Prefect backend.

Needs the ``signoff[prefect]`` extra. The transcript is the embedded demo's (``Demo``); the
runs are read from Prefect.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import click

from signoff.bot.backends import Actor, PauseStatus, Run
from signoff.bot.demo.transcript import CHANNEL, Demo, quiet_logs, wait_for
from signoff.bot.sandbox import render_mrkdwn

if TYPE_CHECKING:
    from signoff.bot.backends.prefect import PrefectBackend

FLOWS = Path(__file__).with_name("prefect_flows.py")
#: deployments prefect_flows.py serves
DEPLOYMENTS = 5
CAROL = Actor("U0CAROL", name="carol")
#: How long a run may take to ask for input, and then to finish once answered. Prefect
#: starts each flow run in a process of its own (seconds to import Prefect), after its
#: runner's next poll; on a busy machine, and on a server other work shares, that can
#: take far longer than the embedded engine's moment.
PREFECT_SECONDS = 120.0


def prefect_demo(api_url: str | None = None) -> None:
    """Serve the reference flows on a Prefect server (a throwaway one started here, or the
    one at ``api_url``) and answer them in Slack.

    Raises:
        click.ClickException: the extra is missing, or Prefect failed (its log is quoted).
    """
    if importlib.util.find_spec("prefect") is None:
        raise click.ClickException(
            "the Prefect demo needs the extra: pip install 'signoff[prefect]'"
        )
    from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
    from signoff.bot.backends.prefect.local import LocalPrefect
    from signoff.bot.errors import BackendError
    from signoff.bot.testing import serving

    quiet_logs()
    click.secho(
        f"▶ serving the reference flows on the Prefect server at {api_url}"
        if api_url
        else "▶ starting a throwaway Prefect server (SQLite; a minute or two)",
        fg="cyan",
        err=True,
    )
    try:
        # A server of one's own may ask for PREFECT_API_AUTH_STRING; a throwaway one asks
        # for nothing.
        auth_string = PrefectSettings.load(api_url=api_url).credentials()[0] if api_url else None
        with LocalPrefect(api_url=api_url, auth_string=auth_string) as prefect:
            prefect.serve_flows(FLOWS, "demo", deployments=DEPLOYMENTS)
            # Tagged as this demo's (``signoff.demo:<session>``), its runs are left alone
            # by any ``signoff serve`` watching the same server, and it leaves theirs.
            backend = PrefectBackend(
                PrefectSettings.load(api_url=prefect.api_url), demo=uuid.uuid4().hex[:12]
            )
            try:
                with serving(backend) as bot:
                    _play(
                        Demo(None, bot.slack, bot.server, prompt_seconds=PREFECT_SECONDS), backend
                    )
            finally:
                backend.close()
    except BackendError as exc:
        raise click.ClickException(str(exc)) from exc


def _finish(demo: Demo, backend: PrefectBackend, run: Run) -> Run:
    def final() -> Run | None:
        current = backend.get_run(run.id)
        return current if current.state.is_final else None

    done = wait_for(f"{run.flow_name} to finish", final, timeout=PREFECT_SECONDS)
    demo.show_outcome(done, done.state.value)
    return done


def _play(demo: Demo, backend: PrefectBackend) -> None:
    runs: list[Run] = []
    demo.step("starting greet-user/demo on Prefect (initial data from with_initial_data)")
    greet = backend.start_run("greet-user/demo", {}, started_by=CAROL)
    demo.answer(greet, "alice", {"name": "Ada"}, "types “Ada” and submits")
    runs.append(_finish(demo, backend, greet))

    demo.step("starting get-shirt-order/demo (the reference's validation loop)")
    shirt = backend.start_run("get-shirt-order/demo", {}, started_by=CAROL)
    demo.answer(shirt, "alice", {"size": "small", "color": "green"}, "picks small + green")
    wait_for(
        "the rejection in the thread",
        lambda: any(
            "not accepted" in m.text
            for replies in demo.sandbox.channel(CHANNEL).replies.values()
            for m in replies
        ),
        timeout=PREFECT_SECONDS,
    )
    demo.thread_notes(shirt)
    demo.answer(shirt, "bob", {"color": "red"}, "fixes only the colour (the rest is prefilled)")
    runs.append(_finish(demo, backend, shirt))

    demo.step("starting deploy-release/demo, which suspends (its process exits while it waits)")
    deploy = backend.start_run("deploy-release/demo", {"version": "2.4.1"}, started_by=CAROL)
    wait_for(
        "the suspended run",
        lambda: (p := backend.waiting_pause(deploy.id)) and p.status is PauseStatus.WAITING,
        timeout=PREFECT_SECONDS,
    )
    demo.answer(deploy, "bob", {"approved": True, "reason": "soak was clean"}, "approves")
    runs.append(_finish(demo, backend, deploy))

    demo.say("── final states on Prefect " + "─" * 34)
    names = demo.sandbox.workspace.names()
    for run in runs:
        detail = backend.detail(run.id)
        answers = ", ".join(
            f"input {p.key} {p.status.value} by {render_mrkdwn(f'<@{p.responder}>', names)}"
            for p in detail.pauses
            if p.responder
        )
        demo.say(f"   {run.flow_name:<18} {detail.run.state_name:<10} {answers}")
    demo.links()
    demo.say(json.dumps({"prefect_runs": [r.id for r in runs]}))
