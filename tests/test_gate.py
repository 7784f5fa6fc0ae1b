"""The training gate on the real LocalStore, the real SQLite ledger and the fake lakeFS.

Every case that makes sense for both backends runs on both (the ``backend``
fixture): the embedded store, and LakeFSStore through the real lakefs-sdk
against the spec-validated fake server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from lakefs_sdk import Configuration
from lakefs_sdk.client import LakeFSClient

from prov_core import signing
from prov_core.content_index import ContentIndex, RecordRef
from prov_core.digest import digest_path
from prov_core.errors import GateRefused, InputError
from prov_core.gate import CUSTODY_LEVEL, VERIFIER_ID, GateDecision, evaluate_gate, gated, require
from prov_core.home import Home
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.policy import Policy
from prov_core.records import decode_entry
from prov_core.sample_store import SAMPLES_DIR, SampleStore
from prov_core.snapshot_record import SnapshotResult, commit_snapshot, verify_snapshot
from prov_core.snapshots.base import SnapshotStore, SnapshotURI
from prov_core.snapshots.lakefs import LakeFSStore
from prov_core.snapshots.local import LocalStore
from prov_core.statement import INGEST_V1, SLSA_PROVENANCE_V1, SLSA_VSA_V1, SNAPSHOT_V1
from prov_core.step import Artifact, Attestation, Recorder, record_step
from prov_core.trust import TrustStore
from prov_core.verify import verify_home

from .conftest import DEMO_DATA, REPO, demo_home
from .snapshots.lakefs_server import FakeLakeFS, required_spec, served_store

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI-K7MDENG-provgate-gate-secret"
BANNED = REPO / "examples" / "policies" / "banned-sources.toml"


@dataclass
class Env:
    home: Home
    recorder: Recorder
    store: LocalStore
    index: ContentIndex
    data: Path

    def ingest(
        self,
        path: Path,
        *,
        source: str = "https://example.org/docs",
        license: str = "CC-BY-4.0",
        recorder: Recorder | None = None,
    ) -> int:
        request = IngestRequest(source=source, license=license)
        result = ingest_path(recorder or self.recorder, path, request, index=self.index)
        return result.attestation.log_index

    def snapshot(self, path: Path | None = None, prefix: str = "") -> SnapshotResult:
        return commit_snapshot(
            self.recorder,
            self.store,
            "demo",
            "main",
            path or self.data / "docs",
            prefix=prefix,
            index=self.index,
        )

    def gate(self, *inputs: str, **kwargs: object) -> GateDecision:
        # The gate opens its own store, as a training process would.
        return evaluate_gate(list(inputs), home=self.home, **kwargs)  # type: ignore[arg-type]

    def uri(self, ref: str, path: str = "") -> str:
        return str(SnapshotURI("provgate", "demo", ref, path))


@pytest.fixture
def env(tmp_path: Path, home_db: str) -> Iterator[Env]:
    with demo_home(tmp_path) as parts:
        yield Env(*parts)


def _codes(decision: GateDecision) -> list[str]:
    return [r.code for r in decision.reasons]


def _second_key(env: Env) -> signing.Ed25519Signer:
    """A second trusted key (retired, so the home keeps signing with its own)."""
    signer = signing.generate_key(env.home.keys_dir)
    trust = env.home.trust()
    trust.add(signer, note_name=env.home.origin, status="retired")
    trust.save(env.home.trust_path)
    return signer


@dataclass
class Backend:
    """One snapshot store the gate reads: the embedded store, or lakeFS through the fake server."""

    env: Env
    kind: str  # "local" | "lakefs"
    store: SnapshotStore
    server: FakeLakeFS | None = None
    stack: ExitStack = field(default_factory=ExitStack)

    @property
    def repo(self) -> str:
        return "demo" if self.kind == "local" else "lake"

    @property
    def scheme(self) -> str:
        return "provgate" if self.kind == "local" else "lakefs"

    def uri(self, ref: str, path: str = "") -> str:
        return str(SnapshotURI(self.scheme, self.repo, ref, path))  # type: ignore[arg-type]

    def snapshot(self, path: Path | None = None, prefix: str = "") -> SnapshotResult:
        return commit_snapshot(
            self.env.recorder,
            self.store,
            self.repo,
            "main",
            path or self.env.data / "docs",
            prefix=prefix,
            index=self.env.index,
        )

    @property
    def kwargs(self) -> dict[str, Any]:
        """What the gate needs beyond the home: the local store it opens itself."""
        if self.kind == "local":
            return {}
        store = self.store
        return {"open_store": lambda uri: store}

    def gate(self, *inputs: str, **kwargs: Any) -> GateDecision:
        return evaluate_gate(list(inputs), home=self.env.home, **{**self.kwargs, **kwargs})

    def change_after_commit(self, snap: SnapshotResult, path: str) -> None:
        """Change an object's bytes under a commit already taken."""
        if self.kind == "local":
            obj = next(o for o in snap.objects if o.path == path)
            blob = self.env.store.root / "objects" / obj.blake3[:2] / obj.blake3[2:]
            os.chmod(blob, 0o644)
            blob.write_bytes(b"edited on disk after the commit")
            return
        # lakeFS: re-uploaded and re-committed under the same path, then the bytes
        # under the old commit replaced in storage.
        assert self.server is not None
        self.store.write(self.repo, "main", path, b"re-uploaded outside provgate")
        self.store.commit(self.repo, "main", f"changed {path}")
        tree = self.server.repos[self.repo].commits[snap.commit_id].tree
        tree[path] = replace(tree[path], data=b"overwritten in storage")

    def make_unreachable(self) -> None:
        """Make the store unreachable for the gate."""
        if self.kind == "local":
            self.env.store.close()
            shutil.rmtree(self.env.home.store_path)
            return
        self.store = self.stack.enter_context(
            LakeFSStore(f"http://127.0.0.1:{_closed_port()}", ACCESS_KEY, SECRET, retries=0)
        )


# lakeFS on a PostgreSQL home: the gate's reading of the home is covered by "local"
@pytest.fixture(params=["local", pytest.param("lakefs", marks=pytest.mark.sqlite_only)])
def backend(request: pytest.FixtureRequest, env: Env) -> Iterator[Backend]:
    if request.param == "local":
        yield Backend(env, "local", env.store)
        return
    with ExitStack() as stack, served_store(required_spec(), ACCESS_KEY, SECRET) as (store, server):
        yield Backend(env, "lakefs", store, server, stack)


def test_everything_right_is_allowed_and_recorded(env: Env, backend: Backend) -> None:
    ingest = env.ingest(env.data / "docs")
    snap = backend.snapshot(prefix="docs")
    decision = backend.gate(backend.uri(snap.commit_id, "docs"))
    assert decision.allowed, decision.reasons
    assert decision.reasons == []
    assert decision.policy_digest == Policy.default().digest
    [facts] = decision.inputs
    assert facts.pinned
    assert facts.commit == snap.commit_id
    assert facts.objects == 3
    assert facts.uncovered == ()
    assert facts.store == backend.kind
    assert [r.log_index for r in facts.ingests] == [ingest]
    # The decision is a signed SLSA VSA in the ledger, and the ledger still verifies.
    assert decision.vsa is not None
    with env.home.open_ledger() as ledger:
        _, statement = decode_entry(ledger.entry(decision.vsa.log_index))
    assert statement["predicateType"] == SLSA_VSA_V1
    p = statement["predicate"]
    assert p["verificationResult"] == "PASSED"
    assert p["verifiedLevels"] == [CUSTODY_LEVEL]
    assert p["verifier"]["id"] == VERIFIER_ID
    assert p["policy"]["digest"] == {"sha256": decision.policy_digest}
    assert p["resourceUri"] == backend.uri(snap.commit_id, "docs")
    assert {a["annotations"]["logIndex"] for a in p["inputAttestations"]} == {
        ingest,
        snap.log_index,
    }
    assert p["provgateInputs"] == [
        {
            "uri": backend.uri(snap.commit_id, "docs"),
            "commit": snap.commit_id,
            "pinned": True,
            "snapshotRecord": snap.log_index,
        }
    ]
    assert statement["subject"][0]["digest"]["sha256"] == snap.manifest.sha256_subject
    assert verify_home(env.home).ok
    # require() returns the decision; the decorator runs the function.
    assert require([backend.uri(snap.commit_id)], home=env.home, **backend.kwargs).allowed

    @gated(inputs=[backend.uri(snap.commit_id)], home=env.home, **backend.kwargs)
    def train(x: int) -> int:
        return x + 1

    assert train(1) == 2


def test_branch_ref_is_refused_naming_its_commit(env: Env, backend: Backend) -> None:
    env.ingest(env.data / "docs")
    snap = backend.snapshot()
    decision = backend.gate(backend.uri("main"))
    assert not decision.allowed
    unpinned = [r for r in decision.reasons if r.code == "unpinned"]
    assert len(unpinned) == 1
    assert "'main'" in unpinned[0].message
    assert snap.commit_id in unpinned[0].message
    assert unpinned[0].input == backend.uri("main")
    # The default policy's pinned-inputs rule says so too, with its id.
    assert [r.rule_id for r in decision.reasons if r.code == "policy"] == ["pinned-inputs"]
    assert decision.inputs[0].commit == snap.commit_id
    assert not decision.inputs[0].pinned
    # A tag is not a pin either.
    backend.store.tag(backend.repo, "v1", snap.commit_id)
    assert "unpinned" in _codes(backend.gate(backend.uri("v1")))


def test_object_changed_after_commit_is_detected(env: Env, backend: Backend) -> None:
    env.ingest(env.data / "docs")
    snap = backend.snapshot()
    backend.change_after_commit(snap, "faq.md")
    decision = backend.gate(backend.uri(snap.commit_id))
    assert not decision.allowed
    changed = [r for r in decision.reasons if r.code == "content-changed"]
    assert len(changed) == 1
    assert "faq.md" in changed[0].message
    assert decision.vsa is not None  # refusals are recorded too
    with env.home.open_ledger() as ledger:
        _, statement = decode_entry(ledger.entry(decision.vsa.log_index))
    assert statement["predicate"]["verificationResult"] == "FAILED"
    assert statement["predicate"]["verifiedLevels"] == []
    assert any(r["code"] == "content-changed" for r in statement["predicate"]["provgateReasons"])


def test_untrusted_ingest_signer_is_refused(env: Env, backend: Backend, tmp_path: Path) -> None:
    stranger = signing.generate_key(tmp_path / "stranger-keys")
    other = Recorder(env.recorder.ledger, stranger, origin=env.home.origin)  # shares the ledger
    env.ingest(env.data / "docs", recorder=other)
    snap = backend.snapshot()
    decision = backend.gate(backend.uri(snap.commit_id))
    assert not decision.allowed
    untrusted = [r for r in decision.reasons if r.code == "untrusted-key"]
    assert untrusted
    assert "not in the trust store" in untrusted[0].message
    assert set(_codes(decision)) >= {"untrusted-key", "uncovered", "policy"}
    rules = {r.rule_id for r in decision.reasons if r.code == "policy"}
    assert rules == {"signed-ingest", "covered-objects"}
    assert decision.inputs[0].ingests[0].key_status == "unknown"
    assert not decision.inputs[0].ingests[0].verified


def test_unsigned_ingest_record_is_refused(env: Env, backend: Backend) -> None:
    # The ingest record's payload, under a signature that is not the key's.
    ingest = env.ingest(env.data / "docs")
    envelope = json.loads(env.recorder.ledger.entry(ingest))
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(64)).decode()
    forged = json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()
    forged_index = env.recorder.ledger.append([forged]).first_index
    env.index.add_content(
        [f.blake3 for f in digest_path(env.data / "docs").files],
        RecordRef(forged_index, hashlib.sha256(forged).hexdigest(), INGEST_V1),
    )
    snap = backend.snapshot(prefix="again")
    assert all(forged_index in o.records for o in snap.objects)
    decision = backend.gate(backend.uri(snap.commit_id, "again"))
    assert not decision.allowed
    bad = [r for r in decision.reasons if r.code == "bad-signature"]
    assert bad
    assert f"ingest record {forged_index}" in bad[0].message
    rules = {r.rule_id for r in decision.reasons if r.code == "policy"}
    assert "signed-ingest" in rules
    assert not next(i for i in decision.inputs[0].ingests if i.log_index == forged_index).verified


def test_revoked_ingest_signer_is_refused_with_the_reason(env: Env, backend: Backend) -> None:
    second = _second_key(env)
    other = Recorder(env.recorder.ledger, second, origin=env.home.origin)  # shares the ledger
    env.ingest(env.data / "docs", recorder=other)
    snap = backend.snapshot()
    assert backend.gate(backend.uri(snap.commit_id)).allowed  # before the revocation
    trust = env.home.trust()
    trust.revoke(second.keyid, "laptop stolen")
    trust.save(env.home.trust_path)
    decision = backend.gate(backend.uri(snap.commit_id))
    assert not decision.allowed
    revoked = [r for r in decision.reasons if r.code == "revoked-key"]
    assert revoked
    assert "laptop stolen" in revoked[0].message
    rules = {r.rule_id for r in decision.reasons if r.code == "policy"}
    assert "no-revoked-key" in rules
    assert decision.inputs[0].ingests[0].key_status == "revoked"


def test_banned_source_is_refused_with_the_rule_id(env: Env, backend: Backend) -> None:
    env.ingest(env.data / "docs", source="file://docs")
    snap = backend.snapshot()
    policy = Policy.load(BANNED)
    decision = backend.gate(backend.uri(snap.commit_id), policy=policy)
    assert not decision.allowed
    assert [(r.code, r.rule_id) for r in decision.reasons] == [("policy", "banned-sources")]
    assert decision.policy_digest == policy.digest
    assert backend.gate(backend.uri(snap.commit_id)).allowed  # the default has no such rule


def test_inline_policy_on_a_source_pattern(env: Env, backend: Backend) -> None:
    env.ingest(env.data / "docs", source="https://books3.example/dump")
    snap = backend.snapshot()
    policy = Policy.from_toml(
        """
        [[rule]]
        id = "no-books3"
        message = "books3 is banned"
        expr = 'inputs.all(i, i.ingests.all(r, !r.source_uri.contains("books3")))'
        """
    )
    decision = backend.gate(backend.uri(snap.commit_id), policy=policy)
    assert [(r.rule_id, r.message) for r in decision.reasons] == [("no-books3", "books3 is banned")]


def test_unknown_license_is_refused(env: Env, backend: Backend) -> None:
    env.ingest(env.data / "docs", license="LicenseRef-x")
    snap = backend.snapshot()
    decision = backend.gate(backend.uri(snap.commit_id))
    assert [(r.code, r.rule_id) for r in decision.reasons] == [("policy", "known-license")]


def test_uncovered_object_is_refused_naming_it(env: Env, backend: Backend) -> None:
    env.ingest(env.data / "docs")
    (env.data / "docs" / "late.txt").write_text("never ingested\n")
    snap = backend.snapshot()
    decision = backend.gate(backend.uri(snap.commit_id))
    uncovered = [r for r in decision.reasons if r.code == "uncovered"]
    assert [r.message.split(":")[0] for r in uncovered] == ["late.txt"]
    assert decision.inputs[0].uncovered == ("late.txt",)
    assert "covered-objects" in {r.rule_id for r in decision.reasons}
    # Narrowed to a path whose objects are all covered, the same commit is allowed.
    assert backend.gate(backend.uri(snap.commit_id, "faq.md")).allowed


def test_object_committed_outside_provgate_is_named(env: Env, backend: Backend) -> None:
    env.ingest(env.data / "docs")
    snap = backend.snapshot(prefix="docs")
    backend.store.write(backend.repo, "main", "other/sneaky.txt", b"outside the snapshot prefix")
    commit = backend.store.commit(backend.repo, "main", "outside provgate")
    decision = backend.gate(backend.uri(commit.id))
    assert "no-snapshot-record" in _codes(decision)
    assert backend.gate(backend.uri(snap.commit_id)).allowed


def test_single_file_coverage_claim_is_rechecked(env: Env, backend: Backend) -> None:
    faq = env.ingest(env.data / "docs" / "faq.md")
    snap = backend.snapshot()
    # Point the index at the single-file ingest for another object's bytes: the
    # snapshot record then (wrongly) names it; the gate re-checks the claim.
    policy_md = next(o for o in snap.objects if o.path == "policy.md")
    assert policy_md.records == ()
    leaf = env.recorder.ledger.entry(faq)
    env.index.add_content(
        [policy_md.blake3], RecordRef(faq, hashlib.sha256(leaf).hexdigest(), INGEST_V1)
    )
    snap2 = backend.snapshot(prefix="again")
    decision = backend.gate(backend.uri(snap2.commit_id))
    mismatch = [r for r in decision.reasons if r.code == "coverage-mismatch"]
    assert len(mismatch) == 1
    assert mismatch[0].message.startswith("again/policy.md:")
    assert "again/policy.md" in decision.inputs[0].uncovered


def test_several_file_coverage_claim_is_checked_against_the_stored_set(
    env: Env, backend: Backend, tmp_path: Path
) -> None:
    """A claim that an ingest of several files covers other bytes fails its signed sample root."""
    two = tmp_path / "two"
    two.mkdir()
    for name in ("faq.md", "handbook.md"):
        shutil.copy(env.data / "docs" / name, two / name)
    store = SampleStore(env.home.path / SAMPLES_DIR)
    request = IngestRequest(source="https://example.org/two", license="CC-BY-4.0")
    ingest = ingest_path(env.recorder, two, request, index=env.index, samples_store=store)
    first = backend.snapshot()
    policy_md = next(o for o in first.objects if o.path == "policy.md")
    assert policy_md.records == ()
    n = ingest.attestation.log_index
    env.index.add_content(
        [policy_md.blake3], RecordRef(n, ingest.attestation.envelope_sha256, INGEST_V1)
    )
    forged = backend.snapshot(prefix="again")
    decision = backend.gate(backend.uri(forged.commit_id))
    mismatch = [r for r in decision.reasons if r.code == "coverage-mismatch"]
    assert [r.message.split(":")[0] for r in mismatch] == ["again/policy.md"]
    assert "does not include" in mismatch[0].message
    # The objects the ingest did hold are allowed through it.
    assert backend.gate(backend.uri(forged.commit_id, "again/faq.md")).allowed


def test_commit_without_a_record_is_refused(env: Env, backend: Backend) -> None:
    backend.store.write(backend.repo, "main", "x.txt", b"x")
    commit = backend.store.commit(backend.repo, "main", "outside provgate")
    decision = backend.gate(backend.uri(commit.id))
    assert _codes(decision)[0] == "no-snapshot-record"
    assert "no snapshot record" in decision.reasons[0].message


def test_several_failures_are_all_listed(env: Env, backend: Backend) -> None:
    env.ingest(env.data / "docs", source="file://docs", license="LicenseRef-x")
    (env.data / "docs" / "late.txt").write_text("never ingested\n")
    snap = backend.snapshot()
    backend.change_after_commit(snap, "faq.md")
    policy = Policy.from_toml(_combined_policy(), source="combined")
    pinned = backend.uri(snap.commit_id)
    decision = backend.gate(backend.uri("main"), pinned, backend.uri("a" * 64), policy=policy)
    codes = set(_codes(decision))
    assert {"unpinned", "content-changed", "uncovered", "not-found", "policy"} <= codes
    rules = {r.rule_id for r in decision.reasons if r.code == "policy"}
    assert rules >= {"pinned-inputs", "covered-objects", "known-license", "banned-sources"}
    inputs = {r.input for r in decision.reasons if r.input}
    assert inputs == {backend.uri("main"), pinned, backend.uri("a" * 64)}
    with pytest.raises(GateRefused) as refused:
        require([backend.uri("main")], home=env.home, policy=policy, **backend.kwargs)
    assert len(refused.value.reasons) >= 4
    assert isinstance(refused.value.decision, GateDecision)
    assert refused.value.exit_code == 1


def _combined_policy() -> str:
    from prov_core.policy import DEFAULT_POLICY_TOML

    return DEFAULT_POLICY_TOML + "\n" + BANNED.read_text().replace("version = 1", "")


@pytest.mark.sqlite_only  # removes the SQLite store (tests/test_home_postgres.py: PostgreSQL)
def test_store_unreachable_fails_closed(env: Env, backend: Backend) -> None:
    env.ingest(env.data / "docs")
    snap = backend.snapshot()
    backend.make_unreachable()
    decision = backend.gate(backend.uri(snap.commit_id))
    assert not decision.allowed
    assert _codes(decision)[0] == "store-unreachable"
    assert "fails closed" in decision.reasons[0].message
    if backend.kind == "local":
        assert "does not exist or was removed" in decision.reasons[0].message
        assert not env.home.store_path.exists()  # the gate created nothing
    assert decision.vsa is not None  # the refusal is still recorded


@pytest.mark.sqlite_only  # removes the SQLite ledger (tests/test_home_postgres.py: PostgreSQL)
def test_ledger_unreachable_fails_closed(env: Env, backend: Backend) -> None:
    env.ingest(env.data / "docs")
    snap = backend.snapshot()
    env.recorder.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{env.home.ledger_path}{suffix}").unlink(missing_ok=True)
    env.home.ledger_path.mkdir()  # a ledger that cannot be opened
    decision = backend.gate(backend.uri(snap.commit_id))
    assert not decision.allowed
    codes = _codes(decision)
    assert codes[0] == "ledger-unreachable"
    assert "fails closed" in decision.reasons[0].message
    assert "not-recorded" in codes
    assert decision.vsa is None


def test_decorator_blocks_the_wrapped_function(env: Env, backend: Backend) -> None:
    env.ingest(env.data / "docs")
    backend.snapshot()
    env.store.close()  # the gate opens the embedded store itself
    calls: list[str] = []

    @gated(inputs=lambda uri: [uri], home=env.home, **backend.kwargs)
    def train(uri: str) -> None:
        calls.append(uri)

    with pytest.raises(GateRefused, match="unpinned"):
        train(backend.uri("main"))
    assert calls == []


def test_unreadable_trust_store_fails_closed(env: Env, backend: Backend) -> None:
    env.ingest(env.data / "docs")
    snap = backend.snapshot()
    env.home.trust_path.write_text("{not json")
    decision = backend.gate(backend.uri(snap.commit_id))
    codes = _codes(decision)
    assert codes[0] == "trust-unavailable"
    assert "not-judged" in codes
    assert not decision.allowed
    assert decision.vsa is not None  # the home's signer was already loaded: recorded FAILED


@pytest.mark.sqlite_only  # refused input: not about the home's database
def test_caller_mistakes_raise_input_error(env: Env) -> None:
    with pytest.raises(InputError, match="not a snapshot URI"):
        evaluate_gate(["s3://bucket/key"], home=env.home)
    with pytest.raises(InputError, match="at least one input"):
        evaluate_gate([], home=env.home)
    with pytest.raises(InputError, match="sequence"):
        evaluate_gate(env.uri("a" * 64), home=env.home)


def test_explicit_parts_without_a_home(env: Env) -> None:
    env.ingest(env.data / "docs")
    snap = env.snapshot()
    decision = evaluate_gate(
        [env.uri(snap.commit_id)],
        ledger=env.recorder.ledger,
        trust=env.home.trust(),
        index=env.index,
        open_store=lambda uri: env.store,
        signer=env.home.signer,
    )
    assert decision.allowed, decision.reasons
    unrecorded = evaluate_gate(
        [env.uri(snap.commit_id)],
        ledger=env.recorder.ledger,
        trust=TrustStore.load(env.home.trust_path),
        index=env.index,
        open_store=lambda uri: env.store,
        record=False,
    )
    assert _codes(unrecorded) == ["not-recorded"]


# -- lakeFS through the real lakefs-sdk against the spec-validated fake server -------------


@pytest.fixture
def lakefs(env: Env) -> Iterator[tuple[LakeFSStore, FakeLakeFS]]:
    with served_store(required_spec(), ACCESS_KEY, SECRET) as (store, server):
        yield store, server


def _lake_gate(env: Env, store: LakeFSStore, *inputs: str) -> GateDecision:
    return evaluate_gate(
        list(inputs),
        home=env.home,
        open_store=lambda uri: store if uri.scheme == "lakefs" else env.home.open_store(),
    )


@pytest.mark.sqlite_only  # lakeFS: the gate's reading of the home is covered
def test_lakefs_pinned_allowed_branch_refused_changed_detected(
    env: Env, lakefs: tuple[LakeFSStore, FakeLakeFS]
) -> None:
    store, server = lakefs
    env.ingest(env.data / "docs")
    snap = commit_snapshot(
        env.recorder, store, "lake", "main", env.data / "docs", prefix="docs", index=env.index
    )
    pinned = f"lakefs://lake/{snap.commit_id}/docs"
    assert _lake_gate(env, store, pinned).allowed
    branch = _lake_gate(env, store, "lakefs://lake/main/docs")
    unpinned = [r for r in branch.reasons if r.code == "unpinned"]
    assert len(unpinned) == 1
    assert snap.commit_id in unpinned[0].message
    # Re-uploaded and re-committed under the same path: the new commit has no
    # record; bytes replaced under the old commit are named as changed.
    store.write("lake", "main", "docs/faq.md", b"re-uploaded outside provgate")
    recommit = store.commit("lake", "main", "changed faq.md")
    assert "no-snapshot-record" in _codes(
        _lake_gate(env, store, f"lakefs://lake/{recommit.id}/docs")
    )
    assert _lake_gate(env, store, pinned).allowed  # the old commit still holds
    tree = server.repos["lake"].commits[snap.commit_id].tree
    tree["docs/faq.md"] = replace(tree["docs/faq.md"], data=b"overwritten in storage")
    changed = _lake_gate(env, store, pinned)
    assert [r.code for r in changed.reasons if r.code.startswith("content")] == ["content-changed"]
    assert "docs/faq.md" in changed.reasons[0].message


@pytest.mark.sqlite_only  # lakeFS: the gate's reading of the home is covered
def test_lakefs_object_written_outside_provgate_is_committed_but_refused(
    env: Env, lakefs: tuple[LakeFSStore, FakeLakeFS]
) -> None:
    """An object on the branch that no provgate write made is snapshotted, then named."""
    store, server = lakefs
    env.ingest(env.data / "docs")
    raw = LakeFSClient(
        Configuration(host=server.url + "/api/v1", username=ACCESS_KEY, password=SECRET)
    )
    raw.objects_api.upload_object("lake", "main", "docs/sneaky.bin", content=b"not ingested")
    snap = commit_snapshot(
        env.recorder, store, "lake", "main", env.data / "docs", prefix="docs", index=env.index
    )
    assert snap.uncovered == ("docs/sneaky.bin",)
    report = verify_snapshot(
        store,
        "lake",
        snap.commit_id,
        ledger=env.recorder.ledger,
        trust=env.home.trust(),
        index=env.index,
    )
    assert report.ok, report.problems  # the commit holds what was signed...
    decision = _lake_gate(env, store, f"lakefs://lake/{snap.commit_id}/docs")
    uncovered = [r for r in decision.reasons if r.code == "uncovered"]
    assert [r.message.split(":")[0] for r in uncovered] == ["docs/sneaky.bin"]  # ...and is refused
    assert _lake_gate(env, store, f"lakefs://lake/{snap.commit_id}/docs/faq.md").allowed
    # Bytes replaced under the commit are still detected for such an object.
    tree = server.repos["lake"].commits[snap.commit_id].tree
    tree["docs/sneaky.bin"] = replace(tree["docs/sneaky.bin"], data=b"swapped")
    report = verify_snapshot(
        store,
        "lake",
        snap.commit_id,
        ledger=env.recorder.ledger,
        trust=env.home.trust(),
        index=env.index,
    )
    assert [(p.kind, p.path) for p in report.problems] == [("changed", "docs/sneaky.bin")]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.sqlite_only  # lakeFS: the gate's reading of the home is covered
def test_lakefs_unreachable_fails_closed(env: Env) -> None:
    port = _closed_port()
    with LakeFSStore(f"http://127.0.0.1:{port}", ACCESS_KEY, SECRET, retries=0) as store:
        decision = _lake_gate(env, store, "lakefs://lake/" + "a" * 64)
    assert not decision.allowed
    assert _codes(decision)[0] == "store-unreachable"
    assert "fails closed" in decision.reasons[0].message


@pytest.mark.sqlite_only  # lakeFS: the gate's reading of the home is covered
def test_lakefs_not_configured_fails_closed(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "LAKECTL_SERVER_ENDPOINT_URL",
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID",
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    decision = evaluate_gate(["lakefs://lake/" + "a" * 64], home=env.home)
    assert _codes(decision)[0] == "store-unreachable"
    assert "not configured" in decision.reasons[0].message


@pytest.mark.sqlite_only  # lakeFS: the gate's reading of the home is covered
def test_lakefs_untrusted_banned_and_unknown_license_all_listed(
    env: Env, lakefs: tuple[LakeFSStore, FakeLakeFS], tmp_path: Path
) -> None:
    store, _ = lakefs
    stranger = signing.generate_key(tmp_path / "stranger-keys")
    other = Recorder(env.recorder.ledger, stranger, origin=env.home.origin)  # shares the ledger
    env.ingest(env.data / "docs", source="file://docs", license="LicenseRef-x", recorder=other)
    snap = commit_snapshot(env.recorder, store, "lake", "main", env.data / "docs", index=env.index)
    policy = Policy.from_toml(_combined_policy(), source="combined")
    decision = evaluate_gate(
        [f"lakefs://lake/{snap.commit_id}"],
        home=env.home,
        policy=policy,
        open_store=lambda uri: store,
    )
    assert not decision.allowed
    assert "untrusted-key" in _codes(decision)
    assert len([r for r in decision.reasons if r.code == "uncovered"]) == 3
    rules = {r.rule_id for r in decision.reasons if r.code == "policy"}
    assert rules == {"signed-ingest", "covered-objects", "known-license", "banned-sources"}
    assert decision.inputs[0].store == "lakefs"
    assert decision.vsa is not None
    with env.home.open_ledger() as ledger:
        _, statement = decode_entry(ledger.entry(decision.vsa.log_index))
    assert statement["predicate"]["verificationResult"] == "FAILED"
    assert statement["predicate"]["resourceUri"] == f"lakefs://lake/{snap.commit_id}"


# -- objects written by transform steps: the gate walks the step back to ingest records --------


def _ingest_docs(env: Env, *, source: str = "https://example.org/docs") -> Attestation:
    request = IngestRequest(source=source, license="CC-BY-4.0")
    return ingest_path(env.recorder, env.data / "docs", request, index=env.index).attestation


def _clean(
    env: Env,
    out: Path,
    inputs: list[Artifact | Attestation],
    *,
    name: str = "clean",
    recorder: Recorder | None = None,
) -> tuple[Path, Attestation]:
    """A step that reads the docs and writes one cleaned file under ``out``, recorded."""
    out.mkdir(parents=True, exist_ok=True)
    cleaned = out / f"{name}.txt"
    docs = sorted((env.data / "docs").iterdir())
    cleaned.write_text(name + "\n" + "".join(p.read_text().lower() for p in docs))
    step = record_step(
        recorder or env.recorder, name, inputs=inputs, outputs=[Artifact.from_path(cleaned)]
    )
    return cleaned, step


def _docs_files() -> list[Artifact]:
    return [Artifact.from_path(p) for p in sorted((DEMO_DATA / "docs").iterdir())]


@pytest.mark.parametrize("form", ["attestation", "artifacts"])
def test_object_written_by_a_step_is_allowed_through_it(
    env: Env, backend: Backend, tmp_path: Path, form: str
) -> None:
    ingest = _ingest_docs(env)
    inputs: list[Artifact | Attestation] = [ingest] if form == "attestation" else [*_docs_files()]
    _, step = _clean(env, tmp_path / "out", inputs)
    snap = backend.snapshot(tmp_path / "out", prefix="clean")
    # The snapshot links the object to the step that wrote it, with its kind.
    [obj] = snap.objects
    assert obj.records == (step.log_index,)
    _, snapshot_statement = decode_entry(env.recorder.ledger.entry(snap.log_index))
    [derived] = snapshot_statement["predicate"]["derivedFrom"]
    assert derived["annotations"] == {
        "logIndex": step.log_index,
        "predicateType": SLSA_PROVENANCE_V1,
    }
    assert derived["digest"] == {"sha256": step.envelope_sha256}
    decision = backend.gate(backend.uri(snap.commit_id, "clean"))
    assert decision.allowed, decision.reasons
    [facts] = decision.inputs
    assert facts.uncovered == ()
    assert [(r.log_index, r.license, r.source_uri, r.verified) for r in facts.ingests] == [
        (ingest.log_index, "CC-BY-4.0", "https://example.org/docs", True)
    ]
    assert [(s.log_index, s.name, s.verified, s.key_status) for s in facts.steps] == [
        (step.log_index, "clean", True, "active")
    ]
    assert decision.vsa is not None
    _, vsa = decode_entry(env.recorder.ledger.entry(decision.vsa.log_index))
    assert {a["annotations"]["logIndex"] for a in vsa["predicate"]["inputAttestations"]} == {
        ingest.log_index,
        step.log_index,
        snap.log_index,
    }
    # A policy on licenses sees the ingest's license through the step.
    only_mit = Policy.from_toml(
        """
        [[rule]]
        id = "mit-only"
        message = "MIT only"
        expr = 'inputs.all(i, i.ingests.all(r, r.license == "MIT"))'
        """
    )
    refused = backend.gate(backend.uri(snap.commit_id, "clean"), policy=only_mit)
    assert [(r.code, r.rule_id) for r in refused.reasons] == [("policy", "mit-only")]


def test_a_chain_of_steps_is_walked_to_the_ingest(
    env: Env, backend: Backend, tmp_path: Path
) -> None:
    ingest = _ingest_docs(env)
    cleaned, clean = _clean(env, tmp_path / "a", [ingest])
    _, dedupe = _clean(env, tmp_path / "b", [Artifact.from_path(cleaned)], name="dedupe")
    snap = backend.snapshot(tmp_path / "b")
    decision = backend.gate(backend.uri(snap.commit_id))
    assert decision.allowed, decision.reasons
    [facts] = decision.inputs
    assert [s.log_index for s in facts.steps] == [dedupe.log_index, clean.log_index]
    assert [r.log_index for r in facts.ingests] == [ingest.log_index]


def test_step_with_an_unrecorded_input_is_refused_naming_it(
    env: Env, backend: Backend, tmp_path: Path
) -> None:
    ingest = _ingest_docs(env)
    notes = tmp_path / "notes.txt"
    notes.write_text("scraped, never ingested\n")
    _, step = _clean(env, tmp_path / "out", [ingest, Artifact.from_path(notes)])
    snap = backend.snapshot(tmp_path / "out")
    decision = backend.gate(backend.uri(snap.commit_id))
    assert not decision.allowed
    [missing] = [r for r in decision.reasons if r.code == "step-input"]
    assert f"transform step record {step.log_index} (clean)" in missing.message
    assert "'notes.txt'" in missing.message
    assert "no record covers its content" in missing.message
    uncovered = [r for r in decision.reasons if r.code == "uncovered"]
    assert [r.message.split(":")[0] for r in uncovered] == ["clean.txt"]
    assert decision.inputs[0].uncovered == ("clean.txt",)
    assert "covered-objects" in {r.rule_id for r in decision.reasons if r.code == "policy"}


def test_step_signed_by_an_untrusted_key_is_refused(
    env: Env, backend: Backend, tmp_path: Path
) -> None:
    ingest = _ingest_docs(env)
    stranger = signing.generate_key(tmp_path / "stranger-keys")
    other = Recorder(env.recorder.ledger, stranger, origin=env.home.origin)
    _, step = _clean(env, tmp_path / "out", [ingest], recorder=other)
    snap = backend.snapshot(tmp_path / "out")
    decision = backend.gate(backend.uri(snap.commit_id))
    assert not decision.allowed
    [untrusted] = [r for r in decision.reasons if r.code == "untrusted-key"]
    assert untrusted.message.startswith(f"transform step record {step.log_index}:")
    assert decision.inputs[0].uncovered == ("clean.txt",)
    [facts] = decision.inputs[0].steps
    assert (facts.log_index, facts.verified, facts.key_status) == (step.log_index, False, "unknown")
    rules = {r.rule_id for r in decision.reasons if r.code == "policy"}
    assert rules == {"signed-ingest", "covered-objects"}


def test_banned_source_behind_a_step_is_refused_with_the_rule_id(
    env: Env, backend: Backend, tmp_path: Path
) -> None:
    ingest = _ingest_docs(env, source="file://docs")
    _clean(env, tmp_path / "out", [ingest])
    snap = backend.snapshot(tmp_path / "out")
    decision = backend.gate(backend.uri(snap.commit_id), policy=Policy.load(BANNED))
    assert not decision.allowed
    assert [(r.code, r.rule_id) for r in decision.reasons] == [("policy", "banned-sources")]
    assert backend.gate(backend.uri(snap.commit_id)).allowed  # the default has no such rule


def test_step_that_read_a_snapshot_is_walked_through_it(
    env: Env, backend: Backend, tmp_path: Path
) -> None:
    ingest = _ingest_docs(env)
    raw = backend.snapshot(prefix="raw")
    _, step = _clean(env, tmp_path / "out", [raw.attestation])
    snap = backend.snapshot(tmp_path / "out", prefix="clean")
    decision = backend.gate(backend.uri(snap.commit_id, "clean"))
    assert decision.allowed, decision.reasons
    [facts] = decision.inputs
    assert [r.log_index for r in facts.ingests] == [ingest.log_index]
    assert [(s.log_index, s.predicate_type) for s in facts.steps] == [
        (step.log_index, SLSA_PROVENANCE_V1),
        (raw.log_index, SNAPSHOT_V1),
    ]


def test_step_that_read_a_snapshot_with_an_uncovered_object_is_refused(
    env: Env, backend: Backend, tmp_path: Path
) -> None:
    _ingest_docs(env)
    (env.data / "docs" / "late.txt").write_text("never ingested\n")
    raw = backend.snapshot(prefix="raw")
    _, step = _clean(env, tmp_path / "out", [raw.attestation])
    snap = backend.snapshot(tmp_path / "out", prefix="clean")
    decision = backend.gate(backend.uri(snap.commit_id, "clean"))
    assert not decision.allowed
    messages = [r.message for r in decision.reasons if r.code == "step-input"]
    assert any(f"snapshot record {raw.log_index}" in m and "raw/late.txt" in m for m in messages)
    assert any(f"transform step record {step.log_index}" in m for m in messages)
    assert decision.inputs[0].uncovered == ("clean/clean.txt",)


def test_step_input_that_is_not_the_attested_record_is_refused(env: Env, tmp_path: Path) -> None:
    ingest = _ingest_docs(env)
    wrong = replace(ingest, envelope_sha256="0" * 64)
    _, step = _clean(env, tmp_path / "out", [wrong])
    snap = commit_snapshot(
        env.recorder, env.store, "demo", "main", tmp_path / "out", index=env.index
    )
    decision = evaluate_gate([env.uri(snap.commit_id)], home=env.home)
    codes = _codes(decision)
    assert "record-mismatch" in codes
    [mismatch] = [r for r in decision.reasons if r.code == "record-mismatch"]
    assert f"log entry {ingest.log_index}" in mismatch.message
    assert f"transform step record {step.log_index}" in mismatch.message
    assert "step-input" in codes
    assert decision.inputs[0].ingests == ()


def test_step_that_reads_only_its_own_output_reaches_no_ingest(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "same.txt").write_text("read and written unchanged\n")
    artifact = Artifact.from_path(out / "same.txt")
    step = record_step(env.recorder, "noop", inputs=[artifact], outputs=[artifact])
    snap = commit_snapshot(env.recorder, env.store, "demo", "main", out, index=env.index)
    decision = evaluate_gate([env.uri(snap.commit_id)], home=env.home)
    assert not decision.allowed
    [loop] = [r for r in decision.reasons if r.code == "step-input"]
    assert f"transform step record {step.log_index} (noop)" in loop.message
    assert decision.inputs[0].uncovered == ("same.txt",)


def test_lineage_deeper_than_the_bound_is_refused(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import prov_core.custody

    ingest = _ingest_docs(env)
    cleaned, _ = _clean(env, tmp_path / "a", [ingest])
    _, dedupe = _clean(env, tmp_path / "b", [Artifact.from_path(cleaned)], name="dedupe")
    snap = commit_snapshot(env.recorder, env.store, "demo", "main", tmp_path / "b", index=env.index)
    assert evaluate_gate([env.uri(snap.commit_id)], home=env.home).allowed
    monkeypatch.setattr(prov_core.custody, "MAX_STEP_DEPTH", 0)
    decision = evaluate_gate([env.uri(snap.commit_id)], home=env.home)
    assert not decision.allowed
    [deep] = [r for r in decision.reasons if r.code == "lineage-too-deep"]
    assert "more than 0 transform steps" in deep.message
    assert any(
        r.code == "step-input" and f"transform step record {dedupe.log_index}" in r.message
        for r in decision.reasons
    )


def test_refusal_message_names_the_record_and_every_reason() -> None:
    from prov_core.errors import refusal_message

    text = refusal_message("train", ["unpinned: a", "policy [licenses]: b"], 7)
    assert text == (
        "the training gate refused the inputs of train (the refusal is recorded at log "
        "index 7):\n- unpinned: a\n- policy [licenses]: b"
    )
    assert "could not be recorded" in refusal_message("train", ["x"], None)
