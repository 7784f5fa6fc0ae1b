"""prov_core.nodes: what adapters share — node identity, attestations read back, node checks."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prov_core.digest import digest_bytes, manifest_bytes
from prov_core.errors import InputError, NotFoundError
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.nodes import attestation_from_dict, ensure_branch, outputs_digest, verify_node
from prov_core.snapshot_record import SnapshotResult, commit_snapshot
from prov_core.step import Artifact, Attestation, record_step
from tests.conftest import demo_home, rename_step


@dataclass
class Pipe:
    home: Any
    ingest: Attestation
    step: Attestation
    out: Path
    snap: SnapshotResult
    snap_dir: Path


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[Pipe]:
    with demo_home(tmp_path) as (home, recorder, store, index, data):
        ingest = ingest_path(
            recorder,
            data / "reviews.csv",
            IngestRequest(source="https://example.org/reviews", license="CC0-1.0"),
            index=index,
        ).attestation
        out_dir = tmp_path / "out"
        out_dir.mkdir()
        out = out_dir / "clean.csv"
        out.write_bytes((data / "reviews.csv").read_bytes().lower())
        step = record_step(recorder, "clean", inputs=[ingest], outputs=[Artifact.from_path(out)])
        snap = commit_snapshot(recorder, store, "demo", "main", out_dir, index=index)
        yield Pipe(home, ingest, step, out, snap, out_dir)


def _tamper_entry(home: Any, log_index: int) -> None:
    """Change one field of a record's payload in the ledger's SQLite row."""
    rename_step(home.ledger_path, log_index, "forged")


def test_attestation_round_trips_and_is_parsed_strictly(pipe: Pipe) -> None:
    assert attestation_from_dict(pipe.step.to_dict()) == pipe.step
    bad = pipe.step.to_dict()
    for key, value in [
        ("log_index", -1),
        ("log_index", True),
        ("envelope_sha256", "ABC"),
        ("predicate_type", 3),
    ]:
        with pytest.raises(InputError, match="not an attestation"):
            attestation_from_dict({**bad, key: value})
    with pytest.raises(InputError, match="not an attestation"):
        attestation_from_dict({"log_index": 1})
    with pytest.raises(InputError, match="not an attestation"):
        attestation_from_dict({**bad, "subjects": [{"name": "x", "digest": {"sha256": "zz"}}]})


def test_outputs_digest_is_the_content_digest_or_the_manifest_of_several() -> None:
    a = Artifact.from_bytes("a.csv", b"alpha")
    b = Artifact.from_bytes("b.csv", b"beta")
    assert outputs_digest([a]) == digest_bytes(b"alpha")
    both = digest_bytes(manifest_bytes([("a.csv", a.blake3 or ""), ("b.csv", b.blake3 or "")]))
    assert outputs_digest([a, b]) == outputs_digest([b, a]) == both
    renamed = Artifact.from_bytes("c.csv", b"beta")
    assert outputs_digest([a, renamed]) != both
    with pytest.raises(InputError, match="no outputs"):
        outputs_digest([])
    with pytest.raises(InputError, match="unique"):
        outputs_digest([a, a])


def test_a_recorded_node_verifies_with_its_outputs_and_chain(pipe: Pipe) -> None:
    report = verify_node(pipe.step, home=pipe.home, outputs={"clean.csv": pipe.out})
    assert report.ok, report.problems
    assert report.checks == {
        "link": "ok",
        "signature": "ok",
        "trust": "ok",
        "inclusion": "ok",
        "chain": "ok",
        "content": "ok",
    }
    assert report.records_checked == 2  # the step and its ingest
    snap = verify_node(
        pipe.snap.attestation,
        home=pipe.home,
        snapshot=f"provgate://demo/{pipe.snap.commit_id}",
    )
    assert snap.ok, snap.problems
    assert verify_node(pipe.ingest, home=pipe.home).checks["content"] == "unchecked"


def test_a_changed_byte_of_a_stored_output_fails_content(pipe: Pipe) -> None:
    data = bytearray(pipe.out.read_bytes())
    data[0] ^= 1
    pipe.out.write_bytes(bytes(data))
    report = verify_node(pipe.step, home=pipe.home, outputs={"clean.csv": pipe.out})
    assert not report.ok
    assert report.checks["content"] == "failed"
    assert report.checks["signature"] == "ok"
    assert [p.check for p in report.problems] == ["content"]
    assert "the stored bytes changed" in str(report.problems[0])
    pipe.out.unlink()
    missing = verify_node(pipe.step, home=pipe.home, outputs={"clean.csv": pipe.out})
    assert "cannot be read" in str(missing.problems[0])


def test_a_changed_ledger_entry_fails_link_and_signature(pipe: Pipe) -> None:
    _tamper_entry(pipe.home, pipe.step.log_index)
    report = verify_node(pipe.step, home=pipe.home, outputs={"clean.csv": pipe.out})
    assert not report.ok
    assert report.checks["link"] == "failed"
    assert report.checks["signature"] == "failed"
    assert report.checks["inclusion"] == "failed"
    assert {p.check for p in report.problems} >= {"link", "signature", "inclusion"}
    assert all(p.log_index == pipe.step.log_index for p in report.problems)


def test_a_changed_upstream_record_fails_the_chain(pipe: Pipe) -> None:
    db = sqlite3.connect(pipe.home.ledger_path, isolation_level=None)
    (leaf,) = db.execute(
        "SELECT leaf FROM entries WHERE idx = ?", (pipe.ingest.log_index,)
    ).fetchone()
    envelope = json.loads(leaf)
    envelope["signatures"][0]["sig"] = base64.b64encode(b"\0" * 64).decode()
    db.execute(
        "UPDATE entries SET leaf = ? WHERE idx = ?",
        (json.dumps(envelope).encode(), pipe.ingest.log_index),
    )
    db.close()
    report = verify_node(pipe.step, home=pipe.home, outputs={"clean.csv": pipe.out})
    assert report.checks["link"] == "ok"  # the step's own entry is intact
    assert report.checks["chain"] == "failed"
    assert any(p.log_index == pipe.ingest.log_index for p in report.problems)


def test_a_changed_snapshot_object_fails_content(pipe: Pipe) -> None:
    b3 = pipe.snap.objects[0].blake3
    blob = pipe.home.store_path / "objects" / b3[:2] / b3[2:]  # the store's layout
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[0] ^= 1
    blob.write_bytes(bytes(data))
    report = verify_node(
        pipe.snap.attestation, home=pipe.home, snapshot=f"provgate://demo/{pipe.snap.commit_id}"
    )
    assert report.checks["content"] == "failed"
    assert "changed" in str(report.problems[0])


def test_ensure_branch_creates_embedded_main_only(tmp_path: Path) -> None:
    with demo_home(tmp_path) as (_home, _recorder, store, _index, _data):
        assert ensure_branch(store, "fresh", "main") is True
        assert ensure_branch(store, "fresh", "main") is False
        with pytest.raises(NotFoundError):
            ensure_branch(store, "other", "dev")
