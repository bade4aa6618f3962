"""The garbage collector in the long-running commands (``signoff serve``, ``signoff worker``).

Python's full collection walks every tracked object. In ``signoff serve`` most of them are
built once at start-up (the imported libraries, the app, the engine) and live until exit,
and walking them took 40 to 60 ms on the 2-core VM: a pause for every request in flight,
once every few seconds under load. ``settle_after_start`` collects once and freezes what
is left, so later full collections look only at what came after.
"""

from __future__ import annotations

import gc


def settle_after_start() -> None:
    """Collect once, then keep everything alive now out of later full collections.

    Example::

        server.start()
        settle_after_start()
    """
    gc.collect()
    gc.freeze()


__all__ = ["settle_after_start"]
