"""``get_run_logger()``: a logger whose records are stored with the run."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from signoff.engine.context import current_run, current_task
from signoff.engine.errors import MissingContext
from signoff.engine.serialization import clipped, preview, storable_text

_flow_logger = logging.getLogger("signoff.engine.flow_runs")


class RunLogger(logging.LoggerAdapter[logging.Logger]):
    """Logs to the standard ``engine.flow_runs`` logger and keeps each record for the run."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        ctx = current_run.get()
        if ctx is not None and level >= logging.INFO:
            text = stored_text(msg, args, kwargs.get("exc_info"))
            with ctx.lock:
                ctx.logs.append(
                    (datetime.now(UTC), logging.getLevelName(level), text, current_task.get())
                )
        super().log(level, msg, *args, **kwargs)


#: the longest message kept with a run; the rest is cut, with a note of how much
MAX_LOG_TEXT = 100_000


def stored_text(msg: object, args: tuple[Any, ...], exc_info: object = None) -> str:
    """The message as ``logging`` renders it (``%`` with ``args``, one mapping included),
    cut to ``MAX_LOG_TEXT``. A call whose arguments do not fit its format keeps both, as
    ``logging`` goes on after such a call rather than failing the flow. With ``exc_info``
    (``log.exception(...)``, ``exc_info=True`` or an exception), the traceback follows
    the message, as a handler writes it: it is what the reader of the run needs most."""
    record = logging.LogRecord(_flow_logger.name, logging.INFO, "", 0, msg, args, None)
    try:
        text = record.getMessage()
    except Exception as exc:  # what a format and its arguments raise: TypeError, KeyError...
        # Each part shown as far as it can be: an argument whose __repr__ (or a message
        # whose __str__) raises must not fail the flow from this fallback either.
        shown = ", ".join(preview(arg) for arg in args)
        text = f"{_as_text(msg)} ({shown}) (the arguments do not fit the message: {_as_text(exc)})"
    trace = _traceback(exc_info)
    if trace:
        text += "\n" + trace
    return clipped(storable_text(text), MAX_LOG_TEXT)


def _as_text(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return preview(value)


def _traceback(exc_info: object) -> str:
    """The traceback ``logging`` would write for a call's ``exc_info``, or ''."""
    if not exc_info:
        return ""
    # As logging.Logger._log reads it: an exception, a (type, value, tb) tuple, or true.
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    if exc_info[0] is None:  # exc_info=True outside an except block: nothing to show
        return ""
    return _formatter.formatException(exc_info)


_formatter = logging.Formatter()


def get_run_logger() -> RunLogger:
    """A logger for the current flow or task run; its records are stored with the run.

    In a task called outside any flow (as a plain function) it logs as the task, and
    nothing is stored: there is no run.

    Example::

        @flow
        def deploy():
            get_run_logger().info("starting")

    Raises:
        MissingContext: called outside a flow run and outside a task.
    """
    ctx = current_run.get()
    if ctx is None:
        task = current_task.get()
        if task is None:
            raise MissingContext("get_run_logger() can only be called inside a flow run or a task")
        return RunLogger(_flow_logger, {"action": "task_log", "task": task})
    return RunLogger(
        _flow_logger,
        {
            "action": "flow_log",
            "run_id": ctx.run_id,
            "flow": ctx.flow.name,
            "task": current_task.get(),
        },
    )
