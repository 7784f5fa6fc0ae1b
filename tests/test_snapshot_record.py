"""Snapshot records on the real LocalStore and the real ledger of a home (SQLite, PostgreSQL)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from prov_core.content_index import ContentIndex, RecordRef
from prov_core.digest import digest_bytes, digest_path, manifest_bytes
from prov_core.errors import ConfigError, InputError, NotFoundError
from prov_core.home import Home
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.records import decode_entry
from prov_core.snapshot_record import (
    METADATA_LOG_INDEX,
    METADATA_LOG_ORIGIN,
    METADATA_MANIFEST,
    SnapshotVerifyReport,
    commit_snapshot,
    find_snapshot_record,
    normalize_prefix,
    verify_snapshot,
)
from prov_core.snapshots.lakefs import LakeFSStore
from prov_core.snapshots.local import LocalStore
from prov_core.statement import DSSE_MEDIA_TYPE, INGEST_V1, SLSA_PROVENANCE_V1, SNAPSHOT_V1
from prov_core.step import Artifact, Recorder, record_step
from prov_core.trust import TrustStore
from prov_core.verify import verify_home

from .conftest import demo_home
from .snapshots.lakefs_server import FakeLakeFS, required_spec, served_store
from .test_statement import validator

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI-K7MDENG-provgate-snapshot-secret"


@dataclass
class Env:
    home: Home
    recorder: Recorder
    store: LocalStore
    index: ContentIndex
    data: Path

    def ingest(self, path: Path) -> int:
        request = IngestRequest(source=f"file://{path.name}", license="CC-BY-4.0")
        result = ingest_path(self.recorder, path, request, index=self.index)
        return result.attestation.log_index

    def verify(self, ref: str, repo: str = "demo") -> SnapshotVerifyReport:
        return verify_snapshot(
            self.store,
            repo,
            ref,
            ledger=self.recorder.ledger,
            trust=self.home.trust(),
            index=self.index,
        )


@pytest.fixture
def env(tmp_path: Path, home_db: str) -> Iterator[Env]:
    with demo_home(tmp_path) as parts:
        yield Env(*parts)


def _blob(store: LocalStore, digest: str) -> Path:
    return store.root / "objects" / digest[:2] / digest[2:]


def test_ingested_directory_is_fully_covered(env: Env) -> None:
    ingest_index = env.ingest(env.data / "docs")
    result = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", prefix="docs", index=env.index
    )
    assert result.uncovered == ()
    assert [o.path for o in result.objects] == ["docs/faq.md", "docs/handbook.md", "docs/policy.md"]
    assert all(o.records == (ingest_index,) for o in result.objects)
    # The signed record says the same, and names the ingest record by its envelope hash.
    _, statement = decode_entry(env.recorder.ledger.entry(result.log_index))
    assert statement["predicateType"] == SNAPSHOT_V1
    p = statement["predicate"]
    assert p["store"] == "local"
    assert p["repository"] == "demo"
    assert p["commitId"] == result.commit_id
    assert p["ref"] == "main"
    assert p["prefix"] == "docs/"
    assert p["uncovered"] == []
    assert p["manifest"]["root"] == result.manifest.blake3
    assert p["manifest"]["files"] == 3
    ingest_leaf = env.recorder.ledger.entry(ingest_index)
    assert p["derivedFrom"] == [
        {
            "name": f"attestation:{ingest_index}",
            "uri": f"provgate+log://{env.home.origin}/{ingest_index}",
            "digest": {"sha256": hashlib.sha256(ingest_leaf).hexdigest()},
            "mediaType": DSSE_MEDIA_TYPE,
            "annotations": {"logIndex": ingest_index, "predicateType": INGEST_V1},
        }
    ]
    # The manifest is digest.py's over the object paths; the subject its SHA-256.
    tree = digest_path(env.data / "docs")
    manifest = manifest_bytes(("docs/" + f.path, f.blake3) for f in tree.files)
    assert result.manifest.blake3 == digest_bytes(manifest)
    assert statement["subject"] == [
        {
            "name": f"provgate://demo/{result.commit_id}/docs",
            "digest": {"sha256": hashlib.sha256(manifest).hexdigest()},
        }
    ]
    commit = env.store.get_commit("demo", result.commit_id)
    assert commit.metadata[METADATA_MANIFEST] == result.manifest.blake3
    # The commit names its record, and the record its commit.
    assert commit.metadata[METADATA_LOG_INDEX] == str(result.log_index)
    assert commit.metadata[METADATA_LOG_ORIGIN] == env.home.origin
    assert env.store.resolve("demo", "main") == result.commit_id
    assert env.index.snapshot("provgate", "demo", result.commit_id) == RecordRef(
        result.log_index, result.attestation.envelope_sha256
    )
    assert verify_home(env.home).ok
    report = env.verify(result.commit_id)
    assert report.ok, report.problems


def test_file_not_ingested_is_uncovered(env: Env) -> None:
    env.ingest(env.data / "docs")
    (env.data / "docs" / "late.txt").write_text("added after ingest\n")
    result = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", index=env.index
    )
    assert result.uncovered == ("late.txt",)
    by_path = {o.path: o for o in result.objects}
    assert by_path["late.txt"].records == ()
    assert by_path["faq.md"].records != ()
    _, statement = decode_entry(env.recorder.ledger.entry(result.log_index))
    assert statement["predicate"]["uncovered"] == ["late.txt"]


def test_table_ingested_by_rows_covers_its_file(env: Env) -> None:
    index = env.ingest(env.data / "reviews.csv")
    result = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "reviews.csv", index=env.index
    )
    assert [(o.path, o.records) for o in result.objects] == [("reviews.csv", (index,))]


def test_every_covering_record_is_linked(env: Env) -> None:
    first = env.ingest(env.data / "docs")
    second = env.ingest(env.data / "docs" / "faq.md")
    result = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", index=env.index
    )
    by_path = {o.path: o.records for o in result.objects}
    assert by_path["faq.md"] == (first, second)
    assert by_path["policy.md"] == (first,)


def test_object_written_by_a_recorded_step_is_linked_to_it(env: Env, tmp_path: Path) -> None:
    ingest = env.ingest(env.data / "docs")
    out = tmp_path / "out"
    out.mkdir()
    (out / "clean.md").write_text((env.data / "docs" / "faq.md").read_text().lower())
    raw = Artifact.from_path(env.data / "docs" / "faq.md")
    # A directory output is indexed by its manifest root, which no object matches.
    record_step(env.recorder, "clean", inputs=[raw], outputs=[Artifact.from_path(out)])
    assert env.index.covering([digest_path(out / "clean.md").blake3]) == {}
    step = record_step(
        env.recorder, "clean", inputs=[raw], outputs=[Artifact.from_path(out / "clean.md")]
    )
    (out / "faq.md").write_text((env.data / "docs" / "faq.md").read_text())
    result = commit_snapshot(env.recorder, env.store, "demo", "main", out, index=env.index)
    by_path = {o.path: o.records for o in result.objects}
    assert by_path == {"clean.md": (step.log_index,), "faq.md": (ingest,)}
    _, statement = decode_entry(env.recorder.ledger.entry(result.log_index))
    kinds = {
        d["annotations"]["logIndex"]: d["annotations"]["predicateType"]
        for d in statement["predicate"]["derivedFrom"]
    }
    assert kinds == {ingest: INGEST_V1, step.log_index: SLSA_PROVENANCE_V1}
    assert result.uncovered == ()


def test_derived_from_attestations_are_appended(env: Env) -> None:
    env.ingest(env.data / "docs")
    first = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", index=env.index
    )
    (env.data / "docs" / "faq.md").write_text("cleaned\n")
    second = commit_snapshot(
        env.recorder,
        env.store,
        "demo",
        "main",
        env.data / "docs",
        derived_from=[first.attestation],
        index=env.index,
    )
    _, statement = decode_entry(env.recorder.ledger.entry(second.log_index))
    names = [d["name"] for d in statement["predicate"]["derivedFrom"]]
    assert names[-1] == f"attestation:{first.log_index}"
    assert second.uncovered == ("faq.md",)


def test_objects_already_under_the_prefix_are_in_the_snapshot(env: Env) -> None:
    env.store.write("demo", "main", "docs/old.txt", b"from before")
    env.store.commit("demo", "main", "earlier")
    env.ingest(env.data / "docs")
    result = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", prefix="docs/", index=env.index
    )
    assert "docs/old.txt" in result.uncovered
    assert len(result.objects) == 4
    assert env.verify(result.commit_id).ok


def test_blob_edited_after_commit_is_named(env: Env) -> None:
    env.ingest(env.data / "docs")
    result = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", index=env.index
    )
    faq = next(o for o in result.objects if o.path == "faq.md")
    blob = _blob(env.store, faq.blake3)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"edited on disk")
    report = env.verify(result.commit_id)
    assert not report.ok
    problems = report.problems
    assert [(p.kind, p.path) for p in problems] == [("changed", "faq.md")]
    assert "faq.md" in problems[0].message


def test_listing_edited_in_the_store_names_missing_and_extra(env: Env) -> None:
    result = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", index=env.index
    )
    env.store.close()
    edit = "UPDATE {}entries SET path = 'renamed.md' WHERE path = 'policy.md'"
    if env.home.ledger_url is None:
        with sqlite3.connect(env.store.root / "store.sqlite") as db:
            db.execute(edit.format(""))
    else:
        import psycopg

        with psycopg.connect(env.home.ledger_url) as pg:
            pg.execute(edit.format("store_"))
    with env.home.open_store() as reopened:
        env.store = reopened
        report = env.verify(result.commit_id)
    kinds = {(p.kind, p.path) for p in report.problems}
    assert kinds == {("missing", "policy.md"), ("extra", "renamed.md")}


def test_record_by_an_untrusted_key_fails(env: Env) -> None:
    result = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", index=env.index
    )
    report = verify_snapshot(
        env.store,
        "demo",
        result.commit_id,
        ledger=env.recorder.ledger,
        trust=TrustStore.empty(),
        index=env.index,
    )
    assert [p.kind for p in report.problems] == ["record"]
    assert "key" in report.problems[0].message


def test_commit_without_a_record_fails_verification(env: Env) -> None:
    env.store.write("demo", "main", "x.txt", b"x")
    commit = env.store.commit("demo", "main", "outside provgate")
    report = env.verify(commit.id)
    assert [p.kind for p in report.problems] == ["record"]
    assert "no snapshot record" in report.problems[0].message


def test_record_is_found_without_the_index(env: Env, tmp_path: Path) -> None:
    result = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", index=env.index
    )
    with ContentIndex(tmp_path / "empty.sqlite") as empty:
        record = find_snapshot_record(
            env.recorder.ledger, empty, env.store, "demo", result.commit_id
        )
    assert record.log_index == result.log_index


def test_index_pointing_elsewhere_is_detected(env: Env) -> None:
    """A commit without provgate's metadata is looked up in the index, which is re-checked."""
    ingest_index = env.ingest(env.data / "docs")
    env.store.write("demo", "main", "x.txt", b"x")
    commit = env.store.commit("demo", "main", "outside provgate")
    env.index.put_snapshot(
        "provgate",
        "demo",
        commit.id,
        RecordRef(
            ingest_index, hashlib.sha256(env.recorder.ledger.entry(ingest_index)).hexdigest()
        ),
    )
    report = env.verify(commit.id)
    assert [p.kind for p in report.problems] == ["record"]
    assert "not a snapshot record" in report.problems[0].message


def _commit_naming(env: Env, metadata: dict[str, str]) -> str:
    env.store.write("demo", "main", "x.txt", os.urandom(8))
    return env.store.commit("demo", "main", "names a record it is not", metadata).id


def test_metadata_naming_another_record_is_detected(env: Env) -> None:
    ingest_index = env.ingest(env.data / "docs")
    other = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", prefix="d", index=env.index
    )
    for named, says in ((ingest_index, "not its snapshot record"), (other.log_index, "another")):
        commit_id = _commit_naming(
            env, {METADATA_LOG_INDEX: str(named), METADATA_LOG_ORIGIN: env.home.origin}
        )
        report = env.verify(commit_id)
        assert [p.kind for p in report.problems] == ["record"]
        assert f"log entry {named}" in report.problems[0].message
        assert says in report.problems[0].message


@pytest.mark.sqlite_only  # input, format or lakeFS: not about the home's database
@pytest.mark.parametrize(
    ("named", "says"),
    [("99", "never appended"), ("-1", "not a log index"), ("1e3", "not a log index")],
)
def test_metadata_naming_no_record_is_detected(env: Env, named: str, says: str) -> None:
    commit_id = _commit_naming(env, {METADATA_LOG_INDEX: named})
    report = env.verify(commit_id)
    assert [p.kind for p in report.problems] == ["record"]
    assert says in report.problems[0].message


def test_metadata_naming_another_log_is_detected(env: Env) -> None:
    commit_id = _commit_naming(
        env, {METADATA_LOG_INDEX: "0", METADATA_LOG_ORIGIN: "elsewhere.example/log"}
    )
    report = env.verify(commit_id)
    assert [p.kind for p in report.problems] == ["record"]
    assert "elsewhere.example/log" in report.problems[0].message


class _SigningServiceDown:
    """A Signer (a KMS, say) that fails: the record cannot be made after the commit."""

    def __init__(self, keyid: str) -> None:
        self.keyid = keyid

    def sign(self, data: bytes) -> bytes:
        raise ConnectionError("signing service unreachable")

    def public_key_pem(self) -> str:
        raise ConnectionError("signing service unreachable")


def test_commit_whose_record_was_never_appended_stays_unrecorded(env: Env) -> None:
    """The reserved index is not taken; the commit's metadata then names someone else's record."""
    broken = Recorder(env.recorder.ledger, _SigningServiceDown(env.recorder.signer.keyid))
    with pytest.raises(ConnectionError):
        commit_snapshot(broken, env.store, "demo", "main", env.data / "docs", index=env.index)
    commit_id = env.store.resolve("demo", "main")  # the commit happened
    reserved = int(env.store.get_commit("demo", commit_id).metadata[METADATA_LOG_INDEX])
    assert env.recorder.ledger.size() == reserved  # ... and its record did not
    report = env.verify(commit_id)
    assert "never appended" in report.problems[0].message
    assert env.ingest(env.data / "docs") == reserved  # no gap: the next record takes it
    report = env.verify(commit_id)
    assert [p.kind for p in report.problems] == ["record"]
    assert "not its snapshot record" in report.problems[0].message
    assert verify_home(env.home).ok


@pytest.mark.sqlite_only  # input, format or lakeFS: not about the home's database
@pytest.mark.parametrize("prefix", ["../x", "a/../b", "/abs", "a//b", "./a", "nul\x00"])
def test_unsafe_prefix_is_refused_before_writing(env: Env, prefix: str) -> None:
    with pytest.raises(InputError):
        commit_snapshot(
            env.recorder,
            env.store,
            "demo",
            "main",
            env.data / "docs",
            prefix=prefix,
            index=env.index,
        )
    assert env.recorder.ledger.size() == 0


@pytest.mark.sqlite_only  # input, format or lakeFS: not about the home's database
def test_bad_source_and_branch(env: Env) -> None:
    with pytest.raises(InputError, match="no such file"):
        commit_snapshot(env.recorder, env.store, "demo", "main", env.data / "nope", index=env.index)
    with pytest.raises(InputError, match="branch"):
        commit_snapshot(
            env.recorder, env.store, "demo", "a" * 64, env.data / "docs", index=env.index
        )
    with pytest.raises(NotFoundError):
        commit_snapshot(
            env.recorder, env.store, "demo", "nobranch", env.data / "docs", index=env.index
        )
    empty = env.data / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no files"):
        commit_snapshot(env.recorder, env.store, "demo", "main", empty, index=env.index)
    assert env.recorder.ledger.size() == 0


def test_normalize_prefix() -> None:
    assert normalize_prefix("") == ""
    assert normalize_prefix("/") == ""
    assert normalize_prefix("a/b") == "a/b/"
    assert normalize_prefix("a/b/") == "a/b/"


# -- lakeFS, through the real lakefs-sdk against the spec-validated fake server ------------


@pytest.fixture
def lakefs(env: Env) -> Iterator[tuple[LakeFSStore, FakeLakeFS]]:
    with served_store(required_spec(), ACCESS_KEY, SECRET) as (store, server):
        yield store, server


def _verify_lakefs(env: Env, store: LakeFSStore, ref: str) -> SnapshotVerifyReport:
    return verify_snapshot(
        store, "lake", ref, ledger=env.recorder.ledger, trust=env.home.trust(), index=env.index
    )


@pytest.mark.sqlite_only  # input, format or lakeFS: not about the home's database
def test_lakefs_snapshot_is_covered_and_verifies(
    env: Env, lakefs: tuple[LakeFSStore, FakeLakeFS]
) -> None:
    store, server = lakefs
    ingest_index = env.ingest(env.data / "docs")
    result = commit_snapshot(
        env.recorder, store, "lake", "main", env.data / "docs", prefix="docs", index=env.index
    )
    assert result.uncovered == ()
    assert all(o.records == (ingest_index,) for o in result.objects)
    _, statement = decode_entry(env.recorder.ledger.entry(result.log_index))
    assert statement["predicate"]["store"] == "lakefs"
    assert statement["subject"][0]["name"] == f"lakefs://lake/{result.commit_id}/docs"
    commit = store.get_commit("lake", result.commit_id)
    assert commit.metadata[METADATA_MANIFEST] == result.manifest.blake3
    assert _verify_lakefs(env, store, result.commit_id).ok
    # Bytes replaced underneath lakeFS (object storage edited): named as changed.
    tree = server.repos["lake"].commits[result.commit_id].tree
    tree["docs/faq.md"] = replace(tree["docs/faq.md"], data=b"overwritten in storage")
    report = _verify_lakefs(env, store, result.commit_id)
    assert [(p.kind, p.path) for p in report.problems] == [("changed", "docs/faq.md")]


@pytest.mark.sqlite_only  # input, format or lakeFS: not about the home's database
def test_lakefs_recommit_under_the_same_path_keeps_the_old_snapshot(
    env: Env, lakefs: tuple[LakeFSStore, FakeLakeFS]
) -> None:
    store, _ = lakefs
    env.ingest(env.data / "docs")
    old = commit_snapshot(env.recorder, store, "lake", "main", env.data / "docs", index=env.index)
    store.write("lake", "main", "faq.md", b"re-uploaded outside provgate")
    new = store.commit("lake", "main", "changed faq.md")
    assert _verify_lakefs(env, store, old.commit_id).ok  # the old commit still holds
    report = _verify_lakefs(env, store, new.id)
    assert [p.kind for p in report.problems] == ["record"]
    assert "no snapshot record" in report.problems[0].message


@pytest.mark.sqlite_only  # input, format or lakeFS: not about the home's database
def test_record_validates_against_the_published_schema(env: Env) -> None:
    env.ingest(env.data / "docs")
    (env.data / "docs" / "late.txt").write_text("uncovered\n")
    result = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", prefix="d", index=env.index
    )
    _, statement = decode_entry(env.recorder.ledger.entry(result.log_index))
    validator("snapshot-v1.json").validate(statement["predicate"])


@pytest.mark.sqlite_only  # input, format or lakeFS: not about the home's database
def test_file_changed_between_walk_and_upload_is_refused(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import prov_core.snapshot_record as snapshot_record

    def walk_then_edit(path: Path) -> object:
        tree = digest_path(path)
        (env.data / "docs" / "faq.md").write_text("edited mid-snapshot\n")
        return tree

    monkeypatch.setattr(snapshot_record, "digest_path", walk_then_edit)
    with pytest.raises(InputError, match="changed while it was being snapshotted"):
        commit_snapshot(env.recorder, env.store, "demo", "main", env.data / "docs", index=env.index)
    assert env.recorder.ledger.size() == 0


def test_content_index_refuses_a_foreign_database(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema', 'something-else')")
    with pytest.raises(ConfigError, match="not a provgate content index"):
        ContentIndex(other)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError):
        ContentIndex(garbage)


def test_content_index_round_trip(tmp_path: Path) -> None:
    ref = RecordRef(3, "ab" * 32, INGEST_V1)
    with ContentIndex(tmp_path / "index.sqlite") as index:
        index.add_content(["cd" * 32, "cd" * 32, "ef" * 32], ref)
        with pytest.raises(InputError):
            index.add_content(["NOT HEX"], ref)
    with ContentIndex(tmp_path / "index.sqlite") as index:  # reopened: durable
        assert index.covering(["cd" * 32, "00" * 32]) == {"cd" * 32: [ref]}
        assert index.snapshot("provgate", "demo", "11" * 32) is None


@pytest.mark.sqlite_only  # input, format or lakeFS: not about the home's database
def test_record_too_large_for_a_leaf_is_refused_before_committing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import prov_core.ledger.base as ledger_base

    monkeypatch.setattr(ledger_base, "MAX_LEAF_BYTES", 64 * 1024 + 100)
    head = env.store.resolve("demo", "main")
    with pytest.raises(InputError, match="the ledger takes at most"):
        commit_snapshot(env.recorder, env.store, "demo", "main", env.data / "docs", index=env.index)
    assert env.store.resolve("demo", "main") == head
    assert env.store.list_objects("demo", "main").results == []  # nothing staged either
    assert env.recorder.ledger.size() == 0


def test_read_snapshot_returns_every_object_under_the_path(env: Env) -> None:
    from prov_core.snapshot_record import read_snapshot

    result = commit_snapshot(
        env.recorder, env.store, "demo", "main", env.data / "docs", prefix="docs", index=env.index
    )
    got = read_snapshot(f"provgate://demo/{result.commit_id}/docs", env.home)
    assert got == {f"docs/{p.name}": p.read_bytes() for p in sorted((env.data / "docs").iterdir())}
    one = read_snapshot(f"provgate://demo/{result.commit_id}/docs/faq.md", env.home)
    assert list(one) == ["docs/faq.md"]
    with pytest.raises(NotFoundError):
        read_snapshot("provgate://demo/" + "0" * 64, env.home)
