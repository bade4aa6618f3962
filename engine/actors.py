"""Who acts on runs: ``Actor`` (a person, where they act from, their name at the time) and the
``GroupDirectory`` protocol that tells the engine who belongs to which group.

The engine knows nothing of Slack: a Slack user id, a CLI operator's name and a Python
caller are all just ids. Rules name ids and group ids alike (``approvers=["U1", "S9"]``);
the application that knows what a group is installs a ``GroupDirectory`` on the engine
(the Slack bot resolves Slack user groups), and the engine asks it whether an actor belongs
to the groups a rule names.
"""

from __future__ import annotations

import enum
import functools
import getpass
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from signoff.engine.errors import NotAPerson


class Via(enum.StrEnum):
    """Where an action came from, as the audit trail records it."""

    SLACK = "slack"
    CLI = "cli"
    PYTHON = "python"
    #: the engine itself: a timeout, an escalation timer
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """A person (or the engine itself) acting on a run.

    ``id`` is what rules name (a Slack user id, a local operator's name); ``name`` is their
    display name at the time, kept in the audit trail because names change. ``groups`` are
    groups the caller already knows the actor belongs to; the engine's ``GroupDirectory``
    may add more.

    Example::

        Actor("U024BE7LH", name="Alice", via=Via.SLACK)
        Actor.operator("alice")        # the CLI's named local operator
    """

    id: str
    name: str | None = None
    via: Via = Via.PYTHON
    groups: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.id or not self.id.strip():
            raise ValueError("an actor needs a non-empty id")
        if len(self.id) > 200:
            raise ValueError(f"actor id {self.id[:20]!r}... is longer than 200 characters")
        if self.name is not None and len(self.name) > 200:
            raise ValueError(f"actor name {self.name[:20]!r}... is longer than 200 characters")
        if "\x00" in self.id or "\x00" in (self.name or ""):
            raise ValueError(f"actor {self.id[:20]!r} has a NUL character in its id or name")
        check_one_line(self.id, "actor id")
        if self.id != self.id.strip():
            # " alice" would count as a second person beside "alice", and match no approver.
            raise ValueError(f"actor id {self.id!r} has spaces around it")
        # Ids match exactly: "u0alice" would be a second person beside "U0ALICE" in a
        # quorum open to anyone, and match no approver. A login name is taken as it is
        # (Actor.python(), Actor.operator()): it names no Slack user, whatever its shape.
        if _LOWERCASE_SLACK_ID.match(self.id) and self.id != local_user():
            check_id_case(self.id, "actor id")
        # A group's id matched an approver list naming that group with nobody in it, counted
        # as one of a quorum's people, and stood in the trail as who decided.
        check_not_group(self.id, "actor id")
        if self.name is not None:
            check_one_line(self.name, "actor name")
        for group in self.groups:
            if not group.strip():
                raise ValueError(f"actor {self.id[:20]!r} names an empty group")
            check_one_line(group, "group id")
            if group != group.strip():
                raise ValueError(
                    f"actor {self.id[:20]!r} names group {group!r}, with spaces around it"
                )
            check_id_case(group, f"actor {self.id[:20]!r}'s group")

    @property
    def label(self) -> str:
        """``Name (id)`` when the name says something the id does not."""
        return f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id

    @classmethod
    def operator(cls, name: str | None = None, *, groups: Collection[str] = ()) -> Actor:
        """The local operator of the CLI: ``name``, or the login name of this process's user."""
        who = name or local_user()
        return cls(who, name=who, via=Via.CLI, groups=frozenset(groups))

    @classmethod
    def system(cls) -> Actor:
        """The engine (or an application's own machinery) acting on its own; never refused."""
        return SYSTEM

    @classmethod
    def python(cls, name: str | None = None) -> Actor:
        """A caller of the Python API: ``name``, or the login name of this process's user."""
        who = name or local_user()
        return cls(who, name=who, via=Via.PYTHON)


#: C0 and C1 control characters (Unicode category Cc: newlines, ESC, ...) and the line and
#: paragraph separators: in an id or a name they would start a new line, or a terminal
#: escape, in ``runs show``'s audit trail and ``runs list``'s table, so a person's name
#: could forge lines there. Also the marks, embeddings, overrides and isolates that
#: reorder bidirectional text (U+202E shows "alice" written after it backwards): the
#: "Trojan Source" characters, which make a line read otherwise than it is stored.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def check_one_line(value: str, what: str) -> str:
    """``value``, if it is one line of printable text; ``what`` names it in the error.

    Raises:
        ValueError: ``value`` holds a control character or a line separator.
    """
    found = _CONTROL.search(value)
    if found is not None:
        raise ValueError(
            f"{what} {value[:40]!r} holds a control character "
            f"(U+{ord(found.group()):04X}); ids and names are one line of printable text"
        )
    found = _SURROGATE.search(value)
    if found is not None:
        # No database stores it: the action would fail as it is recorded, not here.
        raise ValueError(
            f"{what} {value[:40]!r} holds a lone surrogate (U+{ord(found.group()):04X}), "
            "which is no character (bytes that are not UTF-8?)"
        )
    return value


#: half of a UTF-16 pair on its own: JSON's \ud800 decodes to one, and UTF-8 cannot encode it
_SURROGATE = re.compile("[\ud800-\udfff]")


def checked_ids(option: str, value: object) -> tuple[str, ...]:
    """The ids of people and groups an option such as ``approvers`` names, as a tuple.

    Raises:
        TypeError: ``value`` is one text (it would be read letter by letter: ``"U0BOB"``
            as the ids ``U``, ``0``, ``B``...), not a collection, or holds something that
            is no text.
        ValueError: an id is empty, longer than 200 characters, or not one line.
    """
    if isinstance(value, str | bytes):
        raise TypeError(
            f"{option} must be a list of user or group ids, not one text: "
            f"write {option}=[{value!r}]"
        )
    if not isinstance(value, Collection):
        raise TypeError(f"{option} must be a list of user or group ids (got {value!r:.60})")
    ids = tuple(value)
    for number, found in enumerate(ids, start=1):
        if not isinstance(found, str):
            raise TypeError(
                f"{option} holds {found!r:.60} (id {number}); ids of people and groups are text"
            )
        if not found.strip():
            raise ValueError(f"{option} holds an empty id (id {number}); name a person or a group")
        if len(found) > 200:
            raise ValueError(f"{option} holds id {found[:20]!r}..., longer than 200 characters")
        if found != found.strip():
            raise ValueError(
                f"{option} holds {found!r} (id {number}), with spaces around it: it would "
                "match nobody"
            )
        check_one_line(found, f"{option} id")
        check_id_case(found, f"{option} id")
    return ids


#: a Slack id written in lowercase (``u0bob``, ``s0ops``): U/W (a user) or S (a user group),
#: then a digit, as every Slack id is; an operator's name (``sam``, ``user1``) is not
_LOWERCASE_SLACK_ID = re.compile(r"^[UWSuws][0-9][A-Za-z0-9]+$")


def check_id_case(value: str, what: str = "id") -> str:
    """``value``, unless it is a Slack id written (partly) in lowercase: ids are matched
    exactly, and Slack's are uppercase, so ``u0bob`` would match nobody. The engine takes
    any id; this refuses only the one shape that is surely a misspelt Slack id.

    Raises:
        ValueError: naming ``value`` after ``what`` and the id it likely meant.
    """
    if _LOWERCASE_SLACK_ID.match(value) and value != value.upper():
        raise ValueError(
            f"{what} {value!r} would match nobody: Slack user and group ids are "
            f"uppercase (did you mean {value.upper()}?)"
        )
    return value


#: a Slack user group's id (``S0SRE``): Slack's ids hold a digit, so an operator's name in
#: capitals (``SAM``, ``SRE``) does not read as one
_GROUP_ID = re.compile(r"^S(?=[A-Z]*[0-9])[A-Z0-9]{2,63}$")


def is_group_id(value: str) -> bool:
    """Whether ``value`` is a Slack user group's id (``S0SRE``)."""
    return _GROUP_ID.match(value) is not None


def check_not_group(value: str, what: str = "actor id") -> str:
    """``value``, unless it is a user group's id: rules may name groups, but one person acts.

    Raises:
        NotAPerson: naming ``value`` after ``what``.
    """
    if is_group_id(value):
        raise NotAPerson(value, what)
    return value


def printable(text: str) -> str:
    """``text`` with each control character written out (``\\n``, ``\\x1b``), for a
    terminal: what was stored before ids and names were checked still shows as one line."""
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode(), text)


#: the engine acting on its own (timeouts, escalations); rules never refuse it
SYSTEM = Actor("signoff", name="Signoff", via=Via.SYSTEM)


@functools.cache
def local_user() -> str:
    """This process's user's login name (``operator`` when the system has none).

    Looked up once per process: without ``$USER`` it is a password-database lookup, and
    every run started from Python records who started it.
    """
    try:
        return getpass.getuser() or "operator"
    except (KeyError, OSError):
        return "operator"


def as_actor(who: str | Actor | None, via: Via = Via.PYTHON) -> Actor | None:
    """An ``Actor`` from what a caller passed: an Actor as it is, a bare id as acting via ``via``."""
    if who is None or isinstance(who, Actor):
        return who
    if not isinstance(who, str):
        raise TypeError(f"a person is a user id (str) or an Actor, not {type(who).__name__}")
    return Actor(who, name=who, via=via)


class GroupDirectory(Protocol):
    """Tells the engine which of some groups an actor belongs to.

    The Slack bot implements it over ``usergroups.users.list``; without one, only the
    groups an ``Actor`` carries count.
    """

    def groups_of(self, actor_id: str, candidates: Collection[str]) -> set[str]:
        """Those of ``candidates`` (ids named by a rule) that ``actor_id`` is a member of.

        It may raise when it cannot tell (the groups' owner will not say just now): the
        rule is then not decided, nothing is recorded, and the error reaches the caller.
        """
        ...


__all__ = [
    "SYSTEM",
    "Actor",
    "GroupDirectory",
    "Via",
    "as_actor",
    "check_id_case",
    "check_not_group",
    "check_one_line",
    "checked_ids",
    "is_group_id",
    "local_user",
    "printable",
]
