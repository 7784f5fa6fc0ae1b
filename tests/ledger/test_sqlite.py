"""SQLite specifics: file handling, schema checks, errors, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from prov_core.errors import ConfigError, LedgerError
from prov_core.ledger import NoteSigner, NoteVerifier, SQLiteLedger, audit_log, verify_receipt
from prov_core.ledger.merkle import MemoryTree

from . import _mp_worker
from .conftest import ORIGIN, SEED, LedgerFactory


def test_wal_and_meta(sqlite_factory: LedgerFactory, sqlite_path: Path) -> None:
    with sqlite_factory() as ledger:
        ledger.append([b"x"])
    conn = sqlite3.connect(sqlite_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta == {"schema": "provgate-ledger", "version": "2", "origin": ORIGIN}
    conn.close()


def test_garbage_file(tmp_path: Path, signer: NoteSigner) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(ConfigError, match=r"garbage\.db"):
        SQLiteLedger(path, ORIGIN, signer)


def test_wrong_schema(tmp_path: Path, signer: NoteSigner) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match=r"other\.db is not a provgate ledger"):
        SQLiteLedger(path, ORIGIN, signer)


def test_wrong_version_and_origin(
    sqlite_factory: LedgerFactory, sqlite_path: Path, signer: NoteSigner
) -> None:
    sqlite_factory().close()
    with pytest.raises(ConfigError, match="belongs to log"):
        SQLiteLedger(sqlite_path, "another.example/log", signer)
    conn = sqlite3.connect(sqlite_path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'version'")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match="schema version 99"):
        sqlite_factory()


def test_bad_paths(tmp_path: Path, signer: NoteSigner) -> None:
    with pytest.raises(ConfigError, match="directory"):
        SQLiteLedger(tmp_path, ORIGIN, signer)
    with pytest.raises(ConfigError, match="does not exist"):
        SQLiteLedger(tmp_path / "missing" / "l.db", ORIGIN, signer)


def test_storage_errors_are_ledger_errors(sqlite_factory: LedgerFactory, sqlite_path: Path) -> None:
    with sqlite_factory() as ledger:
        ledger.append([b"a"])
        conn = sqlite3.connect(sqlite_path)
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON entries BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
        conn.commit()
        with pytest.raises(LedgerError) as info:
            ledger.append([b"b"])
        assert isinstance(info.value.__cause__, sqlite3.Error)
        assert ledger.size() == 1
        assert list(ledger.entries()) == [(0, b"a")]
        conn.execute("DROP TABLE entries")
        conn.commit()
        conn.close()
        with pytest.raises(LedgerError):
            list(ledger.entries())
        with pytest.raises(LedgerError):
            ledger.size()


def test_two_handles_share_the_log(sqlite_factory: LedgerFactory, verifier: NoteVerifier) -> None:
    a, b = sqlite_factory(), sqlite_factory()
    leaves = []
    for i in range(30):
        leaf = b"entry %d" % i
        writer = a if i % 3 else b
        got = writer.append([leaf])
        assert got.first_index == i
        leaves.append(leaf)
    tree = MemoryTree.from_data(leaves)
    for i, leaf in enumerate(leaves):
        cp = verify_receipt(a.receipt(i), leaf, [verifier])
        assert cp.root == tree.root()
    assert audit_log(b, [verifier]).ok
    a.close()
    b.close()


def test_reserve_holds_off_other_writers(
    sqlite_path: Path, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    """While one connection holds a reservation, another connection's append waits."""
    with (
        SQLiteLedger(sqlite_path, ORIGIN, signer) as a,
        SQLiteLedger(sqlite_path, ORIGIN, signer, busy_timeout=10) as b,
    ):
        a.append([b"first"])
        other: list[int] = []
        with a.reserve() as index:
            worker = threading.Thread(target=lambda: other.append(b.append([b"b"]).first_index))
            worker.start()
            worker.join(0.3)
            assert worker.is_alive(), "the other writer appended during the reservation"
            assert a.append([b"reserved"]).first_index == index == 1
        worker.join(10)
        assert other == [2]
        assert [d for _, d in b.entries()] == [b"first", b"reserved", b"b"]
        assert audit_log(b, [verifier]).ok


@pytest.mark.slow
def test_four_processes(sqlite_path: Path, signer: NoteSigner, verifier: NoteVerifier) -> None:
    SQLiteLedger(sqlite_path, ORIGIN, signer).close()
    ctx = multiprocessing.get_context("spawn")
    args = [(str(sqlite_path), ORIGIN, SEED, w, 250) for w in range(4)]
    with ctx.Pool(4) as pool:
        results = pool.starmap(_mp_worker.append_many, args)
    given = sorted(i for r in results for i in r)
    assert given == list(range(1000))
    for r in results:
        assert r == sorted(r)  # each writer sees its own appends in order
    with SQLiteLedger(sqlite_path, ORIGIN, signer) as ledger:
        rows = list(ledger.entries())
        assert [i for i, _ in rows] == list(range(1000))
        assert len({d for _, d in rows}) == 1000
        assert [s for s, _ in ledger.checkpoints()] == list(range(1, 1001))
        for i, data in rows:
            verify_receipt(ledger.receipt(i), data, [verifier])
        report = audit_log(ledger, [verifier])
        assert report.ok, report.problems
        assert report.verified_size == 1000
