"""Every error the bot raises, in one tree.

::

    BotError
    ├── SettingsError        a SLACK_* / SIGNOFF_* setting is missing or malformed
    │   └── EnvFileUnreadable    .env cannot be read as text
    ├── SlackUnreachable (url)            Slack's Web API did not answer at SLACK_API_URL
    ├── TokenRefused (variable, error)    Slack refused the token that variable holds
    ├── PayloadError         (bot.slack.payloads) a signed request's body is malformed
    ├── JsonTooDeep (limit)  (bot.forms.json_text) typed JSON nests past the limit (a ValueError)
    ├── TamperedMetadata     (bot.slack.sealing) a form's private_metadata was not sealed by us
    ├── ModalError           (bot.forms.modals) a schema cannot become a modal
    │   └── UnsupportedField (field, reason)
    │       └── SecretField (field)       a secret, which a Slack form never asks for
    ├── ChangeDeferred (run_id, seconds)  the Slack side takes a run's change later, as expected
    │   ├── PostInFlight (run_id, post_id)    another process is making this post right now
    │   ├── SlackRateLimited (run_id, seconds)   Slack asked the bot to slow down (429)
    │   ├── SlackUnavailable (run_id)    Slack unreachable or failing (5xx), past the retries
    │   ├── ChannelRefused (run_id, channel, error)   Slack refuses the bot SIGNOFF_CHANNEL
    │   └── BotTokenRefused (run_id, error)   Slack stopped taking SLACK_BOT_TOKEN
    └── BackendError         (bot.backends) what runs the flows failed or refused
        ├── BackendUnavailable (backend)               it did not answer (database, server)
        │   ├── BackendBusy (backend, key)             a claim bounded in time did not get
        │   │                                          its turn: another writer held the database
        │   └── CredentialsRefused (backend, settings) the server refused the credentials those
        │                                              settings hold, or asked for some none held
        ├── RunNotFound (run_id)
        ├── RunUnreadable (run_id, reason)             a run's stored rows were changed by hand
        ├── FlowUnknown (flow, known)                  no flow or deployment of that name
        ├── NotPermitted (action, actor, reason, allowed, run_id)   the rules refuse this person
        ├── NotAPerson (actor_id)                      a user group's id where one person acts
        │                                              (also a ValueError)
        ├── MembersUnreadable (groups, error)          (bot.slack.approvers) Slack would not say
        │                                              who is in a user group a rule names
        ├── ChannelUnreadable (channel, error)         (bot.slack.channel_access) Slack would
        │                                              not say who is in a run's channel
        ├── ParametersInvalid (flow, errors)           parameters break the flow's schema
        └── RunNotChangeable (run_id, current, requested)   e.g. cancelling a finished run
"""

from __future__ import annotations


class BotError(Exception):
    """The Slack side failed."""


class SettingsError(BotError):
    """A setting is missing or malformed."""


class EnvFileUnreadable(SettingsError):
    """The ``.env`` file cannot be read as text, so no setting can be read from it."""


class SlackUnreachable(BotError):
    """Slack's Web API could not be reached."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"Slack could not be reached at SLACK_API_URL={url}: {reason}")


class TokenRefused(BotError):
    """Slack refused a token."""

    def __init__(self, variable: str, error: str) -> None:
        self.variable = variable
        self.error = error
        super().__init__(f"Slack refused the token in {variable}: {error}")


class ChangeDeferred(BotError):
    """A run's change cannot be shown in Slack yet, for a reason that is no failure: the
    backend hands it again after ``seconds`` (or its own retry delay, if longer), saying so
    in a warning rather than an error's traceback."""

    def __init__(self, run_id: str, seconds: float, message: str) -> None:
        self.run_id = run_id
        self.seconds = seconds
        super().__init__(message)


class PostInFlight(ChangeDeferred):
    """Another process claimed this Slack post moments ago and may be making it now: the
    change that asks for it is handed again later, when the post is found or the claim
    has lapsed (``bot.slack.posting``)."""

    def __init__(self, run_id: str, post_id: str) -> None:
        self.post_id = post_id
        super().__init__(
            run_id, 0.0, f"post {post_id!r} of run {run_id} is being made by another process"
        )


class SlackRateLimited(ChangeDeferred):
    """Slack answered 429 to the calls a run's change needs, after the client's own
    retries: the change is shown once Slack's ``Retry-After`` has passed."""

    def __init__(self, run_id: str, seconds: float, method: str) -> None:
        self.method = method
        super().__init__(
            run_id,
            seconds,
            f"Slack rate-limits {method}; run {run_id}'s change waits {seconds:g} s",
        )


class SlackUnavailable(ChangeDeferred):
    """Slack could not be reached, or answered a 5xx, for a run's change, after the client's
    own retries: an outage, ridden out by handing the change again a little later."""

    def __init__(self, run_id: str, why: str) -> None:
        super().__init__(
            run_id, self.SECONDS, f"Slack is unavailable ({why}); run {run_id}'s change waits"
        )

    #: the least wait before the change is handed again (the backend's backoff may be longer)
    SECONDS = 1.0


class ChannelRefused(ChangeDeferred):
    """Slack refuses the bot the default channel (``SIGNOFF_CHANNEL``): the app is not in
    it, or it is archived or gone. A configuration error, but one that an invite fixes while
    ``serve`` runs: the change is handed again, with the backend's back-off, until then."""

    def __init__(self, run_id: str, channel: str, error: str) -> None:
        self.channel = channel
        self.error = error
        super().__init__(
            run_id,
            0.0,
            f"Slack refuses the bot SIGNOFF_CHANNEL={channel} ({error}); run {run_id}'s "
            "change waits until the app is invited there or SIGNOFF_CHANNEL names a channel "
            "it is in",
        )


class BotTokenRefused(ChangeDeferred):
    """Slack refuses ``SLACK_BOT_TOKEN`` for a run's change while ``serve`` runs (revoked,
    the app uninstalled): the change is kept and handed again, with the backend's back-off,
    so that it is shown once a valid token is set."""

    def __init__(self, run_id: str, error: str) -> None:
        self.error = error
        super().__init__(
            run_id,
            0.0,
            f"Slack refuses the token in SLACK_BOT_TOKEN ({error}); run {run_id}'s change "
            "waits until serve runs with a valid bot token",
        )


class PayloadError(BotError):
    """A request's body is not what Slack sends; the message names what was wrong."""


class JsonTooDeep(BotError, ValueError):
    """JSON a person typed (a parameter, an answer) nests deeper than ``limit`` levels of
    lists and objects. Also a ValueError: it is JSON that cannot be read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"JSON nested too deeply (more than {limit} levels of lists and objects)")


class TamperedMetadata(BotError):
    """A form came back with ``private_metadata`` that this app did not seal."""


class ModalError(BotError):
    """A modal could not be built."""


class UnsupportedField(ModalError):
    """A field of the input model cannot be represented by any Slack input."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        where = f"field {field!r}" if field else "the input model"
        super().__init__(f"{where} cannot be shown in a Slack modal: {reason}")


class SecretField(UnsupportedField):
    """A secret (``SecretStr``): Slack shows what is typed, so a form never asks for one; it
    is given from the command line (``signoff runs resume --input``)."""

    def __init__(self, field: str) -> None:
        super().__init__(
            field, "Slack shows what is typed, so a secret must not be asked for in a modal"
        )


class BackendError(BotError):
    """The backend that runs the flows failed or refused; the message says what happened."""


class BackendUnavailable(BackendError):
    """The backend did not answer."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(f"the {backend} backend is unavailable: {reason}")


class BackendBusy(BackendUnavailable):
    """A claim bounded in time (``Backend.claim_once(within=)``) did not get its turn to
    write: another writer held the database. Nothing was claimed."""

    def __init__(self, backend: str, key: str, reason: str) -> None:
        self.key = key
        super().__init__(backend, reason)


class CredentialsRefused(BackendUnavailable):
    """The backend's server refused the credentials that ``settings`` hold (or asked for
    credentials and none was set): an operator's to mend, which waiting does not, so
    ``serve`` stops at start-up on it. ``settings`` names the variables to set or correct;
    the message names them too, never their values."""

    def __init__(self, backend: str, settings: tuple[str, ...], message: str) -> None:
        self.backend = backend
        self.reason = message
        self.settings = settings
        BackendError.__init__(self, message)


class RunUnreadable(BackendError):
    """A run's stored rows were changed outside Signoff and cannot be read. Not the backend
    being down: retrying changes nothing, and every other run still answers."""

    def __init__(self, run_id: str, reason: str, message: str) -> None:
        self.run_id = run_id
        self.reason = reason
        super().__init__(message)


class RunNotFound(BackendError):
    """No run has that id (or, with ``several``, more than one run starts with it)."""

    def __init__(
        self, run_id: str, *, several: bool = False, hint: str | None = None, choices: str = ""
    ) -> None:
        self.run_id = run_id
        self.several = several
        #: some of the runs that start with it, as people tell them apart (the engine's
        #: ``RunNotFound.choices``): ``1a2b3c4d, 1a2b9f00, ...``
        self.choices = choices
        if several:
            among = f" ({choices})" if choices else ""
            super().__init__(f"more than one run id starts with {run_id!r}{among}; give more of it")
        else:
            super().__init__(f"no run with id {run_id!r}" + (f" ({hint})" if hint else ""))


class FlowUnknown(BackendError):
    """No flow (or deployment) of that name can be started."""

    def __init__(self, flow: str, known: tuple[str, ...] = ()) -> None:
        self.flow = flow
        self.known = known
        super().__init__(f"no flow named {flow!r}")


class NotPermitted(BackendError):
    """The rules do not let this person do this; nothing was changed."""

    def __init__(
        self,
        action: str,
        actor: str | None,
        reason: str,
        *,
        allowed: tuple[str, ...] = (),
        run_id: str | None = None,
        message: str | None = None,
    ) -> None:
        self.action = action
        self.actor = actor
        self.reason = reason
        self.allowed = allowed
        self.run_id = run_id
        super().__init__(message or f"{actor or 'someone'} may not {action}: {reason}")


class NotAPerson(BackendError, ValueError):
    """A Slack user group's id where one person acts (answers, starts, cancels, hands on, is
    handed a decision): rules may name a group, but a group is nobody in particular. The
    engine refuses them alike (``signoff.engine.NotAPerson``); a ValueError, as the other
    ids an ``Actor`` refuses are."""

    def __init__(self, actor_id: str, what: str = "actor id") -> None:
        self.actor_id = actor_id
        super().__init__(
            f"{what} {actor_id!r} is a Slack user group's id, not one person's: rules may "
            "name a group, but a person acts (name one of its members)"
        )


class MembersUnreadable(BackendError):
    """Slack would not say who is in the user groups a rule names (a rate limit, an
    outage), and no members read before may stand in: whether this person may act cannot
    be told, so nothing was done. Not a refusal: the person is told to try again."""

    def __init__(self, groups: tuple[str, ...], error: str) -> None:
        self.groups = groups
        self.error = error
        super().__init__(
            f"Slack would not say who is in user group {', '.join(groups)} just now ({error}), "
            "so Signoff cannot tell whether you may do this. Nothing was done; try again in "
            "a minute."
        )


class ChannelUnreadable(BackendError):
    """Slack would not say whether a run's channel is private or who is in it: the run,
    which may be for that channel's members only, is not shown. Not a refusal."""

    def __init__(self, channel: str, error: str) -> None:
        self.channel = channel
        self.error = error
        super().__init__(
            f"could not check whether you are a member of <#{channel}> ({error}), where this "
            "run's messages are; try again in a minute."
        )


class ParametersInvalid(BackendError):
    """Parameters do not match what the flow takes; ``errors`` names each field."""

    def __init__(self, flow: str, errors: dict[str, str], message: str | None = None) -> None:
        self.flow = flow
        self.errors = errors
        detail = "; ".join(f"{k or '(parameters)'}: {v}" for k, v in errors.items())
        super().__init__(message or f"parameters for {flow!r} rejected: {detail}")


class RunNotChangeable(BackendError):
    """The run cannot move to that state from where it is."""

    def __init__(
        self, run_id: str, current: str, requested: str, message: str | None = None
    ) -> None:
        self.run_id = run_id
        self.current = current
        self.requested = requested
        if message is None and current == requested:  # cancelling a cancelled run, say
            message = f"run {run_id} is already {current}"
        super().__init__(message or f"run {run_id} is {current} and cannot become {requested}")


__all__ = [
    "BackendBusy",
    "BackendError",
    "BackendUnavailable",
    "BotError",
    "ChannelUnreadable",
    "CredentialsRefused",
    "FlowUnknown",
    "JsonTooDeep",
    "MembersUnreadable",
    "ModalError",
    "NotPermitted",
    "ParametersInvalid",
    "PayloadError",
    "RunNotChangeable",
    "RunNotFound",
    "RunUnreadable",
    "SettingsError",
    "SlackUnreachable",
    "TamperedMetadata",
    "TokenRefused",
    "UnsupportedField",
]
