"""Who may start, answer, cancel, reassign and view Prefect runs, by the permissions file's rules.

The same rules as the embedded engine's, in the same words, so ``/runs`` and the buttons
refuse alike whichever backend runs the flow: a rule naming nobody lets anyone; a group id
(a Slack user group) lets its members, as the installed ``GroupDirectory`` tells.
"""

from __future__ import annotations

from collections.abc import Collection

from signoff.bot.backends.interface import GroupDirectory
from signoff.bot.backends.model import Actor, Pause, Refusal, Run, Via
from signoff.bot.backends.prefect.settings import Permission


class Rules:
    """The rules, with the group directory the Slack side installs."""

    def __init__(self) -> None:
        self.directory: GroupDirectory | None = None

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

    def start(self, actor: Actor, name: str, permission: Permission) -> Refusal | None:
        starters = tuple(permission.start or ())
        if not starters or actor.via is Via.SYSTEM or self.matches(actor, starters):
            return None
        return Refusal(f"only {', '.join(starters)} may start flow {name!r}", starters)

    def answer(self, actor: Actor, run: Run, pause: Pause) -> Refusal | None:
        if actor.via is Via.SYSTEM:
            return None
        if pause.forbid_starter and actor.id == run.started_by:
            return Refusal("the person who started a run may not answer it", pause.approvers)
        if pause.approvers and not self.matches(actor, pause.approvers):
            return Refusal(f"only {', '.join(pause.approvers)} may answer", pause.approvers)
        # Handing it on takes the person off the list, but not out of a group on it: they
        # gave the decision away, so their group no longer answers through them (unless it
        # was handed back to them since).
        handed: dict[str, str] = {}
        for delegation in pause.delegations:
            handed[delegation.by] = delegation.to
            handed.pop(delegation.to, None)
        to = handed.get(actor.id)
        if to is not None:
            return Refusal(
                f"{actor.id} handed it to {to}, so the decision is no longer theirs",
                tuple(a for a in pause.approvers if a != actor.id),
            )
        return None

    def cancel(
        self, actor: Actor, run: Run, permission: Permission, pause: Pause | None
    ) -> Refusal | None:
        if actor.via is Via.SYSTEM:
            return None
        cancellers = tuple(permission.cancel or ())
        if cancellers:
            if self.matches(actor, cancellers):
                return None
            return Refusal(
                f"only {', '.join(cancellers)} may cancel runs of {run.flow_name!r}", cancellers
            )
        approvers = tuple(pause.approvers) if pause is not None else tuple(run.approvers)
        if not approvers or actor.id == run.started_by or self.matches(actor, approvers):
            return None  # anyone may answer it, so anyone may stop it
        starter = (run.started_by,) if run.started_by else ()
        approved = f"its approvers ({', '.join(approvers)})"
        who = f"whoever started it or {approved}" if run.started_by else approved
        return Refusal(f"only {who} may cancel this run", starter + approvers)

    def reassign(self, actor: Actor, run: Run, pause: Pause) -> Refusal | None:
        refused = self.answer(actor, run, pause)
        if refused is None:
            return None
        return Refusal(
            f"only someone who may answer it may reassign it: {refused.reason}", refused.allowed
        )

    def view(
        self,
        actor: Actor,
        run: Run,
        permission: Permission,
        approvers: Collection[str] = (),
        acted: Collection[str] = (),
    ) -> Refusal | None:
        """Why ``actor`` may not see ``run``'s details, or None: anyone when its rules name
        nobody; else whoever started it, whoever acted on it (``acted``, from its audit
        trail), and whoever its rules name (``start``, ``approvers``, ``cancel``, ``view``;
        ``approvers`` here: its requests' own, as handed on)."""
        if actor.via is Via.SYSTEM:
            return None
        named = _view_names(permission, approvers)
        if not named or actor.id == run.started_by or actor.id in acted:
            return None
        if self.matches(actor, named):
            return None
        starter = (run.started_by,) if run.started_by else ()
        also = ", its viewers" if permission.view else ""
        return Refusal(
            f"runs of {run.flow_name!r} are shown only to whoever started them or acted on "
            f"them, and whoever may start, answer or cancel them{also}",
            tuple(dict.fromkeys((*starter, *named))),
        )

    @staticmethod
    def open_to_all(permission: Permission, approvers: Collection[str] = ()) -> bool:
        """True when ``view`` lets anyone see a run under ``permission`` (with its requests'
        ``approvers``): they name nobody."""
        return not _view_names(permission, approvers)

    def hand_to(self, run: Run, pause: Pause, by: Actor, to: str) -> Refusal | None:
        """Why ``by`` may not hand ``pause`` to ``to`` (as the engine refuses it): it is
        theirs already."""
        if to == by.id:
            return Refusal("it is already yours; hand it to someone else")
        return None

    @staticmethod
    def barred(run: Run, pause: Pause, to: str) -> Refusal | None:
        """Why ``pause`` may not be handed to ``to`` whoever hands it on (as the engine
        refuses it): ``to`` could never answer it, which would leave it to nobody."""
        if pause.forbid_starter and to == run.started_by:
            return Refusal(f"{to} started it, and the person who started a run may not answer it")
        return None


def _view_names(permission: Permission, approvers: Collection[str]) -> tuple[str, ...]:
    """Everyone the view rule names (none: anyone may view the run)."""
    return tuple(
        dict.fromkeys(
            (
                *(permission.start or ()),
                *(permission.approvers or ()),
                *approvers,
                *(permission.cancel or ()),
                *(permission.view or ()),
            )
        )
    )


__all__ = ["Rules"]
