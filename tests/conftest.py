"""Shared fixtures: a clean environment, and an engine on each storage backend.

Every test that takes ``engine`` (or ``database_url``) runs twice: on a SQLite file and
on a real PostgreSQL started from the machine's binaries. Locally a missing PostgreSQL
skips those runs with a reason; in CI (``CI`` set) it fails them.
"""

from __future__ import annotations

import gc
import inspect
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import hypothesis.internal.observability  # noqa: F401
import hypothesis.strategies  # noqa: F401
import psycopg
import pytest

# The same for what Signoff imports on first use: pytest rewrites Signoff's modules (it is
# a pytest plugin) with ast.parse, which failed that way while a flow thread of an earlier
# test logged its traceback (traceback formatting parses too; python/cpython#106905).
import signoff.bot.backends.prefect.local
import signoff.bot.cli.manifest
import signoff.bot.cli.sandbox
import signoff.bot.cli.serve
import signoff.bot.demo.command
import signoff.bot.demo.on_prefect
import signoff.bot.demo.page
import signoff.bot.testing
import signoff.engine.runner  # noqa: F401
from signoff.engine import Engine, EngineSettings, set_engine
from signoff.engine.store.database import create_db_engine
from signoff.engine.store.revisions import upgrade
from tests.support.cli_forks import CliForks
from tests.support.postgres import PostgresCluster, PostgresUnavailable, start_cluster
from tests.support.prefect import SharedServer, is_prefect_test, require_prefect

# Hypothesis's pytest plugin imports its internals lazily, from hooks that run while a
# test's threads are alive; CPython 3.11's parser can fail when modules are compiled
# concurrently (SystemError: AST constructor recursion depth mismatch). Imported above,
# at collection, before any thread starts; so are Signoff's own lazily imported modules.

FAST = {"heartbeat_seconds": 0.2, "owner_timeout_seconds": 1.0}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Import what ``st.from_regex`` imports on first use, before any test runs (see above;
    not at conftest import: that module reads Hypothesis's Unicode tables, which Hypothesis
    refuses to do while plugins load)."""
    import hypothesis.strategies._internal.regex  # noqa: F401


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: half as many workers again as cores, and at most 8 more than cores.
    Most tests wait (on a subprocess, a server, a condition) more than they compute: with
    one worker per core a run left a third of the machine idle. On 2 cores: 13 min 37 s
    with 2 workers, 10 min 21 s with 3; 4 workers took 9 to 10 minutes, but tests that
    time their own servers (pool waits, shutdowns) then failed one run in three."""
    cores = os.cpu_count() or 1
    return min(max(2, cores * 3 // 2), cores + 8)


def _compile_sources() -> None:
    """Where ``PYTHONDONTWRITEBYTECODE`` is set (as on CI), every process a test starts (the
    CLI, workers, ``serve``: hundreds in a run) compiled Signoff's modules again, a fifth
    of a second each. Compiled once here, they are read instead. (``compileall`` does not
    follow the ``signoff/engine`` and ``signoff/bot`` links: their folders are named.)"""
    import compileall

    root = Path(__file__).resolve().parents[1]
    for folder in ("engine", "bot", "tests"):
        compileall.compile_dir(root / folder, quiet=1)


def pytest_configure(config: pytest.Config) -> None:
    """Compile Signoff's modules once (see ``_compile_sources``), and refuse
    ``--dist loadgroup`` where xdist cannot group. The Prefect server and the
    README's blocks are set up once per worker that runs their ``xdist_group``; xdist 3.8
    groups by rewriting ``item._nodeid``, which pytest 9.2 no longer reads
    (pytest-dev/pytest-xdist#1386), and every worker would then set them up, at minutes
    each."""
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not hasattr(config, "workerinput"):
        _compile_sources()
    if config.getoption("dist", "no") != "loadgroup":
        return
    if "_nodeid" not in inspect.getsource(pytest.Item.nodeid.fget):  # type: ignore[attr-defined]
        raise pytest.UsageError(
            f"pytest-xdist cannot group tests under pytest {pytest.__version__} "
            "(pytest-dev/pytest-xdist#1386): install the versions in constraints.txt"
        )


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("SIGNOFF_", "SLACK_")):
            monkeypatch.delenv(name)
    # Anything that falls back to the default database lands in this test's directory.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster | None]:
    try:
        cluster = start_cluster(in_memory=True)
    except (PostgresUnavailable, OSError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        yield None
        return
    try:
        with psycopg.connect(cluster.admin_conninfo, autocommit=True) as conn:
            conn.execute("CREATE DATABASE signoff_template")
        migrated = create_db_engine(cluster.url("signoff_template"))
        upgrade(migrated)
        migrated.dispose()
        yield cluster
    finally:
        cluster.stop()


def new_pg_database(cluster: PostgresCluster) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.admin_conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE signoff_template")
    return cluster.url(name)


def drop_pg_database(cluster: PostgresCluster, url: str) -> None:
    """Drop a test's database once the test is over, closing what still holds it."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(cluster.admin_conninfo, autocommit=True) as conn:
        if conn.info.server_version >= 130000:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        # Before PostgreSQL 13: DROP waits (5 s at most) for the sessions ended here to go.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
        conn.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the schema, copied for each test's ``database_url``, as
    PostgreSQL's databases are cloned from a migrated template: running the migrations
    took a fifth of a second to a second a test, on each of some 800 tests."""
    path = tmp_path_factory.mktemp("sqlite-template") / "signoff.db"
    migrated = create_db_engine(f"sqlite:///{path}")
    upgrade(migrated)
    migrated.dispose()
    # Closed, the file holds everything: a copy is a whole database (the lock files
    # beside it are not copied; each test's are made as its own are used).
    assert not path.with_name(f"{path.name}-wal").exists()
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_cluster: PostgresCluster | None
) -> Iterator[str]:
    if request.param == "sqlite":
        database = tmp_path / "signoff.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), database)
        yield f"sqlite:///{database}"
        return
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    url = new_pg_database(pg_cluster)
    yield url
    drop_pg_database(pg_cluster, url)


@pytest.fixture
def make_engine(database_url: str) -> Iterator[Callable[..., Engine]]:
    made: list[Engine] = []

    def make(**overrides: object) -> Engine:
        settings = EngineSettings.load(database_url=database_url, **{**FAST, **overrides})
        engine = Engine(settings)
        made.append(engine)
        return engine

    yield make
    for engine in reversed(made):
        engine.close()


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Iterator[Engine]:
    """The process's engine for this test, on SQLite or PostgreSQL."""
    made = make_engine()
    previous = set_engine(made)
    yield made
    set_engine(previous)


@pytest.fixture(scope="session")
def cli_forks() -> Iterator[CliForks]:
    """Forks ``signoff`` commands from one process that has imported them (see
    ``tests/support/cli_forks.py``): one per test worker, started at its first command."""
    with CliForks() as forks:
        yield forks


#: this worker's Prefect server (see ``tests/support/prefect.py``)
PREFECT = SharedServer()


@pytest.fixture
def prefect_api_url() -> str:
    """A real Prefect server, shared by the Prefect tests this worker runs in a row.

    Tests using it belong in an xdist group, so that few workers start one: ``prefect``
    (``test_prefect_backend.py`` and the README's Prefect blocks) or ``prefect-2`` (the
    other modules). The Prefect tests wait on Prefect's pollers more than they compute,
    and in one group they ran one after another for longer than the rest of the suite
    took on the other workers; two groups, two servers (about 15 s each to start).
    """
    require_prefect()
    return PREFECT.url()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Stop this worker's Prefect server once its tests' fixtures are torn down, when the
    next test is not a Prefect test (xdist hands a group's tests over together); else
    cancel the runs the test left unfinished there."""
    yield
    if PREFECT.running and (nextitem is None or not is_prefect_test(nextitem)):
        PREFECT.stop()
    elif PREFECT.running and is_prefect_test(item):
        PREFECT.cancel_unfinished()


def pytest_sessionfinish(session: pytest.Session) -> None:
    PREFECT.stop()


@pytest.fixture
def tasks_left_on_closed_loops_collected() -> Iterator[None]:
    """For a test that closes an event loop under a running flow (or another task): the
    task, left pending, is collected as the test ends. Collected later, asyncio's "Task was destroyed
    but it is pending!" went to the stderr of whichever test the collector ran in."""
    yield
    gc.collect()
