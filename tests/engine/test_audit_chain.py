"""The audit trail's hash chain across ``SIGNOFF_AUDIT_KEY`` being set: a trail begun
without the key still verifies once it is set (its first records reported as written
before the key), a wrong key is told from an edit, and whoever lacks the key cannot pass
keyed records off as unkeyed ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from signoff.engine import Engine, NotAllowed, Worker, flow, set_engine
from signoff.engine.audit import chain_hash
from tests.cli.test_audit_cli import invoke


@flow(name="audit-chain")
def audit_chain() -> None:
    return None


@flow(name="audit-chain-guarded", cancellers=["alice"])
def audit_chain_guarded() -> None:
    return None


def runs_on(engine: Engine, count: int) -> None:
    previous = set_engine(engine)
    try:
        for _ in range(count):
            audit_chain()
    finally:
        set_engine(previous)


@pytest.fixture
def trail(make_engine: Callable[..., Engine]) -> Engine:
    """Records 1-2 written without a key, 3-4 after SIGNOFF_AUDIT_KEY was set to k1; the
    engine returned has the key."""
    runs_on(make_engine(), 2)
    keyed = make_engine(audit_key="k1")
    runs_on(keyed, 2)
    return keyed


def verify_cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> tuple[int, str, str]:
    if key is None:
        monkeypatch.delenv("SIGNOFF_AUDIT_KEY", raising=False)
    else:
        monkeypatch.setenv("SIGNOFF_AUDIT_KEY", key)
    return invoke(database_url, "audit", "verify")


def rewrite(engine: Engine, seq: int, actor_name: str, secret: bytes | None) -> None:
    """Edit record ``seq``'s actor name and hash it again (with ``secret``, or without a key
    as someone without it would); the link of the record after it still holds."""
    [record] = [r for r in engine.audit_records() if r.seq == seq]
    digest = chain_hash(
        seq=record.seq,
        at=record.at,
        action=record.action,
        run_id=record.run_id,
        flow_name=record.flow_name,
        actor_id=record.actor_id,
        actor_name=actor_name,
        via=record.via,
        key=record.key,
        data=record.data,
        prev_hash=record.prev_hash,
        secret=secret,
    )
    with engine.store.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_records SET actor_name = :name, hash = :hash WHERE seq = :seq"),
            {"name": actor_name, "hash": digest, "seq": seq},
        )
        # The next record links to the hash it was written after; keep that link whole too.
        conn.execute(
            text("UPDATE audit_records SET prev_hash = :hash WHERE seq = :next"),
            {"hash": digest, "next": seq + 1},
        )


def test_a_trail_begun_without_the_key_verifies_once_it_is_set(
    trail: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = trail.verify_audit()
    assert (found.ok, found.checked, found.unkeyed) == (True, 4, 2)
    code, out, _ = verify_cli(database_url, monkeypatch, "k1")
    assert code == 0
    assert out.splitlines()[0].startswith("audit trail intact: 4 records, last hash ")
    assert out.splitlines()[1] == (
        "records 1-2 were written before SIGNOFF_AUDIT_KEY was set (hashed without it)"
    )
    # Without the key the keyed records cannot be checked, and it says why.
    code, _, err = verify_cli(database_url, monkeypatch, None)
    assert code == 1
    assert err == (
        "audit trail NOT VERIFIED from record 3: no record from 3 on verifies without a key: "
        "they were written with SIGNOFF_AUDIT_KEY set (set it to verify them), or every one "
        "of them was changed (2 records before it are intact)\n"
    )


def test_a_wrong_or_changed_key_is_told_from_an_edit(
    trail: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = verify_cli(database_url, monkeypatch, "k2")
    assert code == 1
    assert err.startswith(
        "audit trail NOT VERIFIED from record 3: no record from 3 on verifies with "
        "SIGNOFF_AUDIT_KEY: it is not the key they were written with (a wrong or changed key?)"
    )
    # An edit in the keyed part is an edit, with the right key.
    with trail.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET actor_name = 'mallory' WHERE seq = 3"))
    code, _, err = verify_cli(database_url, monkeypatch, "k1")
    assert code == 1
    assert err.startswith(
        "audit trail BROKEN at record 3: record 3 was changed after it was written"
    )


def test_a_key_changed_part_way_is_told_from_an_edit(
    trail: Engine,
    make_engine: Callable[..., Engine],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGNOFF_AUDIT_KEY changed from k1 to k2 after record 4 (records 5-6 under k2): no
    record was edited, and neither key is reported as finding an edit."""
    runs_on(make_engine(audit_key="k2"), 2)
    code, _, err = verify_cli(database_url, monkeypatch, "k1")
    assert code == 1
    assert err.startswith(
        "audit trail NOT VERIFIED from record 5: no record from 5 on verifies with "
        "SIGNOFF_AUDIT_KEY, though the records before them do: they were written with "
        "another key (was the key changed at record 5?), or every one of them was changed"
    ), err
    code, _, err = verify_cli(database_url, monkeypatch, "k2")
    assert code == 1
    assert err.startswith(
        "audit trail NOT VERIFIED from record 3: records 3 to 4 do not verify with "
        "SIGNOFF_AUDIT_KEY, though record 5 after them does: they were written with another "
        "key (was the key changed at record 5?), or every one of them was changed"
    ), err
    # One record edited among those the key verifies is still an edit.
    with trail.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET actor_name = 'mallory' WHERE seq = 3"))
    code, _, err = verify_cli(database_url, monkeypatch, "k1")
    assert err.startswith(
        "audit trail BROKEN at record 3: record 3 was changed after it was written"
    ), err


def test_the_last_record_under_another_key_may_be_either(
    trail: Engine,
    make_engine: Callable[..., Engine],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs_on(make_engine(audit_key="k2"), 1)
    code, _, err = verify_cli(database_url, monkeypatch, "k1")
    assert code == 1
    assert err.startswith(
        "audit trail BROKEN at record 5: record 5 was changed after it was written, or it "
        "was written with another SIGNOFF_AUDIT_KEY"
    ), err


def test_keyed_records_cannot_be_passed_off_as_written_before_the_key(
    trail: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone with the database but not the key edits record 4 and hashes it without a
    key, as the records before the key were: only a leading run of such records passes."""
    rewrite(trail, 4, "mallory", secret=None)
    code, _, err = verify_cli(database_url, monkeypatch, "k1")
    assert code == 1
    assert err.startswith(
        "audit trail BROKEN at record 4: record 4 is hashed without SIGNOFF_AUDIT_KEY after "
        "records hashed with it"
    )
    # Hashed with the key, the same edit passes: the key is what the chain's trust rests on.
    rewrite(trail, 4, "mallory", secret=b"k1")
    assert verify_cli(database_url, monkeypatch, "k1")[0] == 0


def test_an_edit_before_the_key_was_set_is_still_an_edit(
    trail: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trail.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET actor_name = 'mallory' WHERE seq = 1"))
    for key in ("k1", "k2", None):  # the records after it show the key is not at fault
        code, _, err = verify_cli(database_url, monkeypatch, key)
        assert code == 1
        assert err.startswith(
            "audit trail BROKEN at record 1: record 1 was changed after it was written"
        ), key


def last_head(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """What 'audit verify' tells the operator to keep: ``SEQ:HASH`` of the last record."""
    code, out, _ = verify_cli(database_url, monkeypatch, None)
    assert code == 0, out
    keep = out.splitlines()[-1]
    assert keep.startswith("keep ") and keep.endswith(" to check later with --head")
    return keep.split()[1]


def test_records_cut_from_the_end_are_caught_by_a_kept_head(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs_on(engine, 1)
    with pytest.raises(NotAllowed):
        engine.cancel(engine.submit("audit-chain-guarded").id, by="mallory")  # records 2, 3
    head = last_head(database_url, monkeypatch)
    assert head.startswith("3:")
    code, out, _ = invoke(database_url, "audit", "verify", "--head", head)
    assert code == 0 and "record 3 still has the hash given with --head" in out
    with engine.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE seq = 3"))  # the refusal
    # The chain alone still holds: nothing says a record followed record 2 ...
    assert verify_cli(database_url, monkeypatch, None)[0] == 0
    # ... but the head kept elsewhere does.
    code, _, err = invoke(database_url, "audit", "verify", "--head", head)
    assert code == 1
    assert err == (
        "audit trail BROKEN at record 3: the trail ends at record 2, but record 3 was given "
        "with its hash: records from 3 on were deleted (2 records before it are intact)\n"
    )


def test_a_run_whose_start_record_was_cut_breaks_the_trail(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs_on(engine, 3)
    newest = engine.list_runs(limit=1)[0].id
    with engine.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE seq = 3"))
    code, _, err = verify_cli(database_url, monkeypatch, None)
    assert code == 1
    assert err == (
        f"audit trail BROKEN at record 3: run {newest} has no record of its start, though "
        "records 1-2 hold: records after 2 were deleted (2 records before it are intact)\n"
    )
    with engine.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records"))
    code, _, err = verify_cli(database_url, monkeypatch, None)
    assert code == 1
    assert err.startswith("audit trail BROKEN at record 1: runs ")
    assert "have no record of their start: the trail holds no records (were they deleted?" in err


def test_keyed_refuses_a_keyed_trail_rewritten_without_the_key(
    make_engine: Callable[..., Engine], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --keyed, a trail keyed from its first record and rewritten whole without
    the key passed (exit 0, as "written before SIGNOFF_AUDIT_KEY was set")."""
    keyed = make_engine(audit_key="k1")
    runs_on(keyed, 2)
    monkeypatch.setenv("SIGNOFF_AUDIT_KEY", "k1")
    assert invoke(database_url, "audit", "verify", "--keyed")[0] == 0
    records = list(keyed.audit_records())
    for record in records:  # a forger without the key rewrites every record
        rewrite(keyed, record.seq, "mallory", secret=None)
    code, out, _ = invoke(database_url, "audit", "verify")
    assert code == 0 and f"records 1-{len(records)} were written before" in out
    code, out, err = invoke(database_url, "audit", "verify", "--keyed")
    assert (code, out) == (1, "")
    assert err == (
        f"audit trail NOT VERIFIED with --keyed: records 1-{len(records)} were hashed without "
        "SIGNOFF_AUDIT_KEY (written before it was set, or rewritten by someone without it)\n"
    )
    monkeypatch.delenv("SIGNOFF_AUDIT_KEY")
    code, _, err = invoke(database_url, "audit", "verify", "--keyed")
    assert code == 2 and "--keyed needs SIGNOFF_AUDIT_KEY" in err


def test_a_trail_rewritten_without_a_key_is_caught_by_a_kept_head(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs_on(engine, 3)
    head = last_head(database_url, monkeypatch)
    # Someone edits record 2 and hashes it and the record after it again: without a key,
    # the chain holds.
    rewrite(engine, 2, "mallory", secret=None)
    [third] = [r for r in engine.audit_records() if r.seq == 3]
    rewrite(engine, 3, str(third.actor_name), secret=None)  # only its link changed
    assert verify_cli(database_url, monkeypatch, None)[0] == 0
    code, _, err = invoke(database_url, "audit", "verify", "--head", head)
    assert code == 1
    assert err.startswith("audit trail BROKEN at record 3: record 3's hash is ")
    assert f", not {head[2:]} as given: the trail was rewritten from there or before" in err


@pytest.mark.parametrize("given", ["3", "3:abc", "x:" + "0" * 64, "0:" + "0" * 64, ":"])
def test_a_head_that_is_not_seq_colon_hash_is_refused_by_option(
    database_url: str, given: str
) -> None:
    code, out, err = invoke(database_url, "audit", "verify", "--head", given)
    assert (code, out) == (2, "")
    assert "Invalid value for '--head'" in err and "is not SEQ:HASH" in err


@pytest.mark.parametrize(
    ("key", "refused"), [("k1", False), ("k2", True), (None, True)], ids=["same", "other", "none"]
)
def test_a_worker_says_at_start_when_the_trail_is_written_with_another_key(
    trail: Engine,
    make_engine: Callable[..., Engine],
    caplog: pytest.LogCaptureFixture,
    key: str | None,
    refused: bool,
) -> None:
    # Replicas given different keys (or one none) wrote a trail that audit verify could
    # only call edited, and nothing said so while it was written.
    replica = make_engine(**({"audit_key": key} if key else {}))
    worker = Worker(replica)
    worker.start()
    worker.stop()
    said = [r for r in caplog.records if getattr(r, "action", None) == "audit_key_mismatch"]
    assert bool(said) is refused
    if said:
        assert said[0].levelname == "ERROR" and "record (4)" in said[0].getMessage()
        assert "same SIGNOFF_AUDIT_KEY" in said[0].getMessage()


def test_a_worker_with_the_key_set_on_a_trail_begun_without_it_says_nothing(
    make_engine: Callable[..., Engine], caplog: pytest.LogCaptureFixture
) -> None:
    runs_on(make_engine(), 2)
    worker = Worker(make_engine(audit_key="k1"))
    worker.start()
    worker.stop()
    assert not [r for r in caplog.records if getattr(r, "action", None) == "audit_key_mismatch"]
