"""An input form's submission: acknowledged at once (``bot.slack.input_forms``), answered
afterwards and its outcome shown (here).

Slack waits 3 s for the answer to a ``view_submission``, and only that answer can put errors
under a form's inputs. Resuming the run (the backend's write) is the slow part, so a
submission goes in two steps:

1. ``InputForms`` (``bot.slack.input_forms``), on the HTTP thread (``SlackEdge`` calls it;
   over Socket Mode, Bolt's listener does), makes only the cheap checks: open the sealed
   metadata, find the form's schema (``FormSchemas``: in memory, or one read), read the
   submitted values. Values that cannot be read come back inline (``response_action:
   errors``); otherwise the acknowledgement replaces the form with a "Submitting..." view.
2. On ``Answerer``'s own small pool: the request's replay claim (``bot.slack.edge`` left
   it to this step, since nothing happened before), the interaction's claim (its
   ``trigger_id``'s, as ``bot.slack.redelivery`` claims other requests'), then the backend
   takes the answer, and
   ``views.update`` replaces "Submitting..." with the outcome: recorded (or how many of a
   quorum), not accepted by the flow's model, the form again with the backend's field
   errors under their inputs and the person's values kept, nothing to do (already
   answered, timed out), not allowed, or what went wrong. Answers to one prompt reach the
   backend in the order they were acknowledged (the first of two near-simultaneous
   answers is the one stored); answers to different prompts do not wait for each other.

Slack may deliver a submission again (signed anew over HTTP, a new envelope over Socket
Mode) when it took the first delivery for failed; the redelivery's acknowledgement is what
the modal then shows. Its interaction is claimed already, so nothing is answered again (no
second answer, audit record or message in the run's thread); instead the outcome of the
first delivery is read back and shown: "Answer recorded" (or the count of a quorum) when
the person's answer is stored, why there is nothing to do when the input is closed, and the
form again with their values when their answer was not taken (refused; submitting it again
is answered afresh).

The threads that acknowledge are therefore never busy with a write, and acknowledgements of
other requests do not queue behind answers; answers also wait (``YIELD_SECONDS`` at most)
while other requests are being acknowledged, since with the GIL they would slow those
down. If the process dies between the two steps the answer was never stored: the modal
keeps saying "Submitting...", the prompt stays open, and the person can answer again.

``views.update`` is sent with the view id only. Slack gives the view a new hash when it
applies the acknowledgement's update, so the submission's hash would always conflict; and
"Submitting..." has no inputs, so nothing the person could change is overwritten.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import urllib.error
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View

from signoff.bot.backends import (
    JSON,
    Accepted,
    Action,
    Actor,
    Backend,
    Denied,
    Pause,
    PauseStatus,
    Refused,
)
from signoff.bot.errors import BackendError, RunNotFound
from signoff.bot.forms.labels import clip
from signoff.bot.forms.layout import MAX_TEXT
from signoff.bot.forms.mrkdwn import escape_mrkdwn
from signoff.bot.forms.submissions import errors_for_view
from signoff.bot.slack import metrics
from signoff.bot.slack.approvers import refusal_text
from signoff.bot.slack.deleted import GONE
from signoff.bot.slack.edge import REPLAY_CLAIM_SECONDS
from signoff.bot.slack.interactions import form_context, input_view, notice_view, stale_reason
from signoff.bot.slack.listener import WsgiApp
from signoff.bot.slack.redelivery import REDELIVERY_CLAIM_SECONDS

__all__ = [
    "ANSWER_THREADS",
    "Answerer",
    "PendingAnswer",
    "not_recorded",
]

logger = logging.getLogger(__name__)

#: Threads that hand answers to the backend. An answer is mostly CPU and one short write
#: transaction, so more threads would only compete for the GIL with the threads that
#: acknowledge Slack; a few let PostgreSQL round trips overlap.
ANSWER_THREADS = 4
#: Longest an answer waits, after its own acknowledgement, for acknowledgements still in
#: progress.
YIELD_SECONDS = 2.0
#: How long no request must have been acknowledged before answers go ahead of their time.
QUIET_SECONDS = 0.05


def _unshown() -> View:
    """What replaces "Submitting..." when the outcome cannot be shown."""
    return notice_view(
        "Answer sent",
        "Signoff cannot show what became of your answer here. The run's thread in the "
        "channel shows whether it was recorded.",
    )


#: ``_unshown``, for when the outcome's own view cannot be sent
_UNSHOWN = _unshown().to_dict()
#: room for a reason (a model's refusal, an error) in a notice, beside the words around it
_REASON_ROOM = MAX_TEXT - 300


@dataclass(frozen=True)
class PendingAnswer:
    """A submission that passed the cheap checks and was acknowledged."""

    run_id: str
    key: str
    values: dict[str, Any]
    responder: Actor
    #: the modal to update with the outcome
    view_id: str
    #: the form's sealed metadata, for the form shown again after a refusal
    metadata: str
    schema: dict[str, JSON]
    #: the request's replay claim, taken before the answer (None: not replayable, e.g.
    #: delivered over Socket Mode)
    claim: str | None = None
    #: the interaction's claim (``bot.slack.redelivery.interaction_key``), taken next: found
    #: taken, Slack delivered the submission again (None: no ``trigger_id``)
    interaction: str | None = None


class Answerer:
    """Answers acknowledged submissions on a pool of its own and shows each outcome.

    Example::

        answers = Answerer(backend, client)
        answers.submit(PendingAnswer(...))  # returns at once
        answers.stop()  # waits for the answers already taken
    """

    def __init__(self, backend: Backend, client: WebClient, threads: int = ANSWER_THREADS) -> None:
        self.backend = backend
        self.client = client
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="signoff-answer")
        self._acking = 0
        self._last_ack = 0.0
        self._quiet = threading.Condition()
        #: per prompt (run id, key), its answers not yet handed on, in acknowledgement order
        self._queued: dict[tuple[str, str], collections.deque[PendingAnswer]] = {}
        self._order = threading.Condition()

    @contextmanager
    def acknowledging(self) -> Iterator[None]:
        """Mark a Slack request being acknowledged: answers not yet started wait for it (at
        most ``YIELD_SECONDS``), so that a burst of requests is acknowledged before the
        answers it brought compete with it for the interpreter."""
        # No notify: acknowledgements on the HTTP loop come one after another, and waking
        # every waiting answer after each would cost more than the ack itself. Waiting
        # answers look again every QUIET_SECONDS instead (``_wait_turn``).
        with self._quiet:
            self._acking += 1
        try:
            yield
        finally:
            with self._quiet:
                self._acking -= 1
                self._last_ack = time.monotonic()

    def ahead_of_answers(self, app: WsgiApp) -> WsgiApp:
        """``app`` with each request marked as ``acknowledging``."""

        def acknowledged_first(
            environ: dict[str, Any], start_response: Callable[..., Any]
        ) -> Iterable[bytes]:
            with self.acknowledging():
                return app(environ, start_response)

        return acknowledged_first

    def submit(self, pending: PendingAnswer) -> None:
        """Answer ``pending`` soon, on the pool, after the answers to its prompt submitted
        before it."""
        with self._order:
            self._queued.setdefault((pending.run_id, pending.key), collections.deque()).append(
                pending
            )
            # Under the same lock: the pool must start the answers to a prompt in their
            # queue's order. Were two threads to interleave between the two, an answer
            # could wait for its turn on every pool thread while the one ahead of it is
            # still queued behind them.
            self._pool.submit(self._answer, pending, time.monotonic() + YIELD_SECONDS)

    @contextmanager
    def _in_turn(self, pending: PendingAnswer) -> Iterator[None]:
        """Hold ``pending``'s turn among the answers to its prompt. The pool starts tasks in
        submission order, so an earlier answer is already running when a later one waits."""
        prompt = (pending.run_id, pending.key)
        with self._order:
            self._order.wait_for(lambda: self._queued[prompt][0] is pending)
        try:
            yield
        finally:
            with self._order:
                queue = self._queued[prompt]
                queue.popleft()
                if not queue:
                    del self._queued[prompt]
                self._order.notify_all()

    def stop(self) -> None:
        """Take no more answers; return once those taken are answered and shown."""
        self._pool.shutdown(wait=True)

    def _wait_turn(self, due: float) -> None:
        """Wait until no request has been acknowledged for ``QUIET_SECONDS`` (a burst's
        requests go through the HTTP threads in waves, with gaps between them), or until
        ``due``: so a steady stream of requests delays answers by ``YIELD_SECONDS`` at
        most, and never slows them down."""
        with self._quiet:
            while (now := time.monotonic()) < due:
                if self._acking:
                    wait = min(QUIET_SECONDS, due - now)
                elif (quiet := now - self._last_ack) < QUIET_SECONDS:
                    wait = min(QUIET_SECONDS - quiet, due - now)
                else:
                    return
                self._quiet.wait(wait)

    def _answer(self, pending: PendingAnswer, due: float) -> None:
        self._wait_turn(due)
        view: View | None
        try:
            with self._in_turn(pending):
                view = self.outcome(pending)
        except Exception as exc:  # nothing else would see it: it ran after the ack
            logger.error(
                "answer failed",
                exc_info=True,
                extra={"action": "answer_failed", "run_id": pending.run_id, "key": pending.key},
            )
            view = not_recorded(exc, pending.run_id)
        if view is not None:
            self._show(pending, view)

    def outcome(self, pending: PendingAnswer) -> View | None:
        """Hand ``pending`` to the backend; the view that tells the person what happened
        (None: the request was a replay, and nothing was done)."""
        backend, run_id, key = self.backend, pending.run_id, pending.key
        try:
            if pending.claim and not backend.claim_once(pending.claim, REPLAY_CLAIM_SECONDS):
                logger.info(
                    "replayed request ignored",
                    extra={"action": "request_replayed", "run_id": run_id, "key": key},
                )
                return None
            if pending.interaction and not backend.claim_once(
                pending.interaction, REDELIVERY_CLAIM_SECONDS
            ):
                logger.info(
                    "submission delivered again: the first delivery's outcome shown",
                    extra={"action": "request_redelivered", "run_id": run_id, "key": key},
                )
                return self._delivered_again(pending)
            answer = backend.answer(run_id, key, pending.values, responder=pending.responder)
        except RunNotFound:
            # Deleted under the open form (in Prefect's UI): "answer again" could never work.
            return notice_view("Nothing to do", GONE)
        except BackendError as exc:
            logger.warning(
                "answer not recorded: %s",
                exc,
                extra={"action": "answer_not_recorded", "run_id": run_id, "key": key},
            )
            return not_recorded(exc, run_id)
        if isinstance(answer, Accepted):
            return self._accepted(pending, answer)
        if isinstance(answer, Refused):
            block_errors = errors_for_view(pending.schema, answer.errors)
            pause = backend.get_pause(run_id, key) if block_errors else None
            if pause is None:
                return notice_view("Not accepted", escape_mrkdwn(answer.message))
            # A form sent by views.update cannot carry Slack's inline errors, so they go
            # under the inputs as hints, with what the person entered filled back in.
            return input_view(
                backend.get_run(run_id), pause, pending.metadata, pending.values, block_errors
            )
        if isinstance(answer, Denied):
            try:
                run = backend.get_run(run_id)
            except RunNotFound:
                run = None
            reason = refusal_text(Action.ANSWER, pending.responder, run, answer.refusal)
            return notice_view("Not allowed", reason)
        try:
            reason = stale_reason(backend, backend.get_run(run_id), key) or answer.reason
        except RunNotFound:
            reason = answer.reason
        # The person may have several forms open: say which run's this was.
        return notice_view("Nothing to do", reason, form_context(run_id, key))

    def _accepted(self, pending: PendingAnswer, accepted: Accepted) -> View:
        answered = accepted.pause
        logger.info(
            "input submitted",
            extra={"action": "input_submitted", "run_id": pending.run_id, "key": pending.key},
        )
        if answered.status is not PauseStatus.WAITING:
            metrics.observe_answer(answered)
        return self._recorded(pending, answered, len(answered.answers))

    def _delivered_again(self, pending: PendingAnswer) -> View:
        """What the first delivery of ``pending`` came to, read back without answering
        again: Slack delivered the submission again, and shows this delivery's outcome."""
        try:
            run = self.backend.get_run(pending.run_id)
            pause = self.backend.get_pause(pending.run_id, pending.key)
            if pause is None:
                return notice_view("Nothing to do", "That input no longer exists.")
            theirs = [a.responder for a in pause.answers]
            if pending.responder.id in theirs:
                return self._recorded(pending, pause, theirs.index(pending.responder.id) + 1)
            reason = stale_reason(self.backend, run, pending.key)
        except RunNotFound:
            return notice_view("Nothing to do", GONE)
        except BackendError as exc:
            logger.warning(
                "outcome of a submission delivered again not read: %s",
                exc,
                extra={
                    "action": "answer_outcome_not_read",
                    "run_id": pending.run_id,
                    "key": pending.key,
                },
            )
            return _unshown()
        if reason is not None:
            return notice_view("Nothing to do", reason)
        # Nothing of theirs is stored and the input still waits: the first delivery was
        # refused (or failed). The form again, with what they entered; submitted again, it is
        # answered afresh.
        return input_view(run, pause, pending.metadata, pending.values, {})

    def _recorded(self, pending: PendingAnswer, answered: Pause, counted: int) -> View:
        """What a person whose answer is stored in ``answered`` (``counted`` th) is shown."""
        run_id, key = pending.run_id, pending.key
        if answered.status is PauseStatus.WAITING:
            # One answer of a quorum: say so, since the prompt stays open for the others.
            return notice_view(
                "Answer recorded",
                f"Your answer is {counted} of the {answered.quorum} this "
                "input needs; the run goes on once the others have answered.",
            )
        if answered.status is PauseStatus.REJECTED:
            # The flow's model judged it at once (it waits in this process) and refused it.
            stored = answered if answered.errors else self.backend.get_pause(run_id, key)
            errors = stored.errors if stored is not None else {}
            problems = "; ".join(f"{k}: {v}" if k else v for k, v in errors.items())
            # Clipped here, so that the advice after it is not cut off (a model's refusal
            # may list every value it allows; the thread's note shows more of it).
            reason = clip(escape_mrkdwn(problems), _REASON_ROOM) if problems else "no reason given"
            # A validator's message often ends its own sentence: no second full stop.
            ended = reason if reason.endswith((".", "!", "?", "…")) else f"{reason}."
            return notice_view(
                "Not accepted",
                f"The flow did not accept your answer: {ended} "
                "The run's thread says more; if the run asks again, answer its newest prompt.",
            )
        return notice_view(
            "Answer recorded",
            f"Thank you: your answer to run `{pending.run_id[:8]}` is recorded and the run "
            "goes on.",
        )

    def _show(self, pending: PendingAnswer, view: View | dict[str, Any]) -> None:
        where = {"run_id": pending.run_id, "key": pending.key}
        try:
            self.client.views_update(view_id=pending.view_id, view=view)
        except (SlackApiError, urllib.error.URLError, OSError) as exc:
            # Most often the person closed the modal; the outcome also shows in the channel.
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
            logger.warning(
                "outcome not shown in the modal: %s",
                error,
                extra={"action": "answer_view_not_updated", **where},
            )
        except Exception:
            # A view slack_sdk refuses to send (SlackObjectFormationError): nothing else would
            # see this, since it runs on the pool after the ack. Rather than leave the modal
            # on "Submitting..." for ever, show that the answer went, and where to look.
            logger.error(
                "outcome view could not be sent",
                exc_info=True,
                extra={"action": "answer_view_not_updated", **where},
            )
            if view is not _UNSHOWN:
                self._show(pending, _UNSHOWN)


def not_recorded(exc: Exception, run_id: str) -> View:
    return notice_view(
        "Something went wrong",
        f"Your answer to run `{run_id[:8]}` was not recorded: "
        f"{clip(escape_mrkdwn(str(exc)), _REASON_ROOM)}\n"
        "The prompt stays open; please answer again.",
    )
