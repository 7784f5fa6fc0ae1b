"""`provgate log witness`: a checkpoint kept elsewhere catches a rewritten or shrunk log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from .conftest import Cli


@pytest.fixture
def logged(cli: Cli, data: Path) -> Cli:
    assert cli("init").code == 0
    for name in ("reviews.csv", "docs"):
        got = cli("ingest", str(data / name), "--source", f"file://{name}", "--license", "MIT")
        assert got.code == 0, got.err
    return cli


def _ingest(cli: Cli, path: Path) -> None:
    got = cli("ingest", str(path), "--source", "file://more", "--license", "MIT")
    assert got.code == 0, got.err


def test_created_advanced_unchanged(logged: Cli, data: Path, tmp_path: Path) -> None:
    kept = tmp_path / "elsewhere" / "checkpoint"
    kept.parent.mkdir()
    first = logged("log", "witness", str(kept), "--json")
    assert first.code == 0, first.err
    assert first.json()["status"] == "created"
    assert kept.read_bytes() == logged("log", "checkpoint").out.encode()
    assert logged("log", "witness", str(kept), "--json").json()["status"] == "unchanged"
    _ingest(logged, data / "docs" / "faq.md")
    doc = logged("log", "witness", str(kept), "--json").json()
    assert (doc["status"], doc["old_size"], doc["new_size"]) == ("advanced", 2, 3)
    assert kept.read_bytes() == logged("log", "checkpoint").out.encode()


def _truncate(cli: Cli, keep: int) -> None:
    """Delete entries (and the checkpoints they carry) from index ``keep`` on."""
    with sqlite3.connect(cli.home / "ledger.sqlite") as db:
        db.execute("DELETE FROM entries WHERE idx >= ?", (keep,))


def test_rewritten_history_is_caught_and_the_evidence_kept(
    logged: Cli, data: Path, tmp_path: Path
) -> None:
    kept = tmp_path / "checkpoint"
    assert logged("log", "witness", str(kept)).code == 0
    evidence = kept.read_bytes()
    # Someone with the signing key drops entry 1 and appends others: the log
    # verifies on its own (its checkpoints are all validly signed) ...
    _truncate(logged, 1)
    _ingest(logged, data / "docs" / "faq.md")
    _ingest(logged, data / "docs" / "policy.md")
    assert logged("verify").code == 0
    # ... but not against the witnessed checkpoint.
    got = logged("log", "witness", str(kept))
    assert got.code == 1
    assert "rewritten" in got.err
    assert "size 3 does not extend the tree of size 2" in got.err
    assert kept.read_bytes() == evidence


def test_shrunk_log_is_caught(logged: Cli, tmp_path: Path) -> None:
    kept = tmp_path / "checkpoint"
    assert logged("log", "witness", str(kept)).code == 0
    _truncate(logged, 1)
    got = logged("log", "witness", str(kept))
    assert got.code == 1
    assert "shrank" in got.err
    assert "witnessed size 2" in got.err


def test_same_size_different_root_is_caught(logged: Cli, data: Path, tmp_path: Path) -> None:
    kept = tmp_path / "checkpoint"
    assert logged("log", "witness", str(kept)).code == 0
    _truncate(logged, 1)
    _ingest(logged, data / "docs" / "faq.md")
    got = logged("log", "witness", str(kept))
    assert got.code == 1
    assert "at size 2 its root is" in got.err


@pytest.mark.parametrize(
    "content", [b"", b"not a note\n", b"x" * 70_000], ids=["empty", "garbage", "huge"]
)
def test_unusable_witness_file(logged: Cli, tmp_path: Path, content: bytes) -> None:
    kept = tmp_path / "checkpoint"
    kept.write_bytes(content)
    got = logged("log", "witness", str(kept))
    assert got.code == 1
    assert str(kept) in got.err
    assert kept.read_bytes() == content


def test_forged_witness_file(logged: Cli, tmp_path: Path) -> None:
    kept = tmp_path / "checkpoint"
    assert logged("log", "witness", str(kept)).code == 0
    kept.write_bytes(kept.read_bytes().replace(b"\n2\n", b"\n1\n", 1))
    got = logged("log", "witness", str(kept))
    assert got.code == 1
    assert "validly signed checkpoint" in got.err


def test_empty_log_and_directory(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").code == 0
    got = cli("log", "witness", str(tmp_path / "checkpoint"))
    assert got.code == 2
    assert "empty" in got.err
    assert not (tmp_path / "checkpoint").exists()


def test_reading_needs_no_private_key(logged: Cli, tmp_path: Path) -> None:
    """verify, trace and witness read the ledger; none of them loads the signing key."""
    keys = logged.home / "keys"
    for key in keys.iterdir():
        key.rename(tmp_path / key.name)  # the key is elsewhere (e.g. only in the writer's vault)
    assert logged("verify").code == 0
    assert logged("trace", "0", "--down").code == 0
    assert logged("log", "witness", str(tmp_path / "checkpoint")).code == 0
    got = logged("ingest", str(tmp_path / "checkpoint"), "--source", "x:y", "--license", "MIT")
    assert got.code != 0  # writing still needs it, and says so
    assert "key" in got.err
