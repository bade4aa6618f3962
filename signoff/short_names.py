"""The short name ``engine`` for ``signoff.engine``, as in the reference examples.

Prefect's interactive-workflow examples run on Signoff with their imports changed to
``from engine import flow, pause_flow_run`` and ``from engine.input import RunInput``.
Those names must be the very modules of ``signoff.engine`` (one flow registry, one
``RunInput`` class), not a second copy loaded from the same files. ``engine/__init__.py``
calls ``take("engine")`` when it is imported by its short name; from then on ``engine`` and
every ``engine.*`` are the ``signoff.engine`` modules.

Signoff's own code never imports the short name, so a project with an ``engine`` of its
own (found first on ``sys.path``) keeps it, and Signoff works beside it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

PACKAGE = "signoff"


class ShortNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``engine.x`` as the already imported (or now imported) ``signoff.engine.x``."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        short = fullname.partition(".")[0]
        # Only while the short name is ours: a project's own ``engine`` is left alone.
        if short in self.names and sys.modules.get(short) is sys.modules.get(f"{PACKAGE}.{short}"):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(f"{PACKAGE}.{spec.name}")

    def exec_module(self, module: ModuleType) -> None:
        """Nothing: the module ran once already, under its full name."""


_finder = ShortNames()


def take(short: str) -> None:
    """Make ``short`` (and its submodules) the very modules of ``signoff.<short>``."""
    full = importlib.import_module(f"{PACKAGE}.{short}")
    if _finder not in sys.meta_path:
        # Before the path finder, which would load ``short.x`` a second time from the files.
        sys.meta_path.insert(0, _finder)
    _finder.names.add(short)
    sys.modules[short] = full


__all__ = ["ShortNames", "take"]
