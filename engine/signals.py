"""Control signals that unwind a flow without being errors.

They derive from ``BaseException`` so that a flow's ``except Exception:`` cannot swallow
them, for the same reason ``asyncio.CancelledError`` does.
"""

from __future__ import annotations


class Suspend(BaseException):
    """Unwinds a flow that suspended itself; the run is already stored as suspended."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class Cancel(BaseException):
    """Unwinds a flow whose run was cancelled; the run is already stored as cancelled."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


class TakenOver(BaseException):
    """Unwinds a flow whose run another process took over (this one was taken for dead):
    nothing more of this execution is stored. Also raised where its engine was closed under
    it (``waited`` False: before it could wait for input; ``asked`` False: at a store call
    of an async flow, which close's store threads refuse)."""

    def __init__(self, run_id: str, *, waited: bool = True, asked: bool = True) -> None:
        super().__init__(run_id)
        self.run_id = run_id
        self.waited = waited
        self.asked = asked


class EngineClosed(BaseException):
    """Unwinds a flow at a store call made after its engine closed: an async flow's are
    refused by the store threads close stopped, a sync flow's by the closed store, which
    opens no connection again. Nothing more of this execution is stored, and the outermost
    flow stops as taken over (its run is left for a worker, see ``runner``)."""
