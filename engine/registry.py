"""Flows by name, and loading them from files or modules named on the command line."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from signoff.engine.definition import FlowDefinition
from signoff.engine.errors import FlowImportError, FlowNotFound

logger = logging.getLogger(__name__)


class FlowRegistry:
    """Every flow defined in this process, by name. A later definition replaces an earlier
    one; while ``load`` runs, one from another file or another function is also noted as a
    clash, which it refuses."""

    def __init__(self) -> None:
        self._flows: dict[str, FlowDefinition] = {}
        #: name -> the file and function of each flow defined during the current ``load``
        self._loading: dict[str, tuple[str, str]] | None = None
        self._clashes: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def add(self, flow: FlowDefinition) -> None:
        with self._lock:
            if self._loading is not None:
                # Read now: its module is the one being imported (a module of the same
                # name imported later replaces it in sys.modules).
                # The file and the function: two in one file clash as two files do.
                where = _where(flow)
                function = flow.ref.rpartition(":")[2] if flow.ref else "?"
                earlier, earlier_function = self._loading.setdefault(flow.name, (where, function))
                if earlier != where:
                    self._clashes.append((flow.name, earlier, where))
                elif earlier_function != function:
                    self._clashes.append(
                        (flow.name, f"{where} ({earlier_function})", f"{where} ({function})")
                    )
            self._flows[flow.name] = flow

    @contextmanager
    def loading(self) -> Iterator[list[tuple[str, str, str]]]:
        """Note every flow defined inside, and yield the (name, earlier file, later file)
        of each name defined in two files. Nested, the outermost one notes all."""
        with self._lock:
            outermost = self._loading is None
            if outermost:
                self._loading, self._clashes = {}, []
            clashes = self._clashes
        try:
            yield clashes
        finally:
            if outermost:
                with self._lock:
                    self._loading = None

    def get(self, name: str) -> FlowDefinition | None:
        with self._lock:
            return self._flows.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._flows)

    def all(self) -> list[FlowDefinition]:
        """Every registered flow, by name."""
        with self._lock:
            return [self._flows[name] for name in sorted(self._flows)]

    def similar(self, name: str) -> list[str]:
        """Registered names close to ``name``: ``_`` for ``-``, case, and small typos."""
        names = self.names()
        wanted = name.strip().lower().replace("_", "-").replace(" ", "-")
        exact = [n for n in names if n.lower().replace("_", "-") == wanted]
        return exact or difflib.get_close_matches(wanted, names, n=3, cutoff=0.75)

    def find(self, name: str) -> FlowDefinition:
        """The flow called ``name``.

        Raises:
            FlowNotFound: none is registered (with the registered names close to it).
        """
        found = self.get(name)
        if found is None:
            raise FlowNotFound(name, suggestions=self.similar(name))
        return found

    def resolve(self, name: str, ref: str | None) -> FlowDefinition:
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


def registered_flows() -> list[FlowDefinition]:
    """Every flow defined in this process so far (``@flow`` or ``load_flows``), by name."""
    return registry.all()


def find_flow(name: str) -> FlowDefinition:
    """The flow called ``name`` defined in this process (``@flow`` or ``load_flows``).

    >>> find_flow("deplyo")
    Traceback (most recent call last):
    FlowNotFound: no flow named 'deplyo' is registered; did you mean 'deploy'?

    Raises:
        FlowNotFound: none is, with the names close to it.
    """
    return registry.find(name)


def _where(flow: FlowDefinition) -> str:
    """The file a flow was defined in (else its module)."""
    name = flow.ref.rpartition(":")[0] if flow.ref else "?"
    module = sys.modules.get(name)
    origin = _origin(module) if module is not None else None
    return str(origin) if origin is not None else name


def load(*sources: str) -> None:
    """Import modules (``pkg.flows``), files (``flows/deploy.py``) or every ``*.py`` file of
    directories (``flows/``) of flows.

    A file is imported under its own name (``deploy``), whatever folder it is in, so values
    pickled from it (task results, parameters) load again after the file moves to another
    path in a new release. Its folder and the working directory go on ``sys.path`` first,
    so a flow file can import the modules beside it, as Prefect's loader allows.

    Example::

        load_flows("flows/deploy.py", "flows/access.py")

    Raises:
        FlowImportError: a path or module is empty, missing or fails to import, or two
            definitions among them (in two files, or one) give a flow the same name (whichever came last would
            run, and a replica given them in another order would run the other).
    """
    with registry.loading() as clashes:
        for source in sources:
            _load_one(source)
            if clashes:
                name, earlier, later = clashes[0]
                raise FlowImportError(
                    source,
                    f"cannot load flows from {source}: flow {name!r} is defined in both "
                    f"{earlier} and {later}; give one of them another name (@flow(name=...))",
                )


def _load_one(source: str) -> None:
    if not source.strip():
        # Path("") is the working directory: every .py file in it would be imported (run).
        raise FlowImportError(
            source, f"cannot load flows from {source!r}: no path or module given (an empty value)"
        )
    try:
        _load(source)
    except FlowImportError:
        raise
    except (Exception, SystemExit) as exc:
        # SystemExit too: a flows file that calls sys.exit() ended every command silently.
        raise FlowImportError(
            source, f"cannot load flows from {source}: {type(exc).__name__}: {exc}"
        ) from exc


def _load(source: str) -> None:
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
        if not files:
            raise FlowImportError(source, f"cannot load flows from {source}: no .py files")
        for file in files:
            try:
                _load_file(file)
            except FlowImportError:
                raise
            except (Exception, SystemExit) as exc:
                # Which of the folder's files failed, not only the folder.
                raise FlowImportError(
                    str(file),
                    f"cannot load flows from {source}: {file.name}: {type(exc).__name__}: {exc}",
                ) from exc
    elif source.endswith(".py") or "/" in source or path.is_file():
        _load_file(path)
    else:
        _on_path(Path.cwd())
        importlib.import_module(source)


def _on_path(folder: Path) -> None:
    entry = str(folder)
    if entry not in sys.path:
        sys.path.insert(0, entry)


def _module_name(path: Path) -> str:
    """The file's own name, unless that would shadow another module."""
    stem = path.stem
    if not stem.isidentifier():
        raise FlowImportError(
            str(path), f"cannot load flows from {path}: {stem!r} is not a valid module name"
        )
    loaded = sys.modules.get(stem)
    if loaded is not None:
        # A flows file loaded before under this name (perhaps from its old path) is
        # replaced; any other module keeps its name.
        if hasattr(loaded, "__signoff_source__") or _origin(loaded) == path:
            return stem
        return _PREFIX + stem
    spec = importlib.util.find_spec(stem)
    if spec is not None and (spec.origin is None or Path(spec.origin).resolve() != path):
        return _PREFIX + stem  # e.g. flows/email.py must not become the stdlib's email
    return stem


def _origin(module: object) -> Path | None:
    source = getattr(module, "__signoff_source__", None) or getattr(module, "__file__", None)
    return Path(source).resolve() if source else None


#: the module name of a flow file whose own name is taken by another module
_PREFIX = "signoff_flows_"


def _load_file(path: Path) -> None:
    path = path.expanduser().resolve()
    if not path.is_file():
        if path.exists():  # /dev/null, a pipe: opening one could block, and it holds no code
            raise FlowImportError(
                str(path),
                f"cannot load flows from {path}: not a regular file, so not a Python file",
            )
        raise FlowImportError(str(path), f"cannot load flows from {path}: no such file")
    _on_path(Path.cwd())
    _on_path(path.parent)
    name = _module_name(path)
    existing = sys.modules.get(name)
    if existing is not None and _origin(existing) == path:
        return  # loaded already, perhaps imported by a flows file beside it
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
