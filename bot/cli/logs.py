"""Where a ``signoff`` process logs, at what level, and in which format.

Two formats, chosen with ``SIGNOFF_LOG_FORMAT``:

- ``text`` (the default): ``time LEVEL action message key=value...``, for a terminal.
- ``json``: one JSON object per line (``python-json-logger``) with ``time``, ``level``,
  ``logger``, ``action``, ``message`` and the record's ids (``run_id``, ``flow``, ...),
  for a log pipeline. ``action`` is the stable key to filter on.

``SIGNOFF_LOG_LEVEL`` (``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``) overrides the level a
command would log at.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import click
from pythonjsonlogger.json import JsonFormatter

if TYPE_CHECKING:
    from signoff.bot.config import LogSettings

#: Record attributes (passed as ``extra``) that text lines show first after the message;
#: every other ``extra`` follows them, in the order the call gave it.
LOG_CONTEXT = ("run_id", "flow", "key", "state", "error")
#: What every record has, and so is no ``extra``; ``color_message`` is uvicorn's message
#: again with terminal colours.
_NOT_EXTRA = frozenset(
    [*vars(logging.LogRecord("", 0, "", 0, "", (), None)), "message", "asctime", "taskName"]
) | {"action", "color_message"}
#: Libraries whose INFO records (migrations, scheduler jobs) say nothing about runs.
#: libraries that log routine work at INFO: httpx logs every request to a Prefect server
#: ("HTTP Request: POST .../flow_runs/filter"), most of a Prefect bot's log otherwise
QUIET_LOGGERS = ("alembic", "apscheduler", "httpx", "httpcore")


class TextFormatter(logging.Formatter):
    """``time LEVEL action message key=value...``: the record's ``action``, then its run ids
    and everything else it was given as ``extra`` (why a request was refused, which user
    group could not be read), which the JSON format carries too."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Format one record on one line (its line breaks written ``\\n``), defaulting
        ``action`` to ``-`` for records without one."""
        action = getattr(record, "action", None) or "-"
        extras = [name for name in vars(record) if name not in _NOT_EXTRA]
        names = [*LOG_CONTEXT, *(name for name in extras if name not in LOG_CONTEXT)]
        context = "".join(
            f" {name}={value}"
            for name in names
            if not name.startswith("_") and (value := getattr(record, name, None)) is not None
        )
        line = f"{record.asctime} {record.levelname:<7} {action:<16} {record.message}{context}"
        # One record, one line (a traceback aside): a library's message of several lines
        # (slack_sdk's "...\nThe server responded with: ...") left lines without a time,
        # a level or an action to grep for.
        return "\\n".join(line.splitlines())


class JsonLineFormatter(JsonFormatter):
    """One JSON object per record; every record has an ``action`` (``null`` when unset)."""

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Add the standard fields, then ``action`` whether or not the record set one."""
        super().add_fields(log_data, record, message_dict)
        action = getattr(record, "action", None)
        if action is None and not record.name.startswith("signoff."):
            # A library's own line (slack_sdk's retries, say): filtered on by its name.
            action = record.name.split(".", 1)[0]
        log_data.setdefault("action", action)


#: whether this process's log lines are JSON (``configure_logging``)
_json_lines = False
_logger = logging.getLogger("signoff.bot.cli")


def tell_operator(line: str, *, action: str, level: int = logging.ERROR) -> None:
    """Write ``line`` (``error: ...``, or a note such as where ``serve`` listens) to stderr
    as it is, or as a JSON log line with ``action`` when the logs are JSON: a log pipeline
    that reads JSON drops a plain line, and a command's last error is the line it needs."""
    if not _json_lines:
        click.echo(line, err=True)
        return
    _logger.log(level, line.removeprefix("error: "), extra={"action": action})


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a record is emitted, as logging's last resort
    does: a command run in-process (a test, click's ``CliRunner``) has its stderr swapped
    for a while, and a thread's later warning must not go to the closed stand-in."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # always sys.stderr


def configure_logging(default_level: int, settings: LogSettings | None = None) -> None:
    """Send log records to stderr in the configured format.

    Args:
        default_level: the level the command logs at unless ``SIGNOFF_LOG_LEVEL`` says otherwise.
        settings: the log settings; read from the environment (and ``.env``) when None.

    Raises:
        SettingsError: ``SIGNOFF_LOG_LEVEL`` or ``SIGNOFF_LOG_FORMAT`` is malformed.
    """
    # Imported here, as the command starts: reading settings costs a tenth of a second to
    # import (pydantic-settings), which ``signoff --help`` need not pay.
    from signoff.bot.config import LogSettings

    settings = settings or LogSettings.load()
    level = logging.getLevelName(settings.log_level) if settings.log_level else default_level
    handler = StderrHandler()
    global _json_lines
    _json_lines = settings.log_format == "json"
    handler.setFormatter(JsonLineFormatter() if _json_lines else TextFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for chatty in QUIET_LOGGERS:
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
    # slack_sdk's DEBUG lines hold each call's whole body, Socket Mode's whole envelopes and
    # response_urls (which let anyone post in the channel for 30 minutes): never logged.
    logging.getLogger("slack_sdk").setLevel(max(level, logging.INFO))
    # Its webhook client (Bolt's ``respond``) names the whole response_url at INFO as it
    # retries a post that failed; its ERROR line that the post failed names none.
    logging.getLogger("slack_sdk.webhook").setLevel(max(level, logging.WARNING))
