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
    it (``waited`` False: before it could wait for input)."""

    def __init__(self, run_id: str, *, waited: bool = True) -> None:
        super().__init__(run_id)
        self.run_id = run_id
        self.waited = waited
