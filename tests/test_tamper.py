"""The tamper suite: `provgate verify` exits 1 and names every bad entry.

Each test edits the real SQLite ledger (or the trust store) behind provgate's
back, the way an attacker with disk access would, then runs the CLI.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest

from prov_core.home import open_home
from prov_core.signing import Ed25519Signer, sign_envelope
from prov_core.statement import Statement, Subject

from .conftest import Cli


def _db(cli: Cli) -> sqlite3.Connection:
    return sqlite3.connect(cli.home / "ledger.sqlite", isolation_level=None)


def _leaf(cli: Cli, index: int) -> bytes:
    with _db(cli) as db:
        return bytes(db.execute("SELECT leaf FROM entries WHERE idx = ?", (index,)).fetchone()[0])


def _set_leaf(cli: Cli, index: int, leaf: bytes) -> None:
    db = _db(cli)
    db.execute("UPDATE entries SET leaf = ? WHERE idx = ?", (leaf, index))
    db.close()


def _verify(cli: Cli) -> list[dict[str, object]]:
    result = cli("verify", "--json")
    assert result.code == 1, result.out
    doc = result.json()
    assert doc["ok"] is False
    human = cli("verify")
    assert human.code == 1
    for problem in doc["problems"]:
        assert problem["message"] in human.err.replace("\n", "")  # humans see the same
    return list(doc["problems"])


def _named(problems: list[dict[str, object]]) -> set[object]:
    return {p[k] for p in problems for k in ("index", "other_index") if p[k] is not None}


def test_untouched_ledger_verifies(populated: Cli) -> None:
    assert populated("verify").code == 0


def test_flipped_byte_in_envelope(populated: Cli) -> None:
    leaf = bytearray(_leaf(populated, 1))
    at = leaf.index(b'"payload":"') + 40
    leaf[at] = ord("A") if leaf[at] != ord("A") else ord("B")
    _set_leaf(populated, 1, bytes(leaf))
    problems = _verify(populated)
    assert _named(problems) == {1}
    assert {p["kind"] for p in problems} >= {"bad-signature", "edited"}


def test_deleted_entry(populated: Cli) -> None:
    db = _db(populated)
    db.execute("DELETE FROM entries WHERE idx = 1")
    db.close()
    problems = _verify(populated)
    assert 1 in _named(problems)
    assert any("1" in str(p["message"]) and p["kind"] in {"missing", "deleted"} for p in problems)


def test_swapped_entries(populated: Cli) -> None:
    a, b = _leaf(populated, 0), _leaf(populated, 2)
    _set_leaf(populated, 0, b)
    _set_leaf(populated, 2, a)
    problems = _verify(populated)
    assert _named(problems) >= {0, 2}
    assert 1 not in _named(problems)


def test_replaced_signature(populated: Cli) -> None:
    donor = json.loads(_leaf(populated, 0))["signatures"][0]["sig"]
    envelope = json.loads(_leaf(populated, 1))
    envelope["signatures"][0]["sig"] = donor
    from prov_core.canonical import canonical_json

    _set_leaf(populated, 1, canonical_json(envelope))
    problems = _verify(populated)
    assert 1 in _named(problems)
    assert any(p["index"] == 1 and p["kind"] == "bad-signature" for p in problems)


def _append_signed_by(cli: Cli, signer: Ed25519Signer) -> int:
    """Append a well-formed record signed by ``signer`` through the real ledger."""
    home = open_home(cli.home)
    statement = Statement(
        subjects=[Subject(name="forged.csv", sha256="ab" * 32)],
        predicate_type="https://slsa.dev/provenance/v1",
        predicate={
            "buildDefinition": {"buildType": "x:forged", "externalParameters": {}},
            "runDetails": {"builder": {"id": "x:forger"}},
        },
    )
    leaf = sign_envelope(statement.canonical_bytes(), signer).canonical_bytes()
    with home.open_ledger() as ledger:
        return ledger.append([leaf]).first_index


def test_signed_with_untrusted_key(populated: Cli) -> None:
    intruder = Ed25519Signer.generate()
    index = _append_signed_by(populated, intruder)
    problems = _verify(populated)
    assert _named(problems) == {index}
    (problem,) = problems
    assert problem["kind"] == "untrusted-key"
    assert intruder.keyid in str(problem["message"])


def test_revoked_key_fails_every_record_it_signed(populated: Cli) -> None:
    keyid = populated("keys", "list", "--json").json()[0]["keyid"]
    result = populated("keys", "revoke", keyid, "--reason", "laptop stolen", "--json")
    assert result.code == 0, result.err
    event = result.json()
    assert event["rotated"]["old_keyid"] == keyid  # the active key was rotated first
    problems = _verify(populated)
    # Entries 0-2 (ingests) and 3 (the rotation event) were signed by the revoked key.
    assert _named(problems) == {0, 1, 2, 3}
    for p in problems:  # the entries, and the checkpoints that key signed
        assert p["kind"] == "revoked-key", p
        assert "laptop stolen" in str(p["message"])
    assert {p["checkpoint_size"] for p in problems} == {None, 1, 2, 3, 4}
    statuses = {k["keyid"]: k["status"] for k in populated("keys", "list", "--json").json()}
    assert statuses[keyid] == "revoked"


def test_retired_key_used_after_rotation(populated: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    old_pem = next((populated.home / "keys").iterdir()).read_bytes()
    assert populated("keys", "rotate").code == 0
    old = Ed25519Signer.from_pem(old_pem)
    index = _append_signed_by(populated, old)
    problems = _verify(populated)
    assert _named(problems) == {index}
    assert problems[0]["kind"] == "retired-key"


def test_unrevoked_in_trust_store_is_caught(populated: Cli) -> None:
    """Editing trust.json to un-revoke a key contradicts the ledger's revocation record."""
    keyid = populated("keys", "list", "--json").json()[0]["keyid"]
    populated("keys", "revoke", keyid, "--reason", "compromised")
    trust_path = populated.home / "trust.json"
    trust = json.loads(trust_path.read_text())
    trust["keys"][keyid]["status"] = "retired"
    trust_path.write_text(json.dumps(trust))
    problems = _verify(populated)
    assert any(p["kind"] == "trust-mismatch" and keyid in str(p["message"]) for p in problems)


def test_forged_checkpoint(populated: Cli) -> None:
    db = _db(populated)
    size, note = db.execute(
        "SELECT idx + 1, note FROM entries WHERE note IS NOT NULL ORDER BY idx DESC"
    ).fetchone()
    lines = bytes(note).decode().split("\n")
    root = bytearray(base64.b64decode(lines[2]))
    root[0] ^= 1
    lines[2] = base64.b64encode(bytes(root)).decode()
    db.execute("UPDATE entries SET note = ? WHERE idx = ?", ("\n".join(lines).encode(), size - 1))
    db.close()
    problems = _verify(populated)
    assert any(p["checkpoint_size"] == size for p in problems)


def test_rewritten_history_needs_the_old_checkpoint(populated: Cli, tmp_path: Path) -> None:
    """Dropping the newest entries with their checkpoints leaves a log that verifies.

    This is the documented limit: only a checkpoint kept elsewhere catches it.
    """
    kept = populated("log", "checkpoint").out
    db = _db(populated)
    db.execute("DELETE FROM entries WHERE idx = 2")  # the entry, its hashes, checkpoint 3
    db.close()
    assert populated("verify").code == 0
    assert populated("log", "checkpoint").out != kept
    assert kept.splitlines()[1] == "3"
