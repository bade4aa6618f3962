"""``FlowDefinition``: what the registry, the runner and a run's context need of a flow.

``engine.flows.Flow`` is the one implementation. Modules below ``flows`` name this
protocol instead of ``Flow``, so that ``flows`` (which executes through the runner) is the
only module that knows the class, and the engine's imports form no cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class FlowDefinition(Protocol):
    """A named function whose calls are recorded as runs."""

    @property
    def fn(self) -> Callable[..., Any]: ...

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str | None: ...

    @property
    def is_async(self) -> bool: ...

    @property
    def approvers(self) -> tuple[str, ...]:
        """Who may answer this flow's pauses unless a pause names its own approvers."""

    @property
    def forbid_starter(self) -> bool:
        """True when whoever started a run may not answer its pauses."""

    @property
    def starters(self) -> tuple[str, ...]:
        """Who may start the flow (empty: anyone)."""

    @property
    def cancellers(self) -> tuple[str, ...]:
        """Who may cancel its runs (empty: the default rule)."""

    @property
    def viewers(self) -> tuple[str, ...]:
        """Who may also view its runs in Slack (auditors); they may do nothing else."""

    @property
    def confirm(self) -> bool:
        """Whether answering its pauses asks the person to confirm first."""

    @property
    def ref(self) -> str | None:
        """``module:qualname`` (or ``path.py:qualname``) a worker imports the flow from."""

    def validate_parameters(self, values: dict[str, Any]) -> dict[str, Any]:
        """Coerce and check parameters; raises ``InvalidParameters``."""
        ...

    def parameters_schema(self) -> dict[str, Any] | None:
        """The JSON schema of the parameters; None when a parameter's type has none."""
        ...
