"""A script's runs on stderr, when the script configured no logging of its own.

A flow called from ``python flows.py`` logs through ``logging``, whose default shows
nothing below a warning: the script would pause without a word, and its
``get_run_logger()`` lines would be stored but never seen. So, as Prefect does, the first
run a process starts checks whether anything configured logging (a handler on the root
logger or on ``signoff``, or a level set on ``signoff``). If nothing did, the runs' own
lines are shown on stderr: each start and end, each pause with how to answer it, and
what the flows log::

    12:00:01 INFO    greet-user 1a2b3c4d: run started
    12:00:01 INFO    greet-user 1a2b3c4d: waiting for input 'name'; answer it in Slack
        (signoff serve) or with: signoff runs resume 1a2b3c4d --input '{...}'

An application that configures logging (the ``signoff`` command, a test run, a service)
is left exactly as it is; so is a script that configures it after its first run (the
handler then takes itself away).
"""

from __future__ import annotations

import logging
import sys
import threading

__all__ = ["show_runs_if_unconfigured"]

#: the records shown: the runs' own lines (warnings and errors are shown whatever their
#: action)
_SHOWN = frozenset(
    {
        "flow_log",
        "task_log",
        "run_started",
        "run_paused",
        "run_suspended",
        "run_completed",
        "run_failed",
        "run_cancelled",
        # Ctrl-C while a run waited: it is not lost, but answering it now needs a worker
        "paused_runs_suspended",
    }
)
_WAITING = ("run_paused", "run_suspended")
#: what flows and tasks log themselves (``get_run_logger()``)
_LOGGED = ("flow_log", "task_log")

_lock = threading.Lock()
_checked = False


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        run_id = getattr(record, "run_id", None)
        flow = getattr(record, "flow", None)
        short = str(run_id)[:8] if run_id else ""
        where = " ".join(part for part in (flow, short) if part)
        task = getattr(record, "task", None)
        if task and getattr(record, "action", None) in _LOGGED:
            # which task logged it, as Prefect's "Task run 'greet-0' - ..." says
            where = f"{where} [{task}]" if where else f"[{task}]"
        text = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} "
        text += f"{where}: {record.getMessage()}" if where else record.getMessage()
        if getattr(record, "action", None) in _WAITING:
            key = str(getattr(record, "key", ""))
            if key and not key.isdigit():  # a name the flow gave, not the pause's number
                text += f" {key!r}"
            answer = f"signoff runs resume {short}"
            if getattr(record, "takes_input", True):
                answer += " --input '{...}'"
            text += f"; answer it in Slack (signoff serve) or with: {answer}"
        elif getattr(record, "action", None) == "paused_runs_suspended" and short:
            text += (
                f"; answering it (in Slack, or with: signoff runs resume {short} ...)"
                " runs the flow again on a worker (signoff worker)"
            )
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _Console(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, silent as soon as the process configures logging of its own."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(_Format())
        self.addFilter(
            lambda r: r.levelno >= logging.WARNING or getattr(r, "action", None) in _SHOWN
        )

    def emit(self, record: logging.LogRecord) -> None:
        if logging.getLogger().handlers:
            # The process configured logging after all: leave it as if this had not been.
            package = logging.getLogger("signoff")
            package.removeHandler(self)
            package.setLevel(logging.NOTSET)
            return
        super().emit(record)


def show_runs_if_unconfigured() -> None:
    """Show this process's runs on stderr if nothing configured logging; checked once."""
    global _checked
    if _checked:
        return
    with _lock:
        if _checked:
            return
        _checked = True
        package = logging.getLogger("signoff")
        if logging.getLogger().handlers or package.handlers or package.level != logging.NOTSET:
            return
        package.setLevel(logging.INFO)
        package.addHandler(_Console())
