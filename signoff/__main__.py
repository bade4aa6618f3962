"""``python -m signoff``: the ``signoff`` command."""

from __future__ import annotations

import sys

from signoff.bot.cli.entry import main

sys.exit(main())
