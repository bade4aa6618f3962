"""A PostgreSQL server that drops its connections (a restart, a failover, an idle timeout on
the network) costs the store at most one failed call, and none for a connection that sat
idle: such a connection is pinged before use and replaced."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from signoff.engine import RunState, StoreError
from signoff.engine.store import SqlStore
from signoff.engine.store.database import create_db_engine
from tests.conftest import new_pg_database
from tests.support.postgres import PostgresCluster


@pytest.fixture
def pg_url(pg_cluster: PostgresCluster | None) -> str:
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    return new_pg_database(pg_cluster)


def open_store(url: str, ping_after_idle: float) -> SqlStore:
    return SqlStore(create_db_engine(url, ping_after_idle=ping_after_idle))


@pytest.fixture
def stores() -> Iterator[list[SqlStore]]:
    made: list[SqlStore] = []
    yield made
    for store in made:
        store.close()


def drop_connections(url: str) -> None:
    """Terminate every server process serving ``url``'s database and wait until they are gone."""
    parsed = make_url(url)
    store_db = parsed.database
    with psycopg.connect(
        f"host=127.0.0.1 port={parsed.port} user=postgres", autocommit=True
    ) as admin:
        others = "datname = %s AND pid <> pg_backend_pid()"
        admin.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {others}", [store_db]
        )
        deadline = time.monotonic() + 10
        while admin.execute(
            f"SELECT count(*) FROM pg_stat_activity WHERE {others}", [store_db]
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the server processes did not exit"


def store_run(store: SqlStore, run_id: str) -> None:
    store.create_run(run_id, "deploy", None, b"", {}, RunState.SCHEDULED, None, "alice")


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(pg_url, stores) -> None:
    store = open_store(pg_url, ping_after_idle=0.0)
    stores.append(store)
    store_run(store, "r1")
    drop_connections(pg_url)

    assert store.get_run("r1").started_by == "alice"
    store_run(store, "r2")
    assert store.get_run("r2").state is RunState.SCHEDULED


def test_a_connection_dropped_while_in_use_fails_one_call_and_is_not_reused(pg_url, stores) -> None:
    # Used moments ago, so not pinged: the call that meets the dead connection fails with
    # a clear error, and the connection does not go back to the pool.
    store = open_store(pg_url, ping_after_idle=3600.0)
    stores.append(store)
    store_run(store, "r1")
    drop_connections(pg_url)

    with pytest.raises(StoreError, match="database read failed"):
        store.get_run("r1")
    assert store.get_run("r1").started_by == "alice"
