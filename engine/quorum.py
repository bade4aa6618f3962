"""What a flow gets back from a pause that waited for several people: every answer, with who
gave it.

Example::

    answers = pause_flow_run(Approval, quorum=2, veto="approved")
    if answers.vetoed or not all(a.value.approved for a in answers):
        raise RuntimeError(f"refused by {answers.responders}")
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar, overload

T = TypeVar("T")


@dataclass(frozen=True)
class Answered(Generic[T]):
    """One person's validated answer."""

    value: T
    #: the id of who answered (a Slack user id, a CLI operator's name)
    responder: str | None
    #: their display name when they answered
    name: str | None
    #: where they answered from: "slack", "cli" or "python"
    via: str | None
    at: datetime


@dataclass(frozen=True)
class Answers(Generic[T]):
    """The answers to a quorum pause, oldest first."""

    answers: tuple[Answered[T], ...]
    #: how many different people the pause asked for
    quorum: int
    #: True when an answer set the pause's veto field to false and ended it early
    vetoed: bool

    def __iter__(self) -> Iterator[Answered[T]]:
        return iter(self.answers)

    def __len__(self) -> int:
        return len(self.answers)

    @overload
    def __getitem__(self, index: int) -> Answered[T]: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Answered[T], ...]: ...

    def __getitem__(self, index: int | slice) -> Answered[T] | tuple[Answered[T], ...]:
        return self.answers[index]

    @property
    def values(self) -> list[T]:
        return [a.value for a in self.answers]

    @property
    def responders(self) -> list[str | None]:
        return [a.responder for a in self.answers]


__all__ = ["Answered", "Answers"]
