"""The ``signoff`` console script's entry point: a Ctrl-C while the command imports ends it
quietly.

The command's modules take some 40 ms to import (click, the engine's API, the commands); a
Ctrl-C then raised ``KeyboardInterrupt`` out of the console script's own import line, past
every handler of ``main``, and printed a traceback. This module imports nothing of its
own, so the import is inside the ``try`` (``signoff`` and ``signoff.bot`` import nothing
heavy on their own).
"""

from __future__ import annotations

import signal

#: the exit status of a command ended by Ctrl-C, as a shell reports it (128 + SIGINT)
INTERRUPTED = 128 + signal.SIGINT


def main() -> int:
    """Import the command line and run it; 130, quietly, on a Ctrl-C while it imports (or
    outside the commands, which answer one themselves)."""
    try:
        from signoff.bot.cli.main import main as run

        return run()
    except KeyboardInterrupt:
        # Further Ctrl-Cs (a held key) must not raise again while this returns.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return INTERRUPTED
