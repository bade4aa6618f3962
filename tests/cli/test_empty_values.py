"""An empty value (an unset shell variable: ``--flows "$FLOWS"``) is refused by option, the
way ``--flow ""`` is, instead of meaning "everything" or "nobody"."""

from __future__ import annotations

from pathlib import Path

import pytest

from signoff.engine import FlowImportError, load_flows
from tests.cli.in_process import run_cli

#: a file beside the flows that must never be run as one: it leaves a mark when imported
TRAP = 'from pathlib import Path\n\nPath("trap-was-imported").touch()\n'


@pytest.mark.parametrize(
    "command_line",
    [
        ("run", "access-request", "--param", "user=ada", "--flows"),
        ("worker", "--flows"),
        ("flows", "list", "--flows"),
        ("sandbox", "--flows", "flows.py", "--flows"),
        ("serve", "--flows"),
        ("demo", "--flows"),
        ("demo", "--web", "--flows", "flows.py", "--flows"),
    ],
)
@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_flows_value_is_refused_and_imports_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], command_line: tuple[str, ...], empty: str
) -> None:
    (project / "trap.py").write_text(TRAP)
    status, out, err = run_cli(capsys, *command_line, empty)
    assert (status, out) == (2, "")
    assert err.startswith("error: Invalid value for '--flows': is empty;")
    assert not (project / "trap-was-imported").exists()


def test_loading_an_empty_source_from_python_is_refused(project: Path) -> None:
    (project / "trap.py").write_text(TRAP)
    with pytest.raises(FlowImportError, match=r"cannot load flows from '': no path or module"):
        load_flows("")
    assert not (project / "trap-was-imported").exists()


@pytest.mark.parametrize(
    ("command_line", "option"),
    [
        (("runs", "list", "--started-by", ""), "--started-by"),
        (("runs", "list", "--answered-by", " "), "--answered-by"),
        (("runs", "resume", "abcd", "--input", "{}", "--group", ""), "--group"),
    ],
)
def test_an_empty_person_or_group_is_refused_by_option(
    project: Path, capsys: pytest.CaptureFixture[str], command_line: tuple[str, ...], option: str
) -> None:
    """An empty --started-by listed nobody's runs ("no runs"), as if there were none."""
    run_cli(capsys, "run", "access-request", "--flows", "flows.py", "--param", "user=ada")
    status, out, err = run_cli(capsys, *command_line)
    assert (status, out) == (2, "")
    assert err.startswith(f"error: Invalid value for '{option}': is empty;")


@pytest.mark.parametrize(
    ("command_line", "option", "said"),
    [
        (("runs", "resume", "abcd", "--input", "{}", "--as", " alice"), "--as", "actor id"),
        (("runs", "reassign", "abcd", "--to", "bob ", "--as", "alice"), "--to", "actor id"),
        (("runs", "resume", "abcd", "--input", "{}", "--group", "S0SRE "), "--group", ""),
    ],
)
def test_a_person_or_group_with_spaces_around_it_is_refused_by_option(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    command_line: tuple[str, ...],
    option: str,
    said: str,
) -> None:
    """ " alice" answering beside "alice" counted as a second person of a quorum, and a
    decision handed to "bob " was nobody's to answer."""
    status, out, err = run_cli(capsys, *command_line)
    assert (status, out) == (2, "")
    assert err.startswith(f"error: Invalid value for '{option}': {said}"), err
    assert "has spaces around it" in err
