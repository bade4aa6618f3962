"""Who may do what to a run: the one rule every entry point (Slack, CLI, Python) obeys.

``Engine.submit``, ``resume``, ``cancel`` and ``reassign`` ask ``Permissions`` before they
change anything; a refusal raises ``NotAllowed`` (naming the rule) and is recorded in the
audit trail. The rules:

- **start**: the flow's ``starters``, or anyone when it names none; admins always.
- **answer**: the pause's approvers (the flow's unless the pause names its own, plus anyone
  added by escalation or reassignment), or anyone when there are none; never the person
  who started the run when ``forbid_starter`` is set; with a quorum, each person once;
  never someone who handed the decision on (reassigned it), until it is handed back.
  Admins do not answer by virtue of being admins: an approval is a separation of duties.
- **cancel**: the flow's ``cancellers`` when it names some; otherwise whoever started the
  run and the approvers of the pause it waits on, or between pauses of its newest one, or
  before its first of the flow (anyone, when those name nobody). Admins always.
- **reassign**: whoever may answer the pause and has not answered it yet, and admins.
- **view** (``/runs show``, ``/runs`` lists in Slack): anyone, when the flow names nobody
  in ``starters``, ``approvers``, ``cancellers`` or ``viewers`` and the run's pauses name
  no approvers. Otherwise whoever started the run, whoever those lists name (the flow's
  starters, cancellers and viewers, the flow's and every pause's approvers, with those
  added by escalation or a hand-over), whoever acted on it by the audit trail (answered,
  handed on, cancelled; a refused attempt does not count), and admins. A list that names
  nobody lets nobody in here: a flow limited to some people shows its runs to them only.
  The CLI and the Python API read runs unchecked (whoever runs them can read the database).

Admins are a setting (``SIGNOFF_ADMINS``). Every list may name people and groups; group
membership comes from the engine's ``GroupDirectory``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

from signoff.engine.actors import Actor, GroupDirectory, Via
from signoff.engine.runs import Involvement, Pause, Run, WaitingInput, handed_on


class Action(enum.StrEnum):
    """What someone may or may not do."""

    START = "start"
    ANSWER = "answer"
    CANCEL = "cancel"
    REASSIGN = "reassign"
    VIEW = "view"


@dataclass(frozen=True)
class Refusal:
    """Why an actor may not do something: the rule in words, and who may."""

    reason: str
    #: the ids (people and groups) the rule allows; empty when nobody named could
    allowed: tuple[str, ...] = ()


class Permissions:
    """Evaluates the rules above for one engine (its admins and its group directory)."""

    def __init__(self, admins: Collection[str], directory: GroupDirectory | None = None) -> None:
        self.admins = tuple(admins)
        self.directory = directory

    def matches(self, actor: Actor, names: Collection[str]) -> bool:
        """True if ``actor`` is one of ``names`` or a member of a group among them."""
        wanted = set(names)
        if not wanted:
            return False
        if actor.id in wanted or actor.groups & wanted:
            return True
        if self.directory is None:
            return False
        return bool(self.directory.groups_of(actor.id, wanted - {actor.id}))

    def is_admin(self, actor: Actor | None) -> bool:
        if actor is None:
            return False
        return actor.via is Via.SYSTEM or self.matches(actor, self.admins)

    def start(self, actor: Actor | None, flow: str, starters: Collection[str]) -> Refusal | None:
        """Why ``actor`` may not start ``flow``, or None."""
        if not starters or self.is_admin(actor):
            return None
        if actor is not None and self.matches(actor, starters):
            return None
        return Refusal(
            f"only {_names(starters)} (or an admin) may start flow {flow!r}",
            tuple(starters) + self.admins,
        )

    def answer(
        self, actor: Actor | None, run: Run, pause: Pause, answered_by: Collection[str] = ()
    ) -> Refusal | None:
        """Why ``actor`` may not answer ``pause``, or None."""
        return self.answer_waiting(
            actor,
            WaitingInput(
                run.id,
                pause.key,
                run.started_by,
                pause.approvers,
                pause.forbid_starter,
                tuple(answered_by),
                pause.quorum,
                handed_on((d.by, d.to) for d in pause.delegations),
            ),
        )

    def answer_waiting(self, actor: Actor | None, waiting: WaitingInput) -> Refusal | None:
        """``answer``'s rule, from the few fields of a pause that it reads."""
        approvers = waiting.approvers
        if actor is not None and actor.via is Via.SYSTEM:
            return None
        if waiting.forbid_starter and actor is not None and actor.id == waiting.started_by:
            return Refusal("the person who started a run may not answer it", approvers)
        if approvers and (actor is None or not self.matches(actor, approvers)):
            return Refusal(f"only {_names(approvers)} may answer", approvers)
        if actor is not None:
            # Reassigning takes the person off the list, but not out of a group on it: they
            # gave the decision away, so their group no longer answers through them.
            to = next((to for by, to in waiting.handed_on if by == actor.id), None)
            if to is not None:
                return Refusal(
                    f"{actor.id} handed it to {to}, so the decision is no longer theirs",
                    tuple(a for a in approvers if a != actor.id),
                )
        if actor is None and waiting.quorum > 1:
            return Refusal(
                f"this input needs {waiting.quorum} different people, and an answer without "
                "who gave it cannot be told apart from another",
                approvers,
            )
        if actor is not None and actor.id in waiting.answered_by:
            return Refusal(
                f"{actor.id} already answered; this input needs {waiting.quorum} different people",
                approvers,
            )
        return None

    def cancel(
        self, actor: Actor | None, run: Run, cancellers: Collection[str], pause: Pause | None
    ) -> Refusal | None:
        """Why ``actor`` may not cancel ``run``, or None. ``cancellers`` are the flow's."""
        if self.is_admin(actor):
            return None
        if cancellers:
            if actor is not None and self.matches(actor, cancellers):
                return None
            return Refusal(
                f"only {_names(cancellers)} (or an admin) may cancel runs of {run.flow_name!r}",
                tuple(cancellers) + self.admins,
            )
        approvers = tuple(pause.approvers) if pause is not None else tuple(run.approvers)
        if not approvers:
            return None  # anyone may answer it, so anyone may stop it
        if actor is not None and (actor.id == run.started_by or self.matches(actor, approvers)):
            return None
        starter = (run.started_by,) if run.started_by else ()
        who = ["whoever started it"] if run.started_by else []
        who += [f"its approvers ({_names(approvers)})", "an admin"]
        return Refusal(
            f"only {', '.join(who[:-1])} or {who[-1]} may cancel this run",
            starter + approvers + self.admins,
        )

    def reassign(self, actor: Actor | None, run: Run, pause: Pause) -> Refusal | None:
        """Why ``actor`` may not hand ``pause`` to someone else, or None."""
        if self.is_admin(actor):
            return None
        refused = self.answer(actor, run, pause)
        if refused is None and actor is not None and actor.id in pause.answered_by:
            # Their answer stays counted: handing the decision on as well would let one
            # person choose a second of a quorum's people.
            return Refusal(
                f"{actor.id} already answered it; that answer counts, so there is no "
                "decision of theirs left to hand over",
                self.admins,
            )
        if refused is None:
            return None
        return Refusal(
            f"only someone who may answer it (or an admin) may reassign it: {refused.reason}",
            refused.allowed + self.admins,
        )

    def view(
        self,
        actor: Actor | None,
        run: Run,
        starters: Collection[str],
        involvement: Involvement,
        viewers: Collection[str] = (),
    ) -> Refusal | None:
        """Why ``actor`` may not see ``run``'s details (parameters, answers, audit trail),
        or None. ``starters`` and ``viewers`` are the flow's; ``involvement`` is the run's."""
        named = _view_names(run, starters, involvement, viewers)
        if not named or self.is_admin(actor):
            return None
        if actor is not None and (
            actor.id == run.started_by
            or actor.id in involvement.acted
            or self.matches(actor, named)
        ):
            return None
        starter = (run.started_by,) if run.started_by else ()
        also = ", its viewers" if viewers else ""
        return Refusal(
            f"runs of {run.flow_name!r} are shown only to whoever started them or acted on "
            f"them, whoever may start, answer or cancel them{also}, and admins",
            tuple(dict.fromkeys((*starter, *named, *self.admins))),
        )

    @staticmethod
    def open_to_all(
        run: Run, starters: Collection[str], involvement: Involvement, viewers: Collection[str] = ()
    ) -> bool:
        """True when ``view`` lets anyone see ``run``: its flow and its pauses name nobody.
        (An application that shows runs where only some people are, a private Slack
        channel, narrows these runs further; a run that names people is judged here alone.)"""
        return not _view_names(run, starters, involvement, viewers)


def _view_names(
    run: Run, starters: Collection[str], involvement: Involvement, viewers: Collection[str]
) -> tuple[str, ...]:
    """Everyone the view rule names for ``run`` (none: anyone may view it)."""
    return tuple(
        dict.fromkeys(
            (*starters, *run.approvers, *involvement.approvers, *run.cancellers, *viewers)
        )
    )


def _names(names: Collection[str]) -> str:
    return ", ".join(names)


__all__ = ["Action", "Permissions", "Refusal"]
