"""Settings: read from the environment and ``.env``, shown by ``config show`` with secrets
masked, and refused with one line naming the variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import AliasChoices

from signoff.bot.backends.prefect import PrefectSettings
from signoff.bot.cli.config import KNOWN, PREFECT
from signoff.bot.config import BotSettings, LogSettings, ServerSettings
from signoff.bot.errors import SettingsError
from signoff.engine import ConfigurationError, EngineSettings
from tests.cli.in_process import run_cli


def test_settings_come_from_dot_env_and_config_show_masks_secrets(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".env").write_text(
        "SLACK_BOT_TOKEN=xoxb-1-verysecretvalue\n"
        "SLACK_APP_TOKEN=xapp-1-alsosecret\n"
        "SIGNOFF_CHANNEL=C0DEPLOYS\n"
        "PORT=8123\n"
        "SIGNOFF_POOL_SIZE=3\n"
    )
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", "postgresql://signoff:hunter2@db:5432/signoff")
    # Socket Mode: no signing secret is needed.
    settings = BotSettings.load()
    assert (settings.channel, settings.socket_mode, settings.signing_secret) == (
        "C0DEPLOYS",
        True,
        None,
    )
    assert ServerSettings.load().port == 8123
    assert EngineSettings.load().pool_size == 3

    status, out, _ = run_cli(capsys, "config", "show")
    assert status == 0, out
    assert "verysecretvalue" not in out and "alsosecret" not in out and "hunter2" not in out
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert "xoxb-********" in rows["SLACK_BOT_TOKEN"]
    assert ".env (SLACK_BOT_TOKEN)" in rows["SLACK_BOT_TOKEN"]
    assert "8123" in rows["SIGNOFF_PORT"] and ".env (PORT)" in rows["SIGNOFF_PORT"]
    assert "postgresql://signoff:********@db:5432/signoff" in rows["SIGNOFF_DATABASE_URL"]
    assert "environment (SIGNOFF_DATABASE_URL)" in rows["SIGNOFF_DATABASE_URL"]
    assert not [line for line in out.splitlines() if line.startswith("warning:")]
    # The defaults it shows are the engine's own.
    for name in ("HEARTBEAT_SECONDS", "OWNER_TIMEOUT_SECONDS", "POLL_SECONDS"):
        default = EngineSettings.model_fields[name.lower()].default
        assert rows[f"SIGNOFF_{name}"].split()[1] == f"{default:g}", rows[f"SIGNOFF_{name}"]


def test_config_show_warns_of_a_signoff_variable_that_is_no_setting(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".env").write_text("SIGNOFF_POLL_SECOND=3\n")
    monkeypatch.setenv("SIGNOFF_DATABSE_URL", "sqlite:///typo.db")
    monkeypatch.setenv("SIGNOFF_TEAM", "payments")  # someone's own variable: named, no guess
    _, out, _ = run_cli(capsys, "config", "show")
    assert [line for line in out.splitlines() if line.startswith("warning:")] == [
        "warning: SIGNOFF_DATABSE_URL is not a setting Signoff reads; did you mean "
        "SIGNOFF_DATABASE_URL?",
        "warning: SIGNOFF_POLL_SECOND is not a setting Signoff reads; did you mean "
        "SIGNOFF_POLL_SECONDS?",
        "warning: SIGNOFF_TEAM is not a setting Signoff reads",
    ]
    _, out, _ = run_cli(capsys, "config", "show", "--json")
    assert len(json.loads(out)["warnings"]) == 3


def test_config_show_names_database_url_given_on_the_command_line_as_its_source(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said "environment (SIGNOFF_DATABASE_URL)" for a URL given as --database-url."""
    monkeypatch.delenv("SIGNOFF_DATABASE_URL", raising=False)
    given = "postgresql://signoff:hunter2@db:5432/signoff"
    _, out, _ = run_cli(capsys, "--database-url", given, "config", "show", "--json")
    shown = json.loads(out)["settings"]["SIGNOFF_DATABASE_URL"]
    assert shown == {
        "value": "postgresql://signoff:********@db:5432/signoff",
        "source": "--database-url",
    }
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", given)
    _, out, _ = run_cli(capsys, "config", "show", "--json")
    assert json.loads(out)["settings"]["SIGNOFF_DATABASE_URL"]["source"] == (
        "environment (SIGNOFF_DATABASE_URL)"
    )


def test_every_variable_a_settings_class_reads_is_shown() -> None:
    read: set[str] = set()
    for settings in (EngineSettings, BotSettings, ServerSettings, LogSettings, PrefectSettings):
        prefix = settings.model_config.get("env_prefix", "")
        for name, field in settings.model_fields.items():
            aliases = field.validation_alias
            if isinstance(aliases, AliasChoices):
                read.update(str(choice) for choice in aliases.choices)
            else:
                read.add(str(aliases or field.alias or f"{prefix}{name}".upper()))
    assert read <= KNOWN, read - KNOWN


@pytest.mark.parametrize(
    "variable", ["SIGNOFF_PREFECT_RECONCILE_SECONDS", "SIGNOFF_PREFECT_SCHEMA_WAIT_SECONDS"]
)
@pytest.mark.parametrize(
    ("value", "why"),
    [("0", "greater than 0"), ("inf", "finite"), ("90000", "less than or equal to 86400")],
)
def test_prefect_intervals_refuse_what_no_timer_can_wait(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, why: str
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"^{variable}: .*{why}"):
        PrefectSettings.load()


def test_setting_errors_name_the_variable_without_library_prefixes(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", "mysql://x")
    monkeypatch.setenv("SIGNOFF_POOL_SIZE", "0")
    with pytest.raises(ConfigurationError) as engine_error:
        EngineSettings.load()
    message = str(engine_error.value)
    assert "SIGNOFF_DATABASE_URL: unsupported database URL scheme 'mysql'" in message
    assert "SIGNOFF_POOL_SIZE" in message
    assert "Value error" not in message
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SIGNOFF_CHANNEL", "C0X")
    with pytest.raises(SettingsError, match="^SLACK_SIGNING_SECRET is not set") as bot_error:
        BotSettings.load()
    assert "Value error" not in str(bot_error.value)
    monkeypatch.setenv("SIGNOFF_LOG_FORMAT", "xml")
    with pytest.raises(SettingsError, match="^SIGNOFF_LOG_FORMAT: Input should be 'text'"):
        LogSettings.load()
    # pydantic's own sentence follows a colon, as in the engine's settings
    monkeypatch.setenv("PORT", "abc")
    with pytest.raises(SettingsError, match="^PORT: Input should be a valid integer"):
        ServerSettings.load()
    status, out, _ = run_cli(capsys, "config", "show")
    assert status == 1
    assert "problem: SIGNOFF_LOG_FORMAT" in out


def test_a_malformed_log_setting_is_named_in_one_line(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNOFF_LOG_LEVEL", "LOUD")
    status, _, err = run_cli(capsys, "worker")
    assert status == 1 and err.startswith("error: SIGNOFF_LOG_LEVEL"), err
    assert "unexpected" not in err and len(err.strip().splitlines()) == 1
    # -v shows the traceback too; the error still ends it, in one line
    status, _, err = run_cli(capsys, "-v", "runs", "list")
    assert status == 1 and err.splitlines()[-1].startswith("error: SIGNOFF_LOG_LEVEL"), err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://app@db.internal/signoff?password=Sup3rS3cret",
            "postgresql://app@db.internal/signoff?password=********",
        ),
        (
            "postgresql://app:Sup3rS3cret@db/signoff?sslmode=require&sslpassword=Sup3rS3cret",
            "postgresql://app:********@db/signoff?sslmode=require&sslpassword=********",
        ),
        (
            "postgresql:///signoff?host=/run/pg&PassWord=Sup3rS3cret&api%5Fkey=Sup3rS3cret",
            "postgresql:///signoff?host=/run/pg&PassWord=********&api%5Fkey=********",
        ),
        ("postgresql://db:port/signoff?password=Sup3rS3cret", "******** (not a URL)"),
        # libpq's keyword form is no URL Signoff takes, and was shown whole, twice (its
        # problem line quoted it).
        (
            "host=db password=Sup3rS3cret dbname=signoff",
            "host=db password=******** dbname=signoff",
        ),
        (
            "host=db sslpassword='Sup3r S3cret' dbname=signoff",
            "host=db sslpassword=******** dbname=signoff",
        ),
    ],
)
def test_config_show_masks_a_password_in_the_query_string(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    shown: str,
) -> None:
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", url)
    _, out, err = run_cli(capsys, "config", "show")
    assert "Sup3rS3cret" not in out + err and "S3cret'" not in out + err
    if "://" not in url:
        assert "SIGNOFF_DATABASE_URL: is a libpq keyword string (host=... dbname=...)" in out
    [row] = [line for line in out.splitlines() if line.startswith("SIGNOFF_DATABASE_URL ")]
    assert shown in row
    _, out, _ = run_cli(capsys, "config", "show", "--json")
    assert "Sup3rS3cret" not in out
    assert json.loads(out)["settings"]["SIGNOFF_DATABASE_URL"]["value"] == shown


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:Sup3rS3cret@db:port/signoff",
        "postgresql://app:Sup3rS3cret@[::1/signoff",
        "postgresql+asyncpg://app:Sup3rS3cret@db/signoff",
        "host=db password=Sup3rS3cret dbname=signoff",
    ],
)
def test_the_traceback_of_a_malformed_database_url_does_not_show_its_password(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    # -v prints the error's traceback, and pydantic's text in it quoted the whole value.
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", url)
    status, _, err = run_cli(capsys, "-v", "runs", "list")
    assert status == 1 and "Traceback" in err, err
    assert err.splitlines()[-1].startswith("error: invalid setting: SIGNOFF_DATABASE_URL"), err
    assert "Sup3rS3cret" not in err


@pytest.mark.parametrize(
    ("set_in", "expected"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"port": "abc"}, "port"),
        ({"SIGNOFF_PORT": "abc"}, "SIGNOFF_PORT"),
        ({"SIGNOFF_PORT": "abc", "PORT": "8080"}, "SIGNOFF_PORT"),
        ({"PORT": "abc", ".env": "SIGNOFF_PORT=80\n"}, "PORT"),  # the environment wins
        ({".env": "PORT=abc\n"}, "PORT"),
    ],
)
def test_a_malformed_port_is_named_by_the_variable_that_was_set(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    set_in: dict[str, str],
    expected: str,
) -> None:
    for name, value in set_in.items():
        if name == ".env":
            (project / ".env").write_text(value)
        else:
            monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        ServerSettings.load()
    assert str(error.value).startswith(f"{expected}: Input should be")
    _, out, _ = run_cli(capsys, "config", "show")
    assert f"problem: {expected}: Input should be" in out


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_audit_key_is_refused_rather_than_taken_for_none(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """An empty key (``SIGNOFF_AUDIT_KEY=${KEY}`` with KEY unset) hashed the trail without
    any key, while ``config show`` listed a key as set from the environment."""
    monkeypatch.setenv("SIGNOFF_AUDIT_KEY", value)
    with pytest.raises(ConfigurationError, match="SIGNOFF_AUDIT_KEY: is empty"):
        EngineSettings.load()
    status, out, _ = run_cli(capsys, "config", "show")
    assert status == 1 and "problem: invalid setting: SIGNOFF_AUDIT_KEY: is empty" in out
    status, _, err = run_cli(capsys, "audit", "verify")
    assert status == 1 and "SIGNOFF_AUDIT_KEY: is empty" in err


#: what every error about SIGNOFF_ADMINS says it takes
ADMINS_SHAPE = 'give ids separated by commas (U0ALICE,S0OPS) or a JSON list (["U0ALICE", "S0OPS"])'


@pytest.mark.parametrize(
    ("value", "admins"),
    [
        ("U0ALICE,S0OPS", ["U0ALICE", "S0OPS"]),
        (" U0ALICE , ,S0OPS ", ["U0ALICE", "S0OPS"]),
        ('["U0ALICE", " S0OPS "]', ["U0ALICE", "S0OPS"]),
        ("[]", []),
        ("", []),
        # a CLI operator's name may hold a space
        ("bob smith,U0ALICE", ["bob smith", "U0ALICE"]),
    ],
)
def test_admins_are_read_from_commas_or_a_json_list(
    monkeypatch: pytest.MonkeyPatch, value: str, admins: list[str]
) -> None:
    monkeypatch.setenv("SIGNOFF_ADMINS", value)
    assert EngineSettings.load().admins == admins


@pytest.mark.parametrize("value", ["U0ALICE,s0ops", '["U0ALICE", "s0ops"]'])
def test_an_admin_id_in_lowercase_is_refused_saying_how_slack_spells_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """SIGNOFF_ADMINS=s0ops gave nobody the rights: Slack's ids are uppercase."""
    monkeypatch.setenv("SIGNOFF_ADMINS", value)
    status, _, err = run_cli(capsys, "runs", "list")
    assert status == 1
    assert err == (
        "error: invalid setting: SIGNOFF_ADMINS: id 2 's0ops' would match nobody: Slack user "
        "and group ids are uppercase (did you mean S0OPS?)\n"
    )


def test_an_operator_name_in_the_shape_of_a_lowercase_slack_id_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIGNOFF_OPERATOR", "u0bob")
    with pytest.raises(ConfigurationError, match=r"SIGNOFF_OPERATOR: .* \(did you mean U0BOB\?\)"):
        EngineSettings.load()


@pytest.mark.parametrize(
    ("value", "why"),
    [
        # was taken as one admin whose id was the whole text: nobody had the rights
        ('{"U0ALICE": true}', "is a JSON object, not a list"),
        ('{"admins": ["U0ALICE"]}', "is a JSON object, not a list"),
        ("[U0ALICE]", "is not a JSON list (Expecting value: line 1 column 2 (char 1))"),
        ("[1, 2]", "item 1 (1) is not an id (a non-empty text)"),
        ('["U0ALICE", ""]', 'item 2 ("") is not an id (a non-empty text)'),
        # quotes an env file kept (docker's --env-file does): admins '"U0ALICE' and 'S0OPS"'
        ('"U0ALICE,S0OPS"', "id 1 ('\"U0ALICE') has quotes or brackets in it"),
        # separated by spaces or semicolons: one admin, 'U0ALICE S0OPS', whom nobody is
        ("U0ALICE S0OPS", "id 1 ('U0ALICE S0OPS') is several Slack ids in one"),
        ("U0BOB,U0ALICE;S0OPS", "id 2 ('U0ALICE;S0OPS') is several Slack ids in one"),
        ('["U0ALICE  W0CAROL"]', "item 1 ('U0ALICE  W0CAROL') is several Slack ids in one"),
    ],
)
def test_admins_in_another_shape_are_refused_naming_the_variable_once(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    why: str,
) -> None:
    monkeypatch.setenv("SIGNOFF_ADMINS", value)
    expected = f"invalid setting: SIGNOFF_ADMINS: {why}; {ADMINS_SHAPE}"
    with pytest.raises(ConfigurationError) as error:
        EngineSettings.load()
    assert str(error.value) == expected
    status, out, _ = run_cli(capsys, "config", "show")
    assert status == 1 and f"problem: {expected}" in out.splitlines()
    status, _, err = run_cli(capsys, "runs", "list")
    assert status == 1 and err == f"error: {expected}\n"


def test_each_setting_is_named_once_however_many_of_its_items_are_wrong() -> None:
    with pytest.raises(ConfigurationError) as error:
        EngineSettings.load(admins=[1, "U0ALICE", 2], pool_size=0)
    message = str(error.value)
    assert message.count("SIGNOFF_ADMINS") == 1 and message.count("SIGNOFF_POOL_SIZE") == 1
    assert "SIGNOFF_ADMINS: item 1: Input should be a valid string; item 3: " in message


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('["U0BOB"]', "holds a list; it must hold a JSON object of flow"),
        ('"deploy"', 'holds "deploy"; it must hold a JSON object of flow'),
        (
            '{"deploy": ["U0BOB"], "audit": {"approvers": "U0BOB", "start": [""]}}',
            'deploy: must be an object of rules, e.g. {"approvers": ["U0BOB"]}; '
            "audit.approvers: Input should be a valid list; audit.start: holds an empty id",
        ),
        (
            '{"deploy": {"approvers": ["U0ALICE", "s0ops"], "cancel": ["u0bob"]}}',
            "deploy.approvers: id 's0ops' would match nobody: Slack user and group ids are "
            "uppercase (did you mean S0OPS?); deploy.cancel: id 'u0bob' would match nobody",
        ),
    ],
)
def test_a_prefect_permissions_file_of_another_shape_is_refused_naming_the_variable_once(
    project: Path, monkeypatch: pytest.MonkeyPatch, content: str, why: str
) -> None:
    (project / "rules.json").write_text(content)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    monkeypatch.setenv("SIGNOFF_PREFECT_PERMISSIONS", "rules.json")
    with pytest.raises(SettingsError) as error:
        PrefectSettings.load().permissions()
    assert str(error.value).startswith(f"SIGNOFF_PREFECT_PERMISSIONS: rules.json: {why}")
    assert str(error.value).count("SIGNOFF_PREFECT_PERMISSIONS") == 1


@pytest.mark.parametrize(
    ("set_in", "problem"),
    [
        (
            {"PREFECT_API_URL": "127.0.0.1:4200/api"},
            "PREFECT_API_URL must be an http(s) URL, e.g. http://127.0.0.1:4200/api",
        ),
        (
            {
                "PREFECT_API_URL": "http://127.0.0.1:4200/api",
                "SIGNOFF_PREFECT_RECONCILE_SECONDS": "1m",
            },
            "SIGNOFF_PREFECT_RECONCILE_SECONDS: Input should be a valid number",
        ),
        (
            {
                ".env": "PREFECT_API_URL=http://127.0.0.1:4200/api\nSIGNOFF_PREFECT_SCHEMA_WAIT_SECONDS=0\n"
            },
            "SIGNOFF_PREFECT_SCHEMA_WAIT_SECONDS: Input should be greater than 0",
        ),
        (
            {"SIGNOFF_PREFECT_PERMISSIONS": "rules.json"},
            "PREFECT_API_URL is not set",
        ),
        (
            {
                "PREFECT_API_URL": "http://127.0.0.1:4200/api",
                "SIGNOFF_PREFECT_PERMISSIONS": "rules.json",
            },
            "SIGNOFF_PREFECT_PERMISSIONS: rules.json: holds a list; it must hold a JSON object",
        ),
        (
            {
                "PREFECT_API_URL": "http://127.0.0.1:4200/api",
                "SIGNOFF_PREFECT_PERMISSIONS": "nothere.json",
            },
            "SIGNOFF_PREFECT_PERMISSIONS: cannot read nothere.json: ",
        ),
    ],
)
def test_config_show_checks_the_prefect_backends_settings_as_serve_reads_them(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    set_in: dict[str, str],
    problem: str,
) -> None:
    """Each passed ``config show`` and stopped ``serve --backend prefect``."""
    (project / "rules.json").write_text('["U0BOB"]')
    for name, value in set_in.items():
        if name == ".env":
            (project / ".env").write_text(value)
        else:
            monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        PrefectSettings.load().permissions()
    assert str(error.value).startswith(problem)
    status, out, _ = run_cli(capsys, "config", "show")
    assert status == 1
    assert [line for line in out.splitlines() if line.startswith(f"problem: {problem}")], out
    _, out, _ = run_cli(capsys, "config", "show", "--json")
    assert [line for line in json.loads(out)["problems"] if line.startswith(problem)]


def test_config_show_names_a_wrong_permissions_file_beside_a_wrong_prefect_url(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's problem was reported only once the URL was fixed: two rounds to a
    working setup where one would do."""
    (project / "rules.json").write_text('["U0BOB"]')
    monkeypatch.setenv("PREFECT_API_URL", "127.0.0.1:4200/api")
    monkeypatch.setenv("SIGNOFF_PREFECT_PERMISSIONS", "rules.json")
    status, out, _ = run_cli(capsys, "config", "show", "--json")
    assert status == 1
    problems = json.loads(out)["problems"]
    assert any(line.startswith("PREFECT_API_URL must be an http(s) URL") for line in problems)
    assert any(
        line.startswith("SIGNOFF_PREFECT_PERMISSIONS: rules.json: holds a list")
        for line in problems
    ), problems


def test_config_show_leaves_the_prefect_backend_alone_when_none_of_its_settings_is_set(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".env").write_text(
        "SLACK_BOT_TOKEN=xoxb-1\nSLACK_APP_TOKEN=xapp-1\nSIGNOFF_CHANNEL=C0DEPLOYS\n"
    )
    for name in PREFECT:
        monkeypatch.delenv(name, raising=False)
    status, out, _ = run_cli(capsys, "config", "show")
    assert status == 0 and "problem:" not in out, out
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    status, out, _ = run_cli(capsys, "config", "show")
    assert status == 0 and "problem:" not in out, out


@pytest.mark.parametrize(
    ("rule", "value"),
    [("quorum", 2), ("veto", "approved"), ("escalate_after", 3600), ("escalate_to", ["S0OPS"])],
)
def test_an_engine_only_rule_in_a_prefect_permissions_file_says_where_it_works(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    rule: str,
    value: object,
) -> None:
    # Refused as "Extra inputs are not permitted", which read as a typo to fix.
    (project / "rules.json").write_text(
        json.dumps({"deploy/prod": {"approvers": ["U0BOB", "U0ALICE"], rule: value}})
    )
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    monkeypatch.setenv("SIGNOFF_PREFECT_PERMISSIONS", "rules.json")
    status, _, err = run_cli(capsys, "runs", "list", "--backend", "prefect")
    assert status == 1
    [line] = err.splitlines()
    assert line.startswith(f"error: SIGNOFF_PREFECT_PERMISSIONS: rules.json: deploy/prod.{rule}: ")
    assert "only with the embedded engine backend (--backend embedded)" in line
    assert f"pause_flow_run(..., {rule}=" in line
    assert "Extra inputs" not in line
    status, out, _ = run_cli(capsys, "config", "show")
    assert status == 1
    assert f"problem: {line.removeprefix('error: ')}" in out.splitlines()


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("SIGNOFF_HEARTBEAT_SECONDS", "1e-9", "greater than or equal to 0.1"),
        ("SIGNOFF_POLL_SECONDS", "0.0001", "greater than or equal to 0.01"),
        ("SIGNOFF_POOL_SIZE", "99999999999999999999", "less than or equal to 1000"),
        ("SIGNOFF_POOL_MAX_OVERFLOW", "5000", "less than or equal to 1000"),
    ],
)
def test_an_interval_or_pool_that_would_only_spin_or_exhaust_is_refused_by_name(
    project: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, why: str
) -> None:
    """A heartbeat every nanosecond kept an idle worker at a whole core, writing heartbeats."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=f"{variable}: .*{why}"):
        EngineSettings.load()


def test_a_setting_given_in_code_under_a_wrong_name_is_refused_with_the_right_one() -> None:
    """``PrefectSettings.load(permissions=...)`` was taken as an unknown environment
    variable and ignored: the bot ran with no rules at all, and nothing said so."""
    with pytest.raises(SettingsError) as wrong:
        PrefectSettings.load(api_url="http://127.0.0.1:4200/api", permissions="/etc/rules.json")
    assert str(wrong.value) == (
        "'permissions' is no setting of PrefectSettings; did you mean 'permissions_file'?"
    )
    with pytest.raises(ConfigurationError) as typo:
        EngineSettings.load(databse_url="sqlite://")
    assert str(typo.value) == (
        "invalid setting: 'databse_url' is no setting; did you mean 'database_url'?"
    )
    # A field's name or its variable's name both still work.
    by_field = BotSettings.load(bot_token="xoxb-1", signing_secret="s", channel="C1")
    by_variable = BotSettings.load(
        SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", SIGNOFF_CHANNEL="C1"
    )
    assert by_field.channel == by_variable.channel == "C1"


def test_an_empty_number_setting_says_it_is_empty(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``SIGNOFF_PORT=`` (a variable left blank in a unit file or a chart) was refused with
    pydantic's "unable to parse string as an integer", which hides that nothing was given."""
    monkeypatch.setenv("SIGNOFF_PORT", "")
    with pytest.raises(SettingsError, match="^SIGNOFF_PORT is empty; give a value, or leave"):
        ServerSettings.load()
    monkeypatch.delenv("SIGNOFF_PORT")
    monkeypatch.setenv("SIGNOFF_HEARTBEAT_SECONDS", "")
    with pytest.raises(ConfigurationError, match="SIGNOFF_HEARTBEAT_SECONDS: is empty; give a"):
        EngineSettings.load()
    status, out, _ = run_cli(capsys, "config", "show")
    assert status == 1 and "SIGNOFF_HEARTBEAT_SECONDS: is empty" in out


def test_config_show_counts_a_one_character_secret_in_the_singular(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "y")
    _, out, _ = run_cli(capsys, "config", "show")
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "******** (1 character) " in rows["SLACK_SIGNING_SECRET"]


def test_serve_without_its_slack_settings_says_where_they_go_and_come_from(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SIGNOFF_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    status, _, err = run_cli(capsys, "serve")
    assert status == 1
    assert err.startswith("error: SLACK_BOT_TOKEN is not set; "), err
    assert err.rstrip().endswith(
        "(set them in the environment or in a .env file here; 'Connecting to Slack' in the "
        "README says where each comes from, and 'signoff demo' needs none of them)"
    ), err
    assert not (project / "ops.db").exists()


def test_config_show_masks_the_prefect_auth_string_and_takes_it_from_dot_env(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It is ``user:password``: masked by the variable's being a secret, not by its name
    (which ends in neither _TOKEN, _SECRET nor _KEY)."""
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    (project / ".env").write_text(
        "PREFECT_API_URL=http://127.0.0.1:4200/api\nPREFECT_API_AUTH_STRING=ci-bot:hunter2\n"
    )
    _, out, _ = run_cli(capsys, "config", "show")
    assert "hunter2" not in out and "ci-bot" not in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "******** (14 characters)" in rows["PREFECT_API_AUTH_STRING"]
    assert PrefectSettings.load().credentials() == ("ci-bot:hunter2", None)
