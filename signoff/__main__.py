"""``python -m signoff``: the ``signoff`` command."""

from __future__ import annotations

from signoff.bot.cli.main import main

main()
