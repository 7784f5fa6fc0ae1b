"""The training gate on the real LocalStore, the real SQLite ledger and the fake lakeFS."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from prov_core import signing
from prov_core.content_index import ContentIndex, RecordRef
from prov_core.errors import GateRefused, InputError
from prov_core.gate import CUSTODY_LEVEL, VERIFIER_ID, GateDecision, evaluate_gate, gated, require
from prov_core.home import Home, init_home
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.policy import Policy
from prov_core.records import decode_entry
from prov_core.snapshot_record import SnapshotResult, commit_snapshot
from prov_core.snapshots.base import SnapshotURI
from prov_core.snapshots.lakefs import LakeFSStore
from prov_core.snapshots.local import LocalStore
from prov_core.statement import INGEST_V1, SLSA_VSA_V1
from prov_core.step import Recorder
from prov_core.trust import TrustStore
from prov_core.verify import verify_home

from .conftest import DEMO_DATA, REPO, require_services
from .snapshots.lakefs_server import FakeLakeFS, load_spec, spec_path

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
def env(tmp_path: Path) -> Iterator[Env]:
    home, _ = init_home(tmp_path / "home")
    data = tmp_path / "data"
    shutil.copytree(DEMO_DATA, data)
    with (
        Recorder.from_home(home) as recorder,
        home.open_store() as store,
        home.open_index() as index,
    ):
        store.create_repository("demo", "main")
        yield Env(home, recorder, store, index, data)


def _codes(decision: GateDecision) -> list[str]:
    return [r.code for r in decision.reasons]


def _second_key(env: Env) -> signing.Ed25519Signer:
    """A second trusted key (retired, so the home keeps signing with its own)."""
    signer = signing.generate_key(env.home.keys_dir)
    trust = env.home.trust()
    trust.add(signer, note_name=env.home.origin, status="retired")
    trust.save(env.home.trust_path)
    return signer


def test_everything_right_is_allowed_and_recorded(env: Env) -> None:
    ingest = env.ingest(env.data / "docs")
    snap = env.snapshot(prefix="docs")
    decision = env.gate(env.uri(snap.commit_id, "docs"))
    assert decision.allowed, decision.reasons
    assert decision.reasons == []
    assert decision.policy_digest == Policy.default().digest
    [facts] = decision.inputs
    assert facts.pinned
    assert facts.commit == snap.commit_id
    assert facts.objects == 3
    assert facts.uncovered == ()
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
    assert p["resourceUri"] == env.uri(snap.commit_id, "docs")
    assert {a["annotations"]["logIndex"] for a in p["inputAttestations"]} == {
        ingest,
        snap.log_index,
    }
    assert p["provgateInputs"] == [
        {
            "uri": env.uri(snap.commit_id, "docs"),
            "commit": snap.commit_id,
            "pinned": True,
            "snapshotRecord": snap.log_index,
        }
    ]
    assert statement["subject"][0]["digest"]["sha256"] == snap.manifest.sha256_subject
    assert verify_home(env.home).ok
    # require() returns the decision; the decorator runs the function.
    assert require([env.uri(snap.commit_id)], home=env.home).allowed

    @gated(inputs=[env.uri(snap.commit_id)], home=env.home)
    def train(x: int) -> int:
        return x + 1

    assert train(1) == 2


def test_branch_ref_is_refused_naming_its_commit(env: Env) -> None:
    env.ingest(env.data / "docs")
    snap = env.snapshot()
    decision = env.gate(env.uri("main"))
    assert not decision.allowed
    unpinned = [r for r in decision.reasons if r.code == "unpinned"]
    assert len(unpinned) == 1
    assert "'main'" in unpinned[0].message
    assert snap.commit_id in unpinned[0].message
    assert unpinned[0].input == env.uri("main")
    # The default policy's pinned-inputs rule says so too, with its id.
    assert [r.rule_id for r in decision.reasons if r.code == "policy"] == ["pinned-inputs"]
    assert decision.inputs[0].commit == snap.commit_id
    assert not decision.inputs[0].pinned
    # A tag is not a pin either.
    env.store.tag("demo", "v1", snap.commit_id)
    assert "unpinned" in _codes(env.gate(env.uri("v1")))


def test_blob_edited_after_commit_is_detected(env: Env) -> None:
    env.ingest(env.data / "docs")
    snap = env.snapshot()
    faq = next(o for o in snap.objects if o.path == "faq.md")
    blob = env.store.root / "objects" / faq.blake3[:2] / faq.blake3[2:]
    os.chmod(blob, 0o644)
    blob.write_bytes(b"edited on disk after the commit")
    decision = env.gate(env.uri(snap.commit_id))
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


def test_untrusted_ingest_signer_is_refused(env: Env, tmp_path: Path) -> None:
    stranger = signing.generate_key(tmp_path / "stranger-keys")
    other = Recorder(env.recorder.ledger, stranger, origin=env.home.origin)  # shares the ledger
    env.ingest(env.data / "docs", recorder=other)
    snap = env.snapshot()
    decision = env.gate(env.uri(snap.commit_id))
    assert not decision.allowed
    untrusted = [r for r in decision.reasons if r.code == "untrusted-key"]
    assert untrusted
    assert "not in the trust store" in untrusted[0].message
    assert set(_codes(decision)) >= {"untrusted-key", "uncovered", "policy"}
    rules = {r.rule_id for r in decision.reasons if r.code == "policy"}
    assert rules == {"signed-ingest", "covered-objects"}
    assert decision.inputs[0].ingests[0].key_status == "unknown"
    assert not decision.inputs[0].ingests[0].verified


def test_revoked_ingest_signer_is_refused_with_the_reason(env: Env) -> None:
    second = _second_key(env)
    other = Recorder(env.recorder.ledger, second, origin=env.home.origin)  # shares the ledger
    env.ingest(env.data / "docs", recorder=other)
    snap = env.snapshot()
    assert env.gate(env.uri(snap.commit_id)).allowed  # before the revocation
    trust = env.home.trust()
    trust.revoke(second.keyid, "laptop stolen")
    trust.save(env.home.trust_path)
    decision = env.gate(env.uri(snap.commit_id))
    assert not decision.allowed
    revoked = [r for r in decision.reasons if r.code == "revoked-key"]
    assert revoked
    assert "laptop stolen" in revoked[0].message
    rules = {r.rule_id for r in decision.reasons if r.code == "policy"}
    assert "no-revoked-key" in rules
    assert decision.inputs[0].ingests[0].key_status == "revoked"


def test_banned_source_is_refused_with_the_rule_id(env: Env) -> None:
    env.ingest(env.data / "docs", source="file://docs")
    snap = env.snapshot()
    policy = Policy.load(BANNED)
    decision = env.gate(env.uri(snap.commit_id), policy=policy)
    assert not decision.allowed
    assert [(r.code, r.rule_id) for r in decision.reasons] == [("policy", "banned-sources")]
    assert decision.policy_digest == policy.digest
    assert env.gate(env.uri(snap.commit_id)).allowed  # the default policy has no such rule


def test_inline_policy_on_a_source_pattern(env: Env) -> None:
    env.ingest(env.data / "docs", source="https://books3.example/dump")
    snap = env.snapshot()
    policy = Policy.from_toml(
        """
        [[rule]]
        id = "no-books3"
        message = "books3 is banned"
        expr = 'inputs.all(i, i.ingests.all(r, !r.source_uri.contains("books3")))'
        """
    )
    decision = env.gate(env.uri(snap.commit_id), policy=policy)
    assert [(r.rule_id, r.message) for r in decision.reasons] == [("no-books3", "books3 is banned")]


def test_unknown_license_is_refused(env: Env) -> None:
    env.ingest(env.data / "docs", license="LicenseRef-x")
    snap = env.snapshot()
    decision = env.gate(env.uri(snap.commit_id))
    assert [(r.code, r.rule_id) for r in decision.reasons] == [("policy", "known-license")]


def test_uncovered_object_is_refused_naming_it(env: Env) -> None:
    env.ingest(env.data / "docs")
    (env.data / "docs" / "late.txt").write_text("never ingested\n")
    snap = env.snapshot()
    decision = env.gate(env.uri(snap.commit_id))
    uncovered = [r for r in decision.reasons if r.code == "uncovered"]
    assert [r.message.split(":")[0] for r in uncovered] == ["late.txt"]
    assert decision.inputs[0].uncovered == ("late.txt",)
    assert "covered-objects" in {r.rule_id for r in decision.reasons}
    # Narrowed to a path whose objects are all covered, the same commit is allowed.
    assert env.gate(env.uri(snap.commit_id, "faq.md")).allowed


def test_object_committed_outside_provgate_is_named(env: Env) -> None:
    env.ingest(env.data / "docs")
    snap = env.snapshot(prefix="docs")
    env.store.write("demo", "main", "other/sneaky.txt", b"outside the snapshot prefix")
    commit = env.store.commit("demo", "main", "outside provgate")
    decision = env.gate(env.uri(commit.id))
    assert "no-snapshot-record" in _codes(decision)
    assert env.gate(env.uri(snap.commit_id)).allowed


def test_single_file_coverage_claim_is_rechecked(env: Env) -> None:
    faq = env.ingest(env.data / "docs" / "faq.md")
    snap = env.snapshot()
    # Point the index at the single-file ingest for another object's bytes: the
    # snapshot record then (wrongly) names it; the gate re-checks the claim.
    policy_md = next(o for o in snap.objects if o.path == "policy.md")
    assert policy_md.records == ()
    leaf = env.recorder.ledger.entry(faq)
    env.index.add_content(
        [policy_md.blake3], RecordRef(faq, hashlib.sha256(leaf).hexdigest(), INGEST_V1)
    )
    snap2 = env.snapshot(prefix="again")
    decision = env.gate(env.uri(snap2.commit_id))
    mismatch = [r for r in decision.reasons if r.code == "coverage-mismatch"]
    assert len(mismatch) == 1
    assert mismatch[0].message.startswith("again/policy.md:")
    assert "again/policy.md" in decision.inputs[0].uncovered


def test_commit_without_a_record_is_refused(env: Env) -> None:
    env.store.write("demo", "main", "x.txt", b"x")
    commit = env.store.commit("demo", "main", "outside provgate")
    decision = env.gate(env.uri(commit.id))
    assert _codes(decision)[0] == "no-snapshot-record"
    assert "no snapshot record" in decision.reasons[0].message


def test_several_failures_are_all_listed(env: Env) -> None:
    env.ingest(env.data / "docs", source="file://docs", license="LicenseRef-x")
    (env.data / "docs" / "late.txt").write_text("never ingested\n")
    snap = env.snapshot()
    faq = next(o for o in snap.objects if o.path == "faq.md")
    blob = env.store.root / "objects" / faq.blake3[:2] / faq.blake3[2:]
    os.chmod(blob, 0o644)
    blob.write_bytes(b"edited")
    policy = Policy.from_toml(_combined_policy(), source="combined")
    decision = env.gate(env.uri("main"), env.uri("a" * 64), policy=policy)
    codes = set(_codes(decision))
    assert {"unpinned", "content-changed", "uncovered", "not-found", "policy"} <= codes
    rules = {r.rule_id for r in decision.reasons if r.code == "policy"}
    assert rules >= {"pinned-inputs", "covered-objects", "known-license", "banned-sources"}
    inputs = {r.input for r in decision.reasons if r.input}
    assert inputs == {env.uri("main"), env.uri("a" * 64)}
    with pytest.raises(GateRefused) as refused:
        require([env.uri("main")], home=env.home, policy=policy)
    assert len(refused.value.reasons) >= 4
    assert isinstance(refused.value.decision, GateDecision)
    assert refused.value.exit_code == 1


def _combined_policy() -> str:
    from prov_core.policy import DEFAULT_POLICY_TOML

    return DEFAULT_POLICY_TOML + "\n" + BANNED.read_text().replace("version = 1", "")


def test_store_removed_fails_closed(env: Env) -> None:
    env.ingest(env.data / "docs")
    snap = env.snapshot()
    env.store.close()
    shutil.rmtree(env.home.store_path)
    decision = env.gate(env.uri(snap.commit_id))
    assert not decision.allowed
    assert _codes(decision)[0] == "store-unreachable"
    assert "does not exist or was removed" in decision.reasons[0].message
    assert not env.home.store_path.exists()  # the gate created nothing
    assert decision.vsa is not None  # the refusal is still recorded


def test_ledger_unreachable_fails_closed(env: Env) -> None:
    env.ingest(env.data / "docs")
    snap = env.snapshot()
    env.recorder.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{env.home.ledger_path}{suffix}").unlink(missing_ok=True)
    env.home.ledger_path.mkdir()  # a ledger that cannot be opened
    decision = env.gate(env.uri(snap.commit_id))
    assert not decision.allowed
    codes = _codes(decision)
    assert codes[0] == "ledger-unreachable"
    assert "fails closed" in decision.reasons[0].message
    assert "not-recorded" in codes
    assert decision.vsa is None


def test_decorator_blocks_the_wrapped_function(env: Env) -> None:
    env.ingest(env.data / "docs")
    env.snapshot()
    env.store.close()
    calls: list[str] = []

    @gated(inputs=lambda uri: [uri], home=env.home)
    def train(uri: str) -> None:
        calls.append(uri)

    with pytest.raises(GateRefused, match="unpinned"):
        train(env.uri("main"))
    assert calls == []


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
    path = spec_path()
    if path is None:
        reason = "lakeFS OpenAPI spec not found: the fake lakeFS cannot be validated"
        if require_services():
            pytest.fail(reason)
        pytest.skip(reason)
    with (
        FakeLakeFS(ACCESS_KEY, SECRET, load_spec(path)) as server,
        LakeFSStore(server.url, ACCESS_KEY, SECRET) as store,
    ):
        store.create_repository("lake", "main")
        yield store, server
        server.check()


def _lake_gate(env: Env, store: LakeFSStore, *inputs: str) -> GateDecision:
    return evaluate_gate(
        list(inputs),
        home=env.home,
        open_store=lambda uri: store if uri.scheme == "lakefs" else env.home.open_store(),
    )


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


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_lakefs_unreachable_fails_closed(env: Env) -> None:
    port = _closed_port()
    with LakeFSStore(f"http://127.0.0.1:{port}", ACCESS_KEY, SECRET, retries=0) as store:
        decision = _lake_gate(env, store, "lakefs://lake/" + "a" * 64)
    assert not decision.allowed
    assert _codes(decision)[0] == "store-unreachable"
    assert "fails closed" in decision.reasons[0].message


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


def test_unreadable_trust_store_fails_closed(env: Env) -> None:
    env.ingest(env.data / "docs")
    snap = env.snapshot()
    env.home.trust_path.write_text("{not json")
    decision = env.gate(env.uri(snap.commit_id))
    codes = _codes(decision)
    assert codes[0] == "trust-unavailable"
    assert "not-judged" in codes
    assert not decision.allowed
    assert decision.vsa is not None  # the home's signer was already loaded: recorded FAILED
