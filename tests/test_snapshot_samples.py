"""Samples proven in or out of a snapshot, against the roots signed records hold."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from prov_core._samples import SampleSet, check_sample_proof, sample_proof_from_json
from prov_core.content_index import ContentIndex
from prov_core.digest import digest_path, read_table, sample_set_of_table
from prov_core.errors import InputError, IntegrityError, NotFoundError, VerificationError
from prov_core.home import Home
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.records import decode_entry
from prov_core.sample_store import SAMPLES_DIR, SampleStore
from prov_core.snapshot_record import commit_snapshot
from prov_core.snapshot_samples import SnapshotSampleAnswer, file_sample_id, prove_in_snapshot
from prov_core.snapshots.local import LocalStore
from prov_core.step import Artifact, Recorder, record_step
from prov_core.trust import TrustStore

from .conftest import demo_home


@dataclass
class Env:
    home: Home
    recorder: Recorder
    store: LocalStore
    index: ContentIndex
    data: Path

    @property
    def samples(self) -> SampleStore:
        return SampleStore(self.home.path / SAMPLES_DIR)

    def ingest(self, path: Path) -> int:
        request = IngestRequest(source=f"file://{path.name}", license="CC-BY-4.0")
        result = ingest_path(
            self.recorder, path, request, index=self.index, samples_store=self.samples
        )
        return result.attestation.log_index

    def prove(
        self, sample_id: str, commit: str, trust: TrustStore | None = None
    ) -> SnapshotSampleAnswer:
        return prove_in_snapshot(
            sample_id,
            self.store,
            "demo",
            commit,
            ledger=self.recorder.ledger,
            index=self.index,
            trust=trust or self.home.trust(),
            samples=self.samples,
        )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with demo_home(tmp_path) as parts:
        yield Env(*parts)


def _row_ids(path: Path) -> SampleSet:
    return sample_set_of_table(read_table(path))


def _signed_roots(env: Env, answer: SnapshotSampleAnswer) -> None:
    """Each proof checks against the root its signed record holds (as an outsider would)."""
    for e in answer.evidence:
        _, statement = decode_entry(env.recorder.ledger.entry(e.record))
        summary = statement["predicate"]["samples"]
        proof = sample_proof_from_json(e.to_dict()["proof"])
        assert check_sample_proof(proof, summary["root"], summary["count"])


def test_file_and_row_are_present_with_proofs(env: Env) -> None:
    env.ingest(env.data / "docs")
    reviews = env.ingest(env.data / "reviews.csv")
    snap = commit_snapshot(env.recorder, env.store, "demo", "main", env.data, index=env.index)
    faq = next(f for f in digest_path(env.data / "docs").files if f.path == "faq.md")

    by_file = env.prove(file_sample_id(faq.blake3), snap.commit_id)
    assert by_file.verdict == "present"
    assert [(e.scope, e.member) for e in by_file.evidence] == [
        ("snapshot", True),
        ("object reviews.csv", False),
    ]
    assert by_file.evidence[0].record == snap.log_index
    _signed_roots(env, by_file)

    row = _row_ids(env.data / "reviews.csv").id_at(3).hex()
    by_row = env.prove(row, snap.commit_id)
    assert by_row.verdict == "present"
    assert [(e.scope, e.record, e.member) for e in by_row.evidence] == [
        ("snapshot", snap.log_index, False),
        ("object reviews.csv", reviews, True),
    ]
    assert by_row.unprovable == []
    _signed_roots(env, by_row)
    assert by_row.to_dict()["verdict"] == "present"


def test_absent_sample_is_proven_absent(env: Env) -> None:
    env.ingest(env.data / "docs")
    env.ingest(env.data / "reviews.csv")
    snap = commit_snapshot(env.recorder, env.store, "demo", "main", env.data, index=env.index)
    answer = env.prove("ab" * 32, snap.commit_id)
    assert answer.verdict == "absent"
    assert [e.member for e in answer.evidence] == [False, False]
    _signed_roots(env, answer)


def test_missing_row_set_makes_absence_unknown(env: Env) -> None:
    env.ingest(env.data / "reviews.csv")
    snap = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "reviews.csv", index=env.index
    )
    for f in (env.home.path / SAMPLES_DIR).iterdir():
        f.unlink()
    answer = env.prove("ab" * 32, snap.commit_id)
    assert answer.verdict == "unknown"
    assert len(answer.unprovable) == 1
    assert answer.unprovable[0].startswith("reviews.csv: no row sample set")
    assert "not stored" in answer.unprovable[0]


def test_edited_row_set_is_refused_not_used(env: Env) -> None:
    env.ingest(env.data / "reviews.csv")
    snap = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "reviews.csv", index=env.index
    )
    (stored,) = (env.home.path / SAMPLES_DIR).iterdir()
    blob = bytearray(stored.read_bytes())
    blob[-1] ^= 1  # one id changed: a forged "absent" must not come out of it
    os.chmod(stored, 0o644)
    stored.write_bytes(bytes(blob))
    row = _row_ids(env.data / "reviews.csv").ids()[-1].hex()
    answer = env.prove(row, snap.commit_id)
    assert answer.verdict == "unknown"
    assert "refused" in answer.unprovable[0]
    assert "signed root" in answer.unprovable[0]


def test_table_written_by_a_step_cannot_be_proven_absent(env: Env, tmp_path: Path) -> None:
    env.ingest(env.data / "reviews.csv")
    cleaned = tmp_path / "out" / "clean.csv"
    cleaned.parent.mkdir()
    cleaned.write_text("id,text\n1,clean\n")
    record_step(
        env.recorder,
        name="clean",
        inputs=[Artifact.from_path(env.data / "reviews.csv")],
        outputs=[Artifact.from_path(cleaned)],
    )
    snap = commit_snapshot(env.recorder, env.store, "demo", "main", cleaned.parent, index=env.index)
    answer = env.prove("ab" * 32, snap.commit_id)
    assert answer.verdict == "unknown"
    assert "transform step" in answer.unprovable[0]


def test_untrusted_snapshot_record_gives_no_proof(env: Env, tmp_path: Path) -> None:
    snap = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", index=env.index
    )
    with pytest.raises(VerificationError):
        env.prove("ab" * 32, snap.commit_id, trust=TrustStore())


@pytest.mark.parametrize("bad", ["", "xyz", "ab" * 31, "AB" * 33])
def test_malformed_sample_id(env: Env, bad: str) -> None:
    snap = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", index=env.index
    )
    with pytest.raises(InputError):
        env.prove(bad, snap.commit_id)


def test_sample_store_round_trip_and_refusals(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples")
    rows = SampleSet.of_files(["11" * 32, "22" * 32, "33" * 32])
    first = store.put(rows)
    assert store.put(rows) == first  # stored once
    got = store.get(rows.root.hex(), rows.leaf_encoding, 3)
    assert got.sorted_ids() == rows.sorted_ids()
    assert store.has(rows.root.hex(), rows.leaf_encoding)
    with pytest.raises(IntegrityError, match="not the 2 ids"):
        store.get(rows.root.hex(), rows.leaf_encoding, 2)
    with pytest.raises(NotFoundError):
        store.get("00" * 32, rows.leaf_encoding)
    with pytest.raises(InputError):
        store.get("../x", rows.leaf_encoding)
    with pytest.raises(InputError):
        store.get(rows.root.hex(), "../../etc")
