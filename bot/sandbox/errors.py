"""Errors the sandbox raises in the test process (never sent to the app).

::

    SandboxError
    ├── SandboxNotRunning          the Web API server is not started
    ├── ConditionTimeout           wait_for() reached its deadline (also an AssertionError)
    ├── NothingToInteractWith      no open view / message / element to click or submit
    ├── NoSuchUser                 the driver was given a user the workspace does not have
    ├── AppNotConnected            no Socket Mode connection to deliver to
    ├── NotAcknowledged            the app did not ack a Socket Mode envelope in time
    ├── PageRequestInvalid         the sandbox page was asked to act as no one, or on nothing
    └── SubmitBlocked              the Slack client would not send this submission
        ├── UnknownField           a value was given for a field the view does not have
        └── FieldRejected          client-side checks failed (required, length, format, bounds)

Slack Web API errors (``channel_not_found``, ``expired_trigger_id``, ...) never reach the test:
inside the emulator they are raised as :class:`ApiFailure` and answered to the app as
``{"ok": false, "error": ...}``, as Slack does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ApiFailure",
    "AppNotConnected",
    "ConditionTimeout",
    "FieldRejected",
    "NoSuchUser",
    "NotAcknowledged",
    "NothingToInteractWith",
    "PageRequestInvalid",
    "SandboxError",
    "SandboxNotRunning",
    "SubmitBlocked",
    "UnknownField",
]


class SandboxError(Exception):
    """Base class of every error the sandbox raises."""


class SandboxNotRunning(SandboxError):
    """The sandbox's Web API server is not running; use it as a context manager."""


class ConditionTimeout(SandboxError, AssertionError):
    """A condition passed to ``wait_for`` did not become true before the deadline.

    It is also an ``AssertionError`` so pytest reports it as a failed expectation.
    """


class NothingToInteractWith(SandboxError):
    """There is no open view, message or element matching what the driver was asked to use."""


class NoSuchUser(SandboxError):
    """The driver was given a user id or name the workspace does not have (see ``add_user``)."""


class AppNotConnected(SandboxError):
    """No app holds a Socket Mode connection to the sandbox, so there is nothing to deliver to.

    The app connects by calling ``apps.connections.open`` against the sandbox's Web API with an
    app-level token and opening the WebSocket URL it gets back.
    """


class NotAcknowledged(SandboxError):
    """The app did not acknowledge a Socket Mode envelope before the deadline.

    Bolt sends no ack when no listener matched, or when the listener failed before ``ack()``.
    """


class PageRequestInvalid(SandboxError):
    """The sandbox page got a request naming no member, no open view or no message to act on."""


class SubmitBlocked(SandboxError):
    """The Slack client would refuse to send this submission, so nothing was sent.

    Attributes:
        errors: Input ``block_id`` -> the message the client would show under it.
    """

    def __init__(self, message: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors: dict[str, str] = dict(errors or {})


class UnknownField(SubmitBlocked):
    """A value was given for a key matching no input of the view (path, block_id or label)."""


class FieldRejected(SubmitBlocked):
    """Client-side checks failed: a required input is empty, or a value breaks the element's limits.

    Example:
        >>> try:
        ...     driver.submit("U0ALICE", {"reason": ""})
        ... except FieldRejected as exc:
        ...     assert exc.errors == {"field:reason": "Please fill out this field."}
    """


class ApiFailure(Exception):
    """Inside the emulator: a Web API call fails with this Slack error code.

    Attributes:
        error: Slack's error code (``channel_not_found``).
        messages: ``response_metadata.messages`` (Block Kit problems).
        status: HTTP status of the answer (200 for ordinary Slack errors).
    """

    def __init__(self, error: str, messages: Sequence[str] = (), status: int = 200) -> None:
        super().__init__(error)
        self.error = error
        self.messages = list(messages)
        self.status = status

    def body(self) -> dict[str, Any]:
        """The JSON body Slack answers."""
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body
