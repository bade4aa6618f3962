"""Every error the engine raises, in one tree.

::

    EngineError
    ├── ConfigurationError            a setting is missing or malformed
    ├── FlowNotFound (flow)           no flow of that name is registered or importable
    ├── FlowImportError (path)        a --flows path or module could not be loaded
    ├── InvalidParameters (flow)      flow parameters do not match the function's type hints
    ├── MissingContext                a run-only call was made outside a flow run (also a RuntimeError)
    ├── CannotSuspend (run_id)        this run cannot be suspended (a nested flow, or one not
    │                                 running; also a RuntimeError)
    ├── RunNotFound (run_id)
    ├── RunNotWaiting (run_id)        resume/cancel of a run that is not waiting for input
    │   │                             (also importable as Prefect's NotPausedError)
    │   └── AlreadyAnswered (run_id, key, responder)   ... because someone answered it first
    ├── PauseExpired (run_id, key)    the pause's deadline has passed (also a PauseTimeout)
    ├── NotAllowed (action, actor, run_id, flow, allowed)   the rules refuse this person
    │   └── ResponderNotAllowed (run_id, key, responder)    ... answering this pause
    ├── NotAPerson (actor_id)         a group's id where one person acts (also a ValueError)
    ├── InputInvalid (run_id, key, errors)   input does not match the stored JSON schema
    │                                 (also a RuntimeError)
    ├── InvalidTransition (run_id, current, requested)
    ├── AlreadyWaiting (run_id, key)  a second pause while the run waits on one (also a RuntimeError)
    ├── RunTakenOver (run_id)         another process runs it now: this one was taken for dead
    ├── UnstorableValue (run_id)      a value the run must keep cannot be serialised
    ├── UnloadableValue (run_id, what)   a value the run stored cannot be loaded by this code
    ├── FlowChanged (run_id, key)     a re-run asks for other input where the run asked before
    ├── LeaseLost (consumer)          another process took over a durable consumer
    ├── ConsumerNotFound (consumer)   no durable consumer of that name has read the events
    ├── ConsumerInUse (consumer, owner)   a running process holds the consumer: not forgotten
    ├── DeliverLater (run_id, seconds)   an observer cannot take an event yet, as expected
    │                                 (the service it writes to asks it to slow down)
    └── StoreError                    the database failed; the driver error is in __cause__
        ├── DatabaseUnavailable          the server cannot be reached yet (it refused the
        │                                connection, or is starting or shutting down)
        ├── DatabaseBusy (key, seconds)  a claim bounded in time did not get its write turn:
        │                                another writer held the database; nothing was claimed
        ├── SchemaOutdated (current, head)   the schema needs an upgrade that was not asked for
        ├── SchemaTooNew (current, head)     a newer Signoff upgraded the schema past this one
        ├── NotSignoffDatabase (reason)      the database is another application's
        ├── SchemaRevisionLost (tables)      Signoff's tables, but no record of their revision
        ├── DatabaseNotFound (path)   a SQLite file that was to be read, not made, is not there
        ├── AuditRecordUnreadable (seq, reason)  a stored audit record was edited out of shape
        └── RunUnreadable (run_id, reason)       a stored run, or a row of its, was edited out of shape

(The store's ``NotCommitted``, a ``StoreError`` for a write the server rolled back when it
dropped the connection, is the store's cue to write again: ``engine.store.dropped``.)

Control flow that is not an error lives outside the tree:

- ``PauseTimeout`` (an ``Exception``; Prefect's ``FlowPauseTimeout``) is raised inside a
  flow when nobody answered in time; the flow may catch it. ``PauseExpired``, raised to
  an answer that came too late, is one too, as Prefect raises ``FlowPauseTimeout`` there.
- ``RunSuspended`` is raised to the caller of a flow that suspended itself; it carries the run id.
- ``RunCancelled`` is raised to the caller of a flow whose run was cancelled.

The class docstring is the default message, so every class reads as the fact it states.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


# Defined before the tree's classes because PauseExpired is also one (Prefect raises its
# FlowPauseTimeout for both).
class PauseTimeout(Exception):
    """Nobody answered the pause in time.

    Also made as Prefect makes its ``FlowPauseTimeout``, from a message alone
    (``FlowPauseTimeout("Flow run was paused and never resumed.")``, in a mock or a
    re-raise); ``run_id`` and ``key`` are then None.
    """

    def __init__(
        self,
        run_id: str | None = None,
        key: str | None = None,
        timeout: float | None = None,
        *,
        message: str | None = None,
        answers: int = 0,
        quorum: int = 1,
    ) -> None:
        if key is None and message is None:
            # Prefect's form: the one argument is the message.
            run_id, message = None, run_id
        self.run_id = run_id
        self.key = key
        self.timeout = timeout
        #: how many of the ``quorum`` answers it needed came in time
        self.answers = answers
        self.quorum = quorum
        waited = f" for {timeout:g}s" if timeout is not None else ""
        if message is None and key is not None:
            message = f"run {run_id} waited{waited} for input {key!r} and {missed(answers, quorum)}"
        super().__init__(message or (self.__doc__ or "").splitlines()[0])


def missed(answers: int, quorum: int) -> str:
    """How a pause ran out of time: ``nobody answered in time``, or for a quorum answered
    in part, how far it got."""
    if answers and quorum > 1:
        return f"got {answers} of the {quorum} answers it needs in time"
    return "nobody answered in time"


class EngineError(Exception):
    """The engine failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigurationError(EngineError):
    """A setting is missing or malformed."""


class FlowNotFound(EngineError):
    """No flow of that name is known."""

    def __init__(
        self, flow: str, message: str | None = None, *, suggestions: Sequence[str] = ()
    ) -> None:
        self.flow = flow
        #: registered names close to ``flow`` (``access_request`` -> ``access-request``)
        self.suggestions = tuple(suggestions)
        hint = ""
        if self.suggestions:
            hint = "; did you mean " + " or ".join(repr(name) for name in self.suggestions) + "?"
        super().__init__(message or f"no flow named {flow!r} is registered{hint}")


class FlowImportError(EngineError):
    """Flows could not be loaded."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)


class InvalidParameters(EngineError):
    """Flow parameters do not match the flow's signature."""

    def __init__(self, flow: str, errors: Mapping[str, str]) -> None:
        self.flow = flow
        self.errors = dict(errors)
        # "" holds what concerns no one parameter (the call's shape): said without a name.
        detail = "; ".join(f"{k}: {v}" if k else v for k, v in self.errors.items())
        super().__init__(f"invalid parameters for flow {flow!r}: {detail}")


class MissingContext(EngineError, RuntimeError):
    """This call only works inside a flow run.

    Also a ``RuntimeError``, as Prefect's is, so ``except RuntimeError`` code keeps working.
    """


class CannotSuspend(EngineError, RuntimeError):
    """This run cannot be suspended.

    Raised for a flow called from another flow: a suspend ends the process's part of the
    run, and only the outermost run can be run again from the start. Raised too when
    ``suspend_flow_run(flow_run_id=...)`` names a run that is not running. Also a
    ``RuntimeError``, as Prefect's "Cannot suspend subflows" and "Flow run cannot be
    suspended" are.
    """

    def __init__(self, run_id: str, reason: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} cannot be suspended: {reason}")


class RunNotFound(EngineError):
    """No run has that id (or, with ``several``, more than one run starts with it).

    ``candidates`` are the ids of some of the runs that start with it (the store reads a
    few), and ``choices`` names them as short as tells them apart (``1a2b3c4d, 1a2b9f00``),
    with ``...`` when there are more: the person who typed the prefix picks one.
    """

    def __init__(
        self, run_id: str, *, several: bool = False, candidates: Sequence[str] = ()
    ) -> None:
        self.run_id = run_id
        self.several = several
        self.candidates = tuple(candidates)
        self.choices = choices_text(self.candidates)
        if several:
            among = f" ({self.choices})" if self.choices else ""
            super().__init__(f"more than one run id starts with {run_id!r}{among}; give more of it")
        elif len(run_id) > 80:
            super().__init__(f"no run with id {run_id[:40]!r}... ({len(run_id):,} characters)")
        else:
            super().__init__(f"no run with id {run_id!r}")


#: how many runs an ambiguous prefix names (the store reads one more, to say there are more)
SHOWN_CANDIDATES = 5


def choices_text(ids: Sequence[str]) -> str:
    """``ids`` (runs one prefix matched) as people tell them apart: each cut to 8 characters
    (as runs are listed), or more where two would read the same; ``...`` past
    ``SHOWN_CANDIDATES``."""
    shown = list(ids[:SHOWN_CANDIDATES])
    length = 8
    while len({i[:length] for i in shown}) < len(shown) and length < max(map(len, shown)):
        length += 1
    return ", ".join([i[:length] for i in shown] + (["..."] if len(ids) > len(shown) else []))


class RunNotWaiting(EngineError):
    """The run is not waiting for input.

    Also made as Prefect makes its ``NotPausedError``, from a message alone
    (``NotPausedError("Cannot resume a run that isn't paused!")``); ``run_id`` and
    ``state`` are then None.
    """

    def __init__(
        self, run_id: str | None = None, state: str | None = None, *, message: str | None = None
    ) -> None:
        if state is None and message is None:
            # Prefect's form: the one argument is the message.
            run_id, message = None, run_id
        self.run_id = run_id
        #: what the run is instead (its state, and why where that says too little)
        self.state = state
        if message is None and run_id is not None:
            message = f"run {run_id} is not waiting for input (it is {state})"
        super().__init__(message or "The run is not waiting for input.")


class PauseExpired(EngineError, PauseTimeout):
    """The pause's deadline has passed: it can no longer be answered.

    Raised to whoever answers too late. Also a ``PauseTimeout`` (``FlowPauseTimeout``), as
    Prefect's late ``resume_flow_run`` raises, so code written for it catches it; its
    ``run_id`` is the run that was answered, not the run whose code called resume.
    """

    def __init__(self, run_id: str, key: str, deadline: str | None) -> None:
        #: the deadline that passed (ISO 8601); None when the flow stopped awaiting the
        #: pause before any deadline (``asyncio.wait_for`` ran out, its task was cancelled)
        self.deadline = deadline
        when = f"at {deadline}" if deadline else "when its flow stopped awaiting it"
        # PauseTimeout's own constructor: EngineError's would hand it only the message.
        PauseTimeout.__init__(
            self,
            run_id,
            key,
            None,
            message=f"run {run_id} stopped waiting for input {key!r} {when}",
        )


class AlreadyAnswered(RunNotWaiting):
    """Someone else answered this pause first.

    Also a ``RunNotWaiting`` (``NotPausedError``): the run no longer waits for it, and
    Prefect raises ``NotPausedError`` for a second resume, so code written for it catches
    this too. ``state`` is None: what is known is that the pause was answered.
    """

    def __init__(
        self,
        run_id: str,
        key: str,
        responder: str | None,
        responders: Sequence[str | None] = (),
    ) -> None:
        self.key = key
        self.responder = responder
        #: everyone who answered it, oldest first (a quorum's several people)
        self.responders = tuple(responders) or (responder,)
        # as ResponderNotAllowed says: not an empty name
        names = [r or "an anonymous responder" for r in self.responders]
        who = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        super().__init__(
            run_id, message=f"input {key!r} of run {run_id} was already answered by {who}"
        )


class NotAllowed(EngineError):
    """The rules do not let this person do this; nothing was changed."""

    def __init__(
        self,
        action: str,
        actor: str | None,
        reason: str,
        *,
        run_id: str | None = None,
        flow: str | None = None,
        allowed: Sequence[str] = (),
        message: str | None = None,
    ) -> None:
        self.action = action
        self.actor = actor
        self.reason = reason
        self.run_id = run_id
        self.flow = flow
        #: the people and groups the rule lets do it
        self.allowed = tuple(allowed)
        what = f"run {run_id}" if run_id else f"flow {flow!r}"
        super().__init__(
            message or f"{actor or 'an anonymous caller'} may not {action} {what}: {reason}"
        )


class ResponderNotAllowed(NotAllowed):
    """This person may not answer this pause."""

    def __init__(
        self,
        run_id: str,
        key: str,
        responder: str | None,
        reason: str,
        allowed: Sequence[str] = (),
    ) -> None:
        self.key = key
        self.responder = responder
        super().__init__(
            "answer",
            responder,
            reason,
            run_id=run_id,
            allowed=allowed,
            message=f"{responder or 'an anonymous responder'} may not answer run {run_id}: {reason}",
        )


class NotAPerson(EngineError, ValueError):
    """A user group's id was given where one person acts (answers, starts, cancels, hands
    on, or is handed a decision): rules may name a group, but a group is nobody in
    particular. Also a ValueError, as the other ids an ``Actor`` refuses are."""

    def __init__(
        self, actor_id: str, what: str = "actor id", *, message: str | None = None
    ) -> None:
        self.actor_id = actor_id
        super().__init__(
            message
            or f"{what} {actor_id!r} is a Slack user group's id, not one person's: rules may "
            "name a group, but a person acts (name one of its members)"
        )


class InputInvalid(EngineError, RuntimeError):
    """The input does not match the schema the run waits for.

    Also a ``RuntimeError``, as Prefect's "Cannot resume this run: ..." is.
    """

    def __init__(self, run_id: str, key: str, errors: Mapping[str, str]) -> None:
        self.run_id = run_id
        self.key = key
        #: field path ("" for the whole input) -> message
        self.errors = dict(errors)
        detail = "; ".join(f"{k or '(input)'}: {v}" for k, v in self.errors.items())
        super().__init__(f"input for run {run_id} rejected: {detail}")


class InvalidTransition(EngineError):
    """The run cannot move to that state from where it is."""

    def __init__(self, run_id: str, current: str, requested: str) -> None:
        self.run_id = run_id
        self.current = current
        self.requested = requested
        if current == requested:  # cancelling a cancelled run, say
            super().__init__(f"run {run_id} is already {current}")
        else:
            super().__init__(f"run {run_id} is {current} and cannot become {requested}")


class AlreadyWaiting(EngineError, RuntimeError):
    """The run already waits for input: it waits on one pause at a time."""

    def __init__(self, run_id: str, key: str | None) -> None:
        self.run_id = run_id
        self.key = key
        waiting = f"input {key!r}" if key is not None else "input"
        super().__init__(
            f"run {run_id} already waits for {waiting}; a run waits on one pause at a time, "
            "so await its pauses one after another"
        )


class RunTakenOver(EngineError):
    """Another process runs this run now; this one stopped running it."""

    def __init__(
        self, run_id: str, *, closed: bool = False, waited: bool = True, asked: bool = True
    ) -> None:
        self.run_id = run_id
        if closed and not asked:
            # An async flow's store calls run on threads that close stopped.
            super().__init__(
                f"run {run_id} stopped here: its flow went on after this process's engine was "
                "closed, and could store nothing more; a worker runs the flow again, as for a "
                "process that stopped"
            )
            return
        if closed and not waited:
            # Nothing wakes a flow of a closed engine: it stopped rather than wait it out.
            super().__init__(
                f"run {run_id} stopped here: its flow asked for input after this process's "
                "engine was closed; a worker runs the flow again, as for a process that stopped"
            )
            return
        if closed:
            # Not "taken for dead": the engine was closed under the waiting flow.
            super().__init__(
                f"run {run_id} stopped here: this process's engine was closed while its flow "
                "waited; a worker runs the flow again once the run is answered"
            )
            return
        super().__init__(
            f"run {run_id} is run by another process now (this one went quiet for longer than "
            "owner_timeout_seconds and was taken for dead); this process stopped running it"
        )


class UnstorableValue(EngineError):
    """A value the run needs to keep cannot be stored."""

    def __init__(self, run_id: str, what: str, cause: BaseException) -> None:
        self.run_id = run_id
        self.what = what
        super().__init__(
            f"run {run_id} cannot be stored because {what} cannot be serialised "
            f"({type(cause).__name__}: {cause}); "
            + (
                "pass parameters that pickle can store"
                if what.endswith("parameters")
                else "return values that pickle can store"
            )
        )


class UnloadableValue(EngineError):
    """A value the run stored (its parameters, a task's result) cannot be loaded by the
    code running now: most often its class was renamed or moved by a deploy since."""

    def __init__(self, run_id: str, what: str, cause: BaseException) -> None:
        self.run_id = run_id
        self.what = what
        super().__init__(
            f"run {run_id}: {what} cannot be loaded by this code "
            f"({type(cause).__name__}: {cause}); was it stored by an older version of the "
            "flow, with a class renamed or moved since?"
        )


class FlowChanged(EngineError):
    """On a re-run, the flow asks for other input at a point where the run already asked
    (a deploy added or moved a pause while it waited): the stored question and its
    answer, matched by the order of the calls, would be taken for another."""

    def __init__(self, run_id: str, key: str, asked_before: str, asked_now: str) -> None:
        self.run_id = run_id
        self.key = key
        super().__init__(
            f"run {run_id} asked for {asked_before} as input {key!r}, but its flow now asks "
            f"for {asked_now} there: the flow changed while the run waited, and answers "
            "are matched to questions by the order they are asked. Start a new run"
        )


class LeaseLost(EngineError):
    """Another process holds this durable consumer's lease now."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        super().__init__(f"the lease of durable consumer {consumer!r} is held by another process")


class ConsumerNotFound(EngineError):
    """No durable consumer of that name has read the events (``Engine.forget_consumer``)."""

    def __init__(self, consumer: str, known: Sequence[str] = ()) -> None:
        self.consumer = consumer
        self.known = tuple(known)
        there = ", ".join(repr(name) for name in self.known) or "none"
        super().__init__(f"no durable consumer is named {consumer!r} (there are: {there})")


class ConsumerInUse(EngineError):
    """A running process holds this durable consumer, so it is not forgotten: stop that
    process first (``Engine.forget_consumer``)."""

    def __init__(self, consumer: str, owner: str) -> None:
        self.consumer = consumer
        self.owner = owner
        super().__init__(
            f"durable consumer {consumer!r} is in use: process {owner} holds it; stop that "
            "process first (a consumer is forgotten only once nothing runs it)"
        )


class DeliverLater(EngineError):
    """An observer cannot take this event yet, for a reason it expects (the service it
    writes to rate-limits it, or another process is acting on the same run): a durable
    consumer keeps the event and hands it again after ``seconds``, with a warning rather
    than an error's traceback.

    Example::

        def on_event(self, event):
            if self.chat.busy_for:
                raise DeliverLater(event.run_id, self.chat.busy_for, "chat is rate-limited")
    """

    def __init__(self, run_id: str, seconds: float, reason: str) -> None:
        self.run_id = run_id
        self.seconds = seconds
        self.reason = reason
        super().__init__(f"event of run {run_id} delivered again in {seconds:g} s: {reason}")


class StoreError(EngineError):
    """The database failed; the driver's error is in ``__cause__``."""


class SchemaOutdated(StoreError):
    """The database's schema is older than this version of Signoff needs."""

    def __init__(self, current: str, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(
            f"the database schema is at revision {current} and needs an upgrade to {head}"
        )


class SchemaTooNew(StoreError):
    """The database's schema is at a revision this version of Signoff does not know."""

    def __init__(self, current: str, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(
            f"the database schema is at revision {current}, which this version of Signoff "
            f"does not know (its newest is {head}): a newer Signoff upgraded it, so run "
            "that version or a later one"
        )


class NotSignoffDatabase(StoreError):
    """The database holds another application's data, not Signoff's: nothing was changed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"the database is not Signoff's: {reason}; point SIGNOFF_DATABASE_URL at Signoff's "
            "own database (a new SQLite path, or a PostgreSQL database for Signoff)"
        )


class SchemaRevisionLost(StoreError):
    """The database holds Signoff's tables but no record of their schema revision (its
    ``alembic_version`` row is gone): migrating it would be guesswork, so nothing is done."""

    def __init__(self, tables: Sequence[str]) -> None:
        self.tables = tuple(tables)
        shown = ", ".join(self.tables[:3]) + (", ..." if len(self.tables) > 3 else "")
        super().__init__(
            f"the database holds Signoff's tables ({shown}) but no record of their schema "
            "revision (its alembic_version table is empty or gone); nothing was changed: "
            "restore the database from a backup"
        )


class DatabaseUnavailable(StoreError):
    """The database server could not be reached: it refused the connection, or is starting
    up or shutting down (a restart, a failover). Trying again later may well work, where
    any other ``StoreError`` on opening (a wrong password, a database that does not exist,
    a host name that does not resolve) needs the settings fixed."""


class DatabaseBusy(StoreError):
    """A claim that could wait only so long for its turn to write did not get it: another
    writer held the database (another process writing a SQLite file, a PostgreSQL lock on
    its table). Nothing was claimed; trying again once the writer is done will work."""

    def __init__(self, key: str, seconds: float) -> None:
        self.key = key
        self.seconds = seconds
        super().__init__(
            f"the database is busy: claiming {key!r} did not get its turn to write within "
            f"{seconds:g} s (another writer held it); nothing was claimed"
        )


class DatabaseNotFound(StoreError):
    """The SQLite database file is not there, or the database (either kind) has no Signoff
    schema (``empty``); opening it without ``create`` made nothing.

    ``path`` is ``:memory:`` for an in-memory database, which is new in every process."""

    def __init__(self, path: str, *, empty: bool = False) -> None:
        self.path = path
        self.empty = empty
        if empty:
            message = (
                f"the database at {path} has no Signoff schema: nothing has been stored there yet"
            )
        elif path == ":memory:":
            message = (
                "the database is in memory (sqlite:// with no file path), so it is new and "
                "empty in every process"
            )
        else:
            message = f"there is no database at {path}: nothing has been stored there yet"
        super().__init__(message)


class AuditRecordUnreadable(StoreError):
    """A stored audit record cannot be read: it was changed outside Signoff."""

    def __init__(self, seq: object, reason: str) -> None:
        self.seq = seq
        self.reason = reason
        shown = seq if isinstance(seq, int) else repr(seq)
        super().__init__(
            f"audit record {shown} cannot be read ({reason}): it was changed outside Signoff"
        )


class RunUnreadable(StoreError):
    """A stored run (or a row of its own: a pause, a task, a log record, an entry of its
    state history) cannot be read: it was changed outside Signoff (text SQLite holds that
    is not UTF-8, JSON that is not, a state or status that is none, a time that is not
    one). ``reason`` names the row and the value."""

    def __init__(self, run_id: object, reason: str) -> None:
        self.run_id = run_id
        self.reason = reason
        shown = run_id if isinstance(run_id, str) else repr(run_id)
        super().__init__(f"run {shown} cannot be read ({reason}): it was changed outside Signoff")


class RunSuspended(Exception):
    """The flow suspended itself; a worker will run it again once it is answered."""

    def __init__(self, run_id: str, key: str) -> None:
        self.run_id = run_id
        self.key = key
        super().__init__(f"run {run_id} is suspended, waiting for input {key!r}")


class RunCancelled(Exception):
    """The run was cancelled while it ran or waited."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} was cancelled")


#: Prefect's names for the same things, so code written for it reads the same.
FlowPauseTimeout = PauseTimeout
NotPausedError = RunNotWaiting
