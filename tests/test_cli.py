"""The CLI contract: outputs, exit codes, and what each command appends."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import subprocess
import sys
from pathlib import Path

import blake3
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from prov_core.ledger.merkle import check_consistency, check_inclusion, leaf_hash
from prov_core.signing import pae

from .conftest import Cli


def _size(cli: Cli) -> int:
    return int(cli("log", "checkpoint").out.splitlines()[1])


def test_init_is_idempotent_and_appends_nothing(cli: Cli) -> None:
    first = cli("init")
    assert first.code == 0, first.err
    keys = cli("keys", "list", "--json").json()
    second = cli("init")
    assert second.code == 0
    assert "already initialised" in second.err
    assert cli("keys", "list", "--json").json() == keys
    assert cli("log", "checkpoint").code != 0  # no entry, hence no checkpoint yet
    key_files = list((cli.home / "keys").iterdir())
    assert len(key_files) == 1
    assert stat.S_IMODE(key_files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((cli.home / "keys").stat().st_mode) == 0o700


def test_ingest_rows_json_contract(cli: Cli, data: Path) -> None:
    cli("init")
    result = cli(
        "ingest", str(data / "reviews.csv"), "--source", "https://example.org/r",
        "--license", "CC0-1.0", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    doc = result.json()
    assert set(doc) == {"log_index", "envelope_sha256", "root", "samples"}
    assert doc["log_index"] == 0
    assert doc["samples"] == 200  # rows of the CSV
    assert len(bytes.fromhex(doc["root"])) == 32
    again = cli(
        "ingest", str(data / "docs"), "--source", "file://docs", "--license", "MIT", "--json"
    ).json()
    assert again["log_index"] == 1  # exactly one entry per ingest
    assert again["samples"] == 3  # files
    assert _size(cli) == 2


def test_show_lets_anyone_recompute_the_leaf(populated: Cli) -> None:
    doc = populated("show", "1", "--json").json()
    assert set(doc) == {"envelope", "statement"}
    leaf = rfc8785.dumps(doc["envelope"])
    ingest = populated("ingest", "--help")  # any command: keep the home warm
    assert ingest.code == 0
    proof = populated("log", "prove", "1", "--json").json()
    assert proof["leaf_hash"] == leaf_hash(leaf).hex()
    statement = doc["statement"]
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://provgate.dev/ingest/v1"
    assert set(statement["subject"][0]["digest"]) == {"sha256"}
    payload = base64.b64decode(doc["envelope"]["payload"])
    assert json.loads(payload) == statement
    # The DSSE signature verifies with the key `keys list` shows under the same keyid.
    keys = {k["keyid"]: k["public_key"] for k in populated("keys", "list", "--json").json()}
    sig = doc["envelope"]["signatures"][0]
    public = load_pem_public_key(keys[sig["keyid"]].encode())
    assert isinstance(public, Ed25519PublicKey)
    public.verify(base64.b64decode(sig["sig"]), pae(doc["envelope"]["payloadType"], payload))


def test_envelope_sha256_is_sha256_of_the_leaf(cli: Cli, data: Path) -> None:
    cli("init")
    out = cli(
        "ingest", str(data / "docs"), "--source", "file://d", "--license", "MIT", "--json"
    ).json()
    envelope = cli("show", str(out["log_index"]), "--json").json()["envelope"]
    assert hashlib.sha256(rfc8785.dumps(envelope)).hexdigest() == out["envelope_sha256"]


def test_prove_and_consistency_verify_independently(populated: Cli) -> None:
    for size in (1, 2, 3):
        for index in range(size):
            p = populated("log", "prove", str(index), "--size", str(size), "--json").json()
            assert set(p) == {"leaf_index", "tree_size", "leaf_hash", "root_hash", "audit_path"}
            check_inclusion(
                p["leaf_index"],
                p["tree_size"],
                bytes.fromhex(p["leaf_hash"]),
                [bytes.fromhex(h) for h in p["audit_path"]],
                bytes.fromhex(p["root_hash"]),
            )
    c = populated("log", "consistency", "1", "3", "--json").json()
    assert set(c) == {"old_size", "new_size", "old_root", "new_root", "path"}
    check_consistency(
        1, 3, bytes.fromhex(c["old_root"]), bytes.fromhex(c["new_root"]),
        [bytes.fromhex(h) for h in c["path"]],
    )  # fmt: skip
    latest = populated("log", "checkpoint").out
    assert base64.b64decode(latest.splitlines()[2]).hex() == c["new_root"]


def test_checkpoint_is_a_signed_note(populated: Cli) -> None:
    note = populated("log", "checkpoint").out
    body, _, sigs = note.partition("\n\n")
    origin, size, root = body.splitlines()[:3]
    assert origin.startswith("provgate.local/")
    assert size == "3"
    assert len(base64.b64decode(root)) == 32
    assert sigs.startswith("— " + origin + " ")


def test_verify_ok_json(populated: Cli) -> None:
    result = populated("verify", "--json")
    assert result.code == 0, result.out
    doc = result.json()
    assert doc["ok"] is True
    assert doc["entries"] == 3
    assert doc["problems"] == []


def test_digest_matches_b3sum_format(cli: Cli, data: Path) -> None:
    target = data / "reviews.csv"
    result = cli("digest", str(target))
    assert result.code == 0
    expected = blake3.blake3(target.read_bytes()).hexdigest()
    assert result.out == f"{expected}  {target}\n"
    doc = cli("digest", str(data / "docs"), "--json").json()
    assert set(doc) == {"blake3", "sha256_subject", "files", "bytes"}
    assert doc["files"] == 3
    assert doc["bytes"] == sum(p.stat().st_size for p in (data / "docs").iterdir())


def test_digest_records_nothing(cli: Cli, data: Path) -> None:
    cli("init")
    cli("digest", str(data / "reviews.csv"))
    assert cli("verify", "--json").json()["entries"] == 0


def test_keys_list_json_shape(cli: Cli) -> None:
    cli("init")
    keys = cli("keys", "list", "--json").json()
    assert len(keys) == 1
    key = keys[0]
    assert set(key) == {"keyid", "public_key", "status", "note_name"}
    assert key["status"] == "active"
    assert key["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in json.dumps(keys)


def test_rotate_keeps_old_records_valid(populated: Cli) -> None:
    old = populated("keys", "list", "--json").json()[0]["keyid"]
    assert populated("keys", "rotate").code == 0
    statuses = {k["keyid"]: k["status"] for k in populated("keys", "list", "--json").json()}
    assert statuses[old] == "retired"
    assert sorted(statuses.values()) == ["active", "retired"]
    new_entry = populated(
        "ingest", str(populated.home.parent / "data" / "docs"), "--source", "x:y",
        "--license", "MIT", "--json",
    ).json()  # fmt: skip
    signer = populated("show", str(new_entry["log_index"]), "--json").json()
    new = next(k for k, s in statuses.items() if s == "active")
    assert signer["envelope"]["signatures"][0]["keyid"] == new
    result = populated("verify", "--json")
    assert result.code == 0, result.out


def test_secrets_never_printed(populated: Cli) -> None:
    key_file = next((populated.home / "keys").iterdir())
    secret_lines = [ln for ln in key_file.read_text().splitlines() if not ln.startswith("-----")]
    outputs = []
    for args in (("keys", "list"), ("keys", "list", "--json"), ("show", "0", "--json"),
                 ("verify",), ("log", "checkpoint")):  # fmt: skip
        r = populated(*args)
        outputs.append(r.out + r.err)
    for secret in secret_lines:
        assert all(secret not in o for o in outputs)


def test_console_script_entry_point(tmp_path: Path) -> None:
    """The installed command runs as a whole process with the documented exit codes."""
    exe = Path(sys.executable).with_name("provgate")
    assert exe.exists()
    missing = subprocess.run([exe, "digest", str(tmp_path / "nope")], capture_output=True)
    assert missing.returncode == 2
    assert b"nope" in missing.stderr
    usage = subprocess.run([exe, "frobnicate"], capture_output=True)
    assert usage.returncode == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("show", "99"), "99"),
        (("log", "prove", "5"), "5"),
        (("log", "prove", "0", "--size", "9"), "9"),
        (("log", "consistency", "3", "2"), "3"),
    ],
)
def test_out_of_range_is_usage_error(populated: Cli, args: tuple[str, ...], needle: str) -> None:
    result = populated(*args)
    assert result.code == 2
    assert result.out == ""
    assert needle in result.err
    assert "size 3" in result.err or "3 entries" in result.err  # says what exists
