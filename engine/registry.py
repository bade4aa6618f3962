"""Flows by name, and loading them from files or modules named on the command line."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import FlowImportError

if TYPE_CHECKING:
    from engine.flows import Flow

logger = logging.getLogger(__name__)


class FlowRegistry:
    """Every flow defined in this process, by name. A later definition replaces an earlier one."""

    def __init__(self) -> None:
        self._flows: dict[str, Flow[..., Any]] = {}
        self._lock = threading.Lock()

    def add(self, flow: Flow[..., Any]) -> None:
        with self._lock:
            self._flows[flow.name] = flow

    def get(self, name: str) -> Flow[..., Any] | None:
        with self._lock:
            return self._flows.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._flows)

    def resolve(self, name: str, ref: str | None) -> Flow[..., Any]:
        """The flow called ``name``, importing it from ``ref`` if this process lacks it.

        Raises:
            FlowImportError: neither this process nor ``ref`` provides the flow.
        """
        found = self.get(name)
        if found is not None:
            return found
        if not ref:
            raise FlowImportError(name, f"flow {name!r} is not loaded and its source is unknown")
        source, _, _qualname = ref.rpartition(":")
        load(source)
        found = self.get(name)
        if found is None:
            raise FlowImportError(source, f"{source} was loaded but defines no flow {name!r}")
        return found


#: the process-wide registry that ``@flow`` adds to
registry = FlowRegistry()


def load(source: str) -> None:
    """Import a module (``pkg.flows``) or execute a file (``flows/deploy.py``) of flows.

    Raises:
        FlowImportError: the file or module is missing or fails to import.
    """
    try:
        if source.endswith(".py") or "/" in source or Path(source).is_file():
            _load_file(Path(source))
        else:
            importlib.import_module(source)
    except FlowImportError:
        raise
    except Exception as exc:
        raise FlowImportError(
            source, f"cannot load flows from {source}: {type(exc).__name__}: {exc}"
        ) from exc


def _load_file(path: Path) -> None:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise FlowImportError(str(path), f"cannot load flows from {path}: no such file")
    # A stable name, so every process unpickles classes from this file the same way.
    name = "signoff_flows_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FlowImportError(str(path), f"cannot load flows from {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    # Registered before executing so that pickled task results can name their classes.
    sys.modules[name] = module
    module.__signoff_source__ = str(path)  # type: ignore[attr-defined]
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
