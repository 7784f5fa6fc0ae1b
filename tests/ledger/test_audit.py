"""Tamper suite: a SQLite ledger edited behind provgate's back, and what the audit names."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from prov_core.errors import LedgerIntegrityError
from prov_core.ledger import (
    AuditReport,
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    Problem,
    SQLiteLedger,
    audit_log,
)
from prov_core.ledger.merkle import MemoryTree, leaf_hash

from .conftest import ORIGIN, LedgerFactory
from .contract import fill

BATCHES = [1, 3, 1, 8, 2, 1, 5, 19]  # checkpoints at 1, 4, 5, 13, 15, 16, 21, 40
SIZE = 40


@pytest.fixture
def log(sqlite_factory: LedgerFactory) -> Iterator[tuple[SQLiteLedger, list[bytes]]]:
    ledger = sqlite_factory()
    assert isinstance(ledger, SQLiteLedger)
    leaves = fill(ledger, BATCHES)
    assert len(leaves) == SIZE
    yield ledger, leaves
    ledger.close()


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def audit(ledger: SQLiteLedger, verifier: NoteVerifier) -> AuditReport:
    report = audit_log(ledger, [verifier])
    assert not report.ok
    with pytest.raises(LedgerIntegrityError):
        report.raise_for_problems()
    return report


def kinds(report: AuditReport) -> dict[str, list[Problem]]:
    out: dict[str, list[Problem]] = {}
    for p in report.problems:
        out.setdefault(p.kind, []).append(p)
    return out


def test_clean_log(log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier) -> None:
    ledger, _ = log
    report = audit_log(ledger, [verifier])
    assert report.ok
    report.raise_for_problems()
    assert (report.entries, report.verified_size, report.checkpoints) == (SIZE, SIZE, 8)


def test_flipped_byte(log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier) -> None:
    ledger, leaves = log
    edited = bytearray(leaves[7])
    edited[3] ^= 0x01
    with raw(ledger.path) as conn:
        conn.execute("UPDATE entries SET leaf = ? WHERE idx = 7", (bytes(edited),))
    found = kinds(audit(ledger, verifier))
    assert [p.index for p in found["edited"]] == [7]
    assert "entry 7 differs" in found["edited"][0].message
    assert found["root-mismatch"][0].size == 13  # first checkpoint covering entry 7
    assert set(found) == {"edited", "root-mismatch"}


def test_deleted_row(log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier) -> None:
    ledger, _ = log
    with raw(ledger.path) as conn:
        conn.execute("DELETE FROM entries WHERE idx = 9")
    found = kinds(audit(ledger, verifier))
    assert [p.index for p in found["missing"]] == [9]
    assert "entry 9 is missing" in found["missing"][0].message
    assert found["root-mismatch"][0].size == 13


def test_deleted_and_renumbered(
    log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier
) -> None:
    """Entry 9's contents are dropped and every later entry moves down one position.

    The rows keep their committed hashes and checkpoints, as the separate
    tables of schema 1 did; the last row keeps its own contents, because a
    row cannot go without the checkpoint it carries (see the whole-row case).
    """
    ledger, leaves = log
    with raw(ledger.path) as conn:
        for i in range(9, SIZE - 1):
            conn.execute("UPDATE entries SET leaf = ? WHERE idx = ?", (leaves[i + 1], i))
    found = kinds(audit(ledger, verifier))
    assert [p.index for p in found["deleted"]] == [9]
    assert "entry 9 was deleted" in found["deleted"][0].message
    assert "edited" not in found
    assert found["root-mismatch"][0].size == 13
    assert set(found) == {"deleted", "root-mismatch"}


def test_rows_deleted_and_renumbered(
    log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier
) -> None:
    """Whole rows renumbered take their hashes and checkpoints with them: still caught.

    Every moved checkpoint is named with the size it is stored at and the
    size it signs, which says by how much the rows were shifted, and the
    entries past the last checkpoint still in place are named as uncovered.
    """
    ledger, _ = log
    with raw(ledger.path) as conn:
        conn.execute("DELETE FROM entries WHERE idx = 9")
        for i in range(10, SIZE):
            conn.execute("UPDATE entries SET idx = ? WHERE idx = ?", (i - 1, i))
    found = kinds(audit(ledger, verifier))
    moved = [(p.size, p.message) for p in found["wrong-checkpoint"]]
    assert [s for s, _ in moved] == [12, 14, 15, 20, SIZE - 1]
    for stored, message in moved:
        assert message.endswith(f"at size {stored + 1}")
    assert [p.index for p in found["uncovered"]] == [5]  # the last checkpoint in place
    assert "entries 5..38 are not covered" in found["uncovered"][0].message


def test_inserted_and_renumbered(
    log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier
) -> None:
    """A forged entry 11; the committed entries 11.. move up one position, the last to a new row."""
    ledger, leaves = log
    with raw(ledger.path) as conn:
        conn.execute(
            "INSERT INTO entries (idx, hashes, leaf) VALUES (?, ?, ?)",
            (SIZE, leaf_hash(leaves[SIZE - 1]), leaves[SIZE - 1]),
        )
        for i in range(SIZE - 1, 11, -1):
            conn.execute("UPDATE entries SET leaf = ? WHERE idx = ?", (leaves[i - 1], i))
        conn.execute("UPDATE entries SET leaf = ? WHERE idx = 11", (b"forged record",))
    found = kinds(audit(ledger, verifier))
    assert [p.index for p in found["inserted"]] == [11]
    assert "entry 11 was inserted" in found["inserted"][0].message
    assert [p.index for p in found["uncovered"]] == [SIZE]
    assert "edited" not in found


def test_rows_inserted_and_renumbered(
    log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier
) -> None:
    ledger, _ = log
    with raw(ledger.path) as conn:
        for i in range(SIZE - 1, 10, -1):
            conn.execute("UPDATE entries SET idx = ? WHERE idx = ?", (i + 1, i))
        forged = b"forged record"
        conn.execute(
            "INSERT INTO entries (idx, hashes, leaf) VALUES (11, ?, ?)", (leaf_hash(forged), forged)
        )
    found = kinds(audit(ledger, verifier))
    moved = [(p.size, p.message) for p in found["wrong-checkpoint"]]
    assert [s for s, _ in moved] == [14, 16, 17, 22, SIZE + 1]
    for stored, message in moved:
        assert message.endswith(f"at size {stored - 1}")
    assert [p.index for p in found["uncovered"]] == [5]


def test_inserted_extra_index(
    log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier
) -> None:
    ledger, _ = log
    with raw(ledger.path) as conn:
        conn.execute(
            "INSERT INTO entries (idx, hashes, leaf) VALUES (?, ?, ?)",
            (SIZE + 3, leaf_hash(b"extra"), b"extra"),
        )
    found = kinds(audit(ledger, verifier))
    assert [p.index for p in found["uncovered"]] == [SIZE + 3]
    assert set(found) == {"uncovered"}


def test_swapped(log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier) -> None:
    ledger, leaves = log
    with raw(ledger.path) as conn:
        conn.execute("UPDATE entries SET leaf = ? WHERE idx = 3", (leaves[17],))
        conn.execute("UPDATE entries SET leaf = ? WHERE idx = 17", (leaves[3],))
    found = kinds(audit(ledger, verifier))
    assert [(p.index, p.other_index) for p in found["swapped"]] == [(3, 17)]
    assert "entries 3 and 17 are swapped" in found["swapped"][0].message
    assert set(found) == {"swapped", "root-mismatch"}


def test_adjacent_swap(log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier) -> None:
    ledger, leaves = log
    with raw(ledger.path) as conn:
        conn.execute("UPDATE entries SET leaf = ? WHERE idx = 20", (leaves[21],))
        conn.execute("UPDATE entries SET leaf = ? WHERE idx = 21", (leaves[20],))
    found = kinds(audit(ledger, verifier))
    assert [(p.index, p.other_index) for p in found["swapped"]] == [(20, 21)]


def test_rows_swapped(log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier) -> None:
    """Whole rows swapped take their hashes along; the hashes then miss the signed roots."""
    ledger, _ = log
    with raw(ledger.path) as conn:
        conn.execute("UPDATE entries SET idx = -1 WHERE idx = 5")
        conn.execute("UPDATE entries SET idx = 5 WHERE idx = 9")
        conn.execute("UPDATE entries SET idx = 9 WHERE idx = -1")
    found = kinds(audit(ledger, verifier))
    # Checkpoint 13 is the first to cover both rows; entries 5..12 hold the change.
    assert [p.size for p in found["subtree-mismatch"]] == [13]
    assert [(p.size, p.index) for p in found["root-mismatch"]] == [(13, 5)]
    assert "diverge within entries 5..12" in found["root-mismatch"][0].message


def test_row_without_checkpoint(
    log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier
) -> None:
    ledger, _ = log
    with raw(ledger.path) as conn:
        for i, forged in ((SIZE, b"sneaked in"), (SIZE + 1, b"and another")):
            conn.execute(
                "INSERT INTO entries (idx, hashes, leaf) VALUES (?, ?, ?)",
                (i, leaf_hash(forged), forged),
            )
    found = kinds(audit(ledger, verifier))
    assert [p.index for p in found["uncovered"]] == [SIZE]
    assert f"entries {SIZE}..{SIZE + 1} are not covered" in found["uncovered"][0].message


def _replace_checkpoint(path: Path, size: int, note: bytes) -> None:
    with raw(path) as conn:
        conn.execute("UPDATE entries SET note = ? WHERE idx = ?", (note, size - 1))


def test_forged_signature(log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier) -> None:
    ledger, _ = log
    note = ledger.checkpoint(15)
    text, sig_line = note.split(b"\n\n")
    prefix, blob = sig_line.rsplit(b" ", 1)
    sig = bytearray(base64.b64decode(blob))
    sig[10] ^= 0x40
    _replace_checkpoint(
        ledger.path, 15, text + b"\n\n" + prefix + b" " + base64.b64encode(sig) + b"\n"
    )
    found = kinds(audit(ledger, verifier))
    assert [p.size for p in found["bad-signature"]] == [15]
    assert set(found) == {"bad-signature"}


def test_unknown_key(log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier) -> None:
    ledger, leaves = log
    rogue = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    root = MemoryTree.from_data(leaves[:SIZE]).root()
    _replace_checkpoint(ledger.path, SIZE, rogue.sign_note(Checkpoint(ORIGIN, SIZE, root).body()))
    found = kinds(audit(ledger, verifier))
    assert [p.size for p in found["unknown-key"]] == [SIZE]
    assert f"{rogue.key_id:08x}" in found["unknown-key"][0].message
    # The entries only the rogue checkpoint covered are now uncovered.
    assert [p.index for p in found["uncovered"]] == [21]


def test_checkpoint_with_wrong_root(
    log: tuple[SQLiteLedger, list[bytes]], signer: NoteSigner, verifier: NoteVerifier
) -> None:
    ledger, _ = log
    # Validly signed by the log's own key, but for a different tree.
    wrong = MemoryTree([leaf_hash(b"%d" % i) for i in range(16)]).root()
    _replace_checkpoint(ledger.path, 16, signer.sign_note(Checkpoint(ORIGIN, 16, wrong).body()))
    found = kinds(audit(ledger, verifier))
    assert [p.size for p in found["root-mismatch"]] == [16]
    assert "checkpoint 16: its root does not match the stored entries" in (
        found["root-mismatch"][0].message
    )
    assert found["subtree-mismatch"][0].size == 16


def test_tampered_subtree(log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier) -> None:
    ledger, _ = log
    with raw(ledger.path) as conn:
        # Subtree (1, 9) is bytes 32..63 of row 19, the leaf that completed it.
        conn.execute(
            "UPDATE entries SET hashes = substr(hashes, 1, 32) || ? || substr(hashes, 65)"
            " WHERE idx = 19",
            (bytes(32),),
        )
    found = kinds(audit(ledger, verifier))
    assert any("(1, 9)" in p.message for p in found["subtree-mismatch"])


def test_leaf_edited_to_text(log: tuple[SQLiteLedger, list[bytes]], verifier: NoteVerifier) -> None:
    ledger, _ = log
    with raw(ledger.path) as conn:
        conn.execute("UPDATE entries SET leaf = 'now a string' WHERE idx = 30")
    found = kinds(audit(ledger, verifier))
    assert [p.index for p in found["edited"]] == [30]


def test_memory_ledger_audit(memory_factory: LedgerFactory, verifier: NoteVerifier) -> None:
    with memory_factory() as ledger:
        fill(ledger, BATCHES)
        assert audit_log(ledger, [verifier]).ok
        other = NoteSigner.generate("stranger").verifier()
        found = kinds(audit_log(ledger, [other]))
        assert [p.size for p in found["unknown-key"]] == [1, 4, 5, 13, 15, 16, 21, 40]
