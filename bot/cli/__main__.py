"""``python -m bot.cli``: the ``signoff`` command without its console script."""

from __future__ import annotations

import sys

from signoff.bot.cli.entry import main

sys.exit(main())
