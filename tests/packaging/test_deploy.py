"""The deployment files in ``deploy/``: what can be checked without a container runtime is
checked (parsed and read as an operator would); the image build runs only where Docker
answers, and is skipped with the reason otherwise."""

from __future__ import annotations

import configparser
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from signoff.bot.config import BotSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def instructions(kind: str) -> list[str]:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    return [i["value"] for i in parser.structure if i["instruction"] == kind]


def test_the_image_is_slim_runs_as_a_user_and_copies_only_what_exists() -> None:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    assert all(image.endswith("-slim") for image in instructions("FROM") if " AS " not in image)
    assert parser.baseimage.endswith("-slim")
    stages = [i for i in parser.structure if i["instruction"] == "FROM"]
    final = [i for i in parser.structure if i["startline"] > stages[-1]["startline"]]
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users and users[-1] not in ("root", "0"), "the final stage must not run as root"
    for source in instructions("COPY"):
        if source.startswith("--from="):
            continue
        *sources, _target = shlex.split(source)
        for name in sources:
            assert (ROOT / name).exists(), f"COPY {name}: not in the repository"
    assert "-c constraints.txt" in " ".join(instructions("RUN"))
    assert instructions("EXPOSE") == ["3000"]
    assert "/healthz" in instructions("HEALTHCHECK")[0]
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["signoff"]
    assert json.loads(instructions("CMD")[0])[0] == "serve"


@pytest.mark.parametrize("variable", ["PORT", "SIGNOFF_PORT"])
def test_the_health_check_asks_the_port_serve_listens_on(variable: str) -> None:
    """The image set SIGNOFF_PORT=3000, which wins over the PORT a platform sets, and
    checked port 3000 whatever serve listened on."""
    env = dict(line.split("=", 1) for line in shlex.split(instructions("ENV")[0]))
    assert "SIGNOFF_PORT" not in env and "PORT" not in env

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        check = json.loads(instructions("HEALTHCHECK")[0].split(" CMD ", 1)[1])
        assert check[0] == "python"
        base = {k: v for k, v in os.environ.items() if k not in ("PORT", "SIGNOFF_PORT")}
        port = str(server.server_address[1])
        done = subprocess.run(
            [sys.executable, *check[1:]], env={**base, variable: port}, timeout=30
        )
        assert done.returncode == 0
    finally:
        server.shutdown()


def test_compose_runs_postgresql_one_migration_and_two_replicas() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    replicas = [s for name, s in services.items() if name.startswith("signoff-")]
    assert len(replicas) == 2
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for replica in replicas:
        assert replica["environment"]["SIGNOFF_DATABASE_URL"].startswith(
            "postgresql://signoff:signoff@postgres:5432/"
        )
        assert replica["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert len({r["ports"][0].split(":")[0] for r in replicas}) == 2


def compose_environment(shell: dict[str, str]) -> dict[str, str]:
    """A replica's environment as compose sets it from ``shell``: ``${NAME:-default}`` is
    the default when NAME is unset or empty, ``${NAME:?message}`` is NAME's value."""

    def value(found: re.Match[str]) -> str:
        name, kind, rest = found.groups()
        if shell.get(name):
            return shell[name]
        assert kind == ":-", f"compose refuses to start without {name}: {rest}"
        return rest

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    environment = compose["services"]["signoff-1"]["environment"]
    return {k: re.sub(r"\$\{(\w+)(:-|:\?)([^}]*)\}", value, v) for k, v in environment.items()}


@pytest.mark.parametrize(
    ("shell", "socket_mode"),
    [
        # The README's command: HTTP mode, no SLACK_APP_TOKEN in the shell.
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "SIGNOFF_CHANNEL": "C0"},
            False,
        ),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "SIGNOFF_CHANNEL": "C0"}, True),
    ],
)
def test_compose_starts_the_replicas_in_either_mode(
    shell: dict[str, str], socket_mode: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # compose sets a variable the shell left unset to "" (SLACK_APP_TOKEN in HTTP mode,
    # SLACK_SIGNING_SECRET in Socket Mode): the replicas must read that as unset.
    monkeypatch.chdir(tmp_path)  # no .env
    for name, given in compose_environment(shell).items():
        monkeypatch.setenv(name, given)
    assert BotSettings.load().socket_mode is socket_mode


def test_the_systemd_unit_serves_and_stops_with_sigterm() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(DEPLOY / "signoff.service")
    assert unit["Service"]["ExecStart"].split()[1:3] == ["serve", "--flows"]
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert unit["Service"]["User"] == "signoff"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_image_builds_where_docker_runs(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no container runtime here (docker is not installed); the build is not checked")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        pytest.skip(
            f"docker does not answer ({info.stderr.strip()[:200]}); the build is not checked"
        )
    built = subprocess.run(
        [docker, "build", "-f", str(DEPLOY / "Dockerfile"), "-t", "signoff-test", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    version = subprocess.run(
        [docker, "run", "--rm", "signoff-test", "--version"], capture_output=True, text=True
    )
    assert version.stdout.startswith("signoff ")
    user = subprocess.run(
        [docker, "run", "--rm", "--entrypoint", "id", "signoff-test", "-u"],
        capture_output=True,
        text=True,
    )
    assert user.stdout.strip() != "0"
