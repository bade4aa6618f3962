"""A ``.env`` file that cannot be read as settings is named, as an operator sees it: the
real ``signoff`` command in the folder that holds the file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.command import signoff_in


def signoff(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return signoff_in(folder, *args, database="env.db")


def test_a_dot_env_that_is_not_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    # Saved by an editor in Latin-1: the é of a channel's comment is one byte, 0xE9.
    (tmp_path / ".env").write_bytes(b"SIGNOFF_OPERATOR=alice\n# caf\xe9 channel\n")
    for args in (["manifest"], ["config", "show"]):
        done = signoff(tmp_path, *args)
        assert done.returncode == 1, done
        assert done.stderr.splitlines() == [
            "error: .env is not UTF-8 text: line 2 holds byte 0xe9; save it as UTF-8"
        ]


def test_a_dot_env_line_that_is_no_setting_is_named_once_without_its_text(
    tmp_path: Path,
) -> None:
    # A space for the '=': dotenv skips the line, so the token is left unset. So are a
    # token pasted alone and a name with its '=value' left off, which warned of nothing.
    (tmp_path / ".env").write_text(
        "SIGNOFF_OPERATOR=alice\nSLACK_BOT_TOKEN xoxb-secret\nxoxb-pasted\nSIGNOFF_OPERATOR\n"
    )
    done = signoff(tmp_path, "manifest")
    assert done.returncode == 0, done
    warnings = done.stderr.splitlines()
    assert len(warnings) == 3, done.stderr
    for line, warning in zip((2, 3, 4), warnings, strict=True):
        assert warning.endswith(f".env line {line} is not NAME=value; it is ignored")
    assert "xoxb-" not in done.stderr and "python-dotenv" not in done.stderr
