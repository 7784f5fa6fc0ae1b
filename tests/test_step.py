"""The step API: what adapters call to record a lineage node."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from prov_core.errors import CanonicalizationError, InputError
from prov_core.home import init_home, open_home
from prov_core.ledger.checkpoint import NoteSigner
from prov_core.ledger.memory import MemoryLedger
from prov_core.ledger.merkle import check_inclusion, leaf_hash, tree_root
from prov_core.signing import Ed25519Signer, Envelope, verify_envelope
from prov_core.statement import SLSA_PROVENANCE_V1, Statement, Subject
from prov_core.step import (
    TRAINING_BUILD_TYPE,
    Artifact,
    CodeIdentity,
    Recorder,
    git_commit,
    record_step,
)
from prov_core.trust import TrustStore


@pytest.fixture
def recorder() -> Recorder:
    signer = Ed25519Signer.generate()
    ledger = MemoryLedger("test.local/log", NoteSigner("test.local/log", signer.private_key))
    return Recorder(ledger, signer, origin="test.local/log")


def _statement(recorder: Recorder, index: int) -> Statement:
    envelope = Envelope.parse(recorder.ledger.entry(index))
    return Statement.parse(envelope.payload)


def test_step_links_inputs_by_attestation(recorder: Recorder) -> None:
    raw = Artifact.from_bytes("raw.csv", b"a,b\n1,2\n")
    first = record_step(recorder, "ingest", outputs=[raw])
    clean = Artifact.from_bytes("clean.csv", b"a,b\n1,2\n")
    second = record_step(
        recorder,
        "clean",
        inputs=[first],
        outputs=[clean],
        parameters={"dropna": True, "threshold": 3},
        orchestrator={"name": "dagster", "run_id": "r-1", "asset": "clean", "attempt": 1},
    )
    assert (first.log_index, second.log_index) == (0, 1)
    statement = _statement(recorder, 1)
    assert statement.predicate_type == SLSA_PROVENANCE_V1
    (dep,) = statement.predicate["buildDefinition"]["resolvedDependencies"]
    assert dep["digest"] == {"sha256": first.envelope_sha256}
    assert dep["annotations"]["logIndex"] == 0
    assert dep["uri"] == "provgate+log://test.local/log/0"
    assert statement.predicate["runDetails"]["metadata"]["invocationId"] == "r-1"
    assert statement.predicate["buildDefinition"]["externalParameters"] == {
        "step": "clean",
        "parameters": {"dropna": True, "threshold": 3},
    }
    assert [s.sha256 for s in statement.subjects] == [clean.sha256]
    byproduct = statement.predicate["runDetails"]["byproducts"][0]
    assert byproduct["annotations"]["blake3"] == clean.blake3


def test_attestation_digest_is_the_stored_leaf(recorder: Recorder) -> None:
    att = record_step(recorder, "s", outputs=[Artifact.from_bytes("o", b"x")])
    leaf = recorder.ledger.entry(att.log_index)
    assert hashlib.sha256(leaf).hexdigest() == att.envelope_sha256
    size = recorder.ledger.size()
    proof = recorder.ledger.prove_inclusion(att.log_index, size)
    check_inclusion(att.log_index, size, leaf_hash(leaf), proof, tree_root(size, recorder.ledger))


def test_envelope_verifies_against_trust(recorder: Recorder) -> None:
    att = record_step(recorder, "s", outputs=[Artifact.from_bytes("o", b"x")])
    trust = TrustStore.empty()
    trust.add(recorder.signer.public_key_pem())
    envelope = Envelope.parse(recorder.ledger.entry(att.log_index))
    assert verify_envelope(envelope, trust) == envelope.payload


def test_record_many_is_one_append(recorder: Recorder) -> None:
    from prov_core.step import _StepSpec, step_statement

    specs = [
        step_statement(
            _StepSpec(
                name=f"s{i}",
                inputs=[],
                outputs=[Artifact.from_bytes(f"o{i}", bytes([i]))],
                code=CodeIdentity(),
                parameters={},
                environment={},
                orchestrator={"name": "test"},
                started_on=None,
                finished_on=None,
                build_type=TRAINING_BUILD_TYPE,
            )
        )
        for i in range(5)
    ]
    checkpoints_before = len(list(recorder.ledger.checkpoints()))
    atts = recorder.record_many(specs)
    assert [a.log_index for a in atts] == [0, 1, 2, 3, 4]
    assert len(list(recorder.ledger.checkpoints())) == checkpoints_before + 1


def test_artifact_from_path_matches_digest(tmp_path: Path) -> None:
    from prov_core.digest import digest_path

    f = tmp_path / "model.bin"
    f.write_bytes(b"\x00" * 1000)
    art = Artifact.from_path(f)
    tree = digest_path(f)
    assert (art.sha256, art.blake3, art.name) == (tree.sha256_subject, tree.blake3, "model.bin")
    assert art.uri == f.resolve().as_uri()
    # in-memory bytes named like the file digest the same way
    assert Artifact.from_bytes("model.bin", b"\x00" * 1000).sha256 == art.sha256


def test_step_without_inputs_or_outputs_is_refused(recorder: Recorder) -> None:
    with pytest.raises(InputError, match="neither inputs nor outputs"):
        record_step(recorder, "nothing")
    assert recorder.ledger.size() == 0


def test_non_json_parameters_are_refused_before_anything_is_appended(recorder: Recorder) -> None:
    out = [Artifact.from_bytes("o", b"x")]
    with pytest.raises(CanonicalizationError):
        record_step(recorder, "s", outputs=out, parameters={"lr": float("nan")})
    with pytest.raises(CanonicalizationError):
        record_step(recorder, "s", outputs=out, parameters={"when": datetime.now(UTC)})
    assert recorder.ledger.size() == 0


def test_external_parameters_sit_beside_the_steps_own_and_cannot_replace_them(
    recorder: Recorder,
) -> None:
    out = [Artifact.from_bytes("o", b"x")]
    att = record_step(recorder, "s", outputs=out, parameters={"k": 1}, external={"extra": [1]})
    build = _statement(recorder, att.log_index).predicate["buildDefinition"]
    assert build["externalParameters"] == {"step": "s", "parameters": {"k": 1}, "extra": [1]}
    for key in ("step", "parameters"):
        with pytest.raises(InputError, match=f"external parameter '{key}' is the step's own"):
            record_step(recorder, "s", outputs=out, external={key: "forged"})
    assert recorder.ledger.size() == 1


def test_float_parameters_canonicalize(recorder: Recorder) -> None:
    att = record_step(
        recorder, "train", outputs=[Artifact.from_bytes("m", b"w")], parameters={"lr": 3e-7}
    )
    assert b'"lr":3e-7' in _statement(recorder, att.log_index).canonical_bytes()


def test_code_identity_finds_git_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    (repo / "pkg" / "f.py").write_text("x = 1\n")
    run("add", ".")
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    assert git_commit(repo / "pkg") == head
    run("pack-refs", "--all")  # the ref now lives only in packed-refs
    git_commit.cache_clear()
    assert git_commit(repo / "pkg") == head
    assert git_commit(tmp_path) is None

    def train() -> None: ...

    ident = CodeIdentity.of(train, version="v2")
    assert ident.function is not None
    assert ident.function.endswith("test_code_identity_finds_git_commit.<locals>.train")
    assert ident.version == "v2"


def test_recorder_from_home_with_env_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PROVGATE_SIGNING_KEY hands a worker its key; records verify if the key is trusted."""
    home, _ = init_home(tmp_path / "home")
    worker = Ed25519Signer.generate()
    trust = home.trust()
    trust.add(worker.public_key_pem(), note_name=home.origin)
    trust.save(home.trust_path)
    monkeypatch.setenv("PROVGATE_SIGNING_KEY", worker._private_pem().decode())
    with Recorder.from_home(open_home(tmp_path / "home")) as rec:
        att = record_step(rec, "s", outputs=[Artifact.from_bytes("o", b"x")])
        envelope = Envelope.parse(rec.ledger.entry(att.log_index))
    assert envelope.signatures[0].keyid == worker.keyid
    from prov_core.verify import verify_home

    assert verify_home(open_home(tmp_path / "home")).ok


def test_step_outputs_are_found_by_content(tmp_path: Path) -> None:
    """The content index reads step outputs from the ledger: recording writes no index."""
    from prov_core.content_index import ContentIndex

    with ContentIndex(tmp_path / "index.sqlite") as index:
        signer = Ed25519Signer.generate()
        ledger = MemoryLedger("test.local/log", NoteSigner("test.local/log", signer.private_key))
        recorder = Recorder(ledger, signer, origin="test.local/log")
        a = Artifact.from_bytes("a.txt", b"alpha")
        b = Artifact.from_bytes("b.txt", b"beta")
        no_b3 = Artifact(name="opaque", sha256="0" * 64)
        att = record_step(recorder, "clean", inputs=[a], outputs=[b, no_b3])
        assert index.covering([b.blake3 or ""]) == {}  # nothing written at record time
        covering = index.covering([a.blake3 or "", b.blake3 or ""], ledger=ledger)
        assert list(covering) == [b.blake3]  # outputs only, never inputs
        [ref] = covering[b.blake3 or ""]
        assert (ref.log_index, ref.envelope_sha256, ref.predicate_type) == (
            att.log_index,
            att.envelope_sha256,
            SLSA_PROVENANCE_V1,
        )
        assert index.catch_up(ledger) == 0  # nothing new since
        c = Artifact.from_bytes("c.txt", b"gamma")
        later = record_step(recorder, "more", inputs=[att], outputs=[c])
        assert [
            r.log_index for r in index.covering([c.blake3 or ""], ledger=ledger)[c.blake3 or ""]
        ] == [later.log_index]
        # An output BLAKE3 that is not a digest is refused before anything is recorded.
        bad = Artifact(name="bad", sha256="0" * 64, blake3="not-hex")
        with pytest.raises(InputError, match="not 64 lowercase hex"):
            record_step(recorder, "clean", outputs=[bad])
        assert recorder.ledger.size() == 2


def test_step_outputs_found_across_processes_through_the_home(tmp_path: Path) -> None:
    home, _ = init_home(tmp_path / "home")
    with Recorder.from_home(home) as recorder:
        out = Artifact.from_bytes("out.txt", b"written by a step")
        record_step(recorder, "write", outputs=[out])
    with home.open_index() as index, home.open_ledger() as ledger:
        assert list(index.covering([out.blake3 or ""], ledger=ledger)) == [out.blake3]


def test_record_many_with_signing_workers_writes_the_same_bytes() -> None:
    """Large batches are signed partly in worker processes; the records are byte-identical."""
    from prov_core.step import POOL_THRESHOLD, _StepSpec, step_statement

    signer = Ed25519Signer.generate()
    statements = [
        step_statement(
            _StepSpec(
                name="clean",
                inputs=[Artifact.from_bytes(f"in{i}", b"i%d" % i)],
                outputs=[Artifact.from_bytes(f"out{i}", b"o%d" % i)],
                code=CodeIdentity(),
                parameters={"i": i, "lr": 0.5 if i % 7 == 0 else 1},  # some take the exact path
                environment={},
                orchestrator={"name": "test", "run_id": str(i)},
                started_on=None,
                finished_on=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                build_type=TRAINING_BUILD_TYPE,
            )
        )
        for i in range(POOL_THRESHOLD * 3)
    ]
    results = []
    for workers in (0, 2):
        ledger = MemoryLedger("test.local/log", NoteSigner("test.local/log", signer.private_key))
        with Recorder(ledger, signer, origin="test.local/log", signing_workers=workers) as rec:
            atts = rec.record_many(statements)
            atts += rec.record_many(statements)
            assert (rec._pool is not None) == (workers > 0)
            results.append((atts, [leaf for _, leaf in ledger.entries()]))
        assert rec._pool is None  # closed
    assert results[0] == results[1]
    atts, leaves = results[0]
    assert [a.log_index for a in atts] == list(range(len(leaves)))
    assert [a.envelope_sha256 for a in atts] == [hashlib.sha256(x).hexdigest() for x in leaves]


def test_record_many_with_a_failing_statement_appends_nothing() -> None:
    from prov_core.step import POOL_THRESHOLD

    signer = Ed25519Signer.generate()
    ledger = MemoryLedger("test.local/log", NoteSigner("test.local/log", signer.private_key))
    out = Artifact.from_bytes("o", b"x")
    good = Statement([_subject(out)], SLSA_PROVENANCE_V1, {"i": 1})
    bad = Statement([_subject(out)], SLSA_PROVENANCE_V1, {"x": float("nan")})
    with Recorder(ledger, signer, signing_workers=1) as rec:
        batch = [good] * POOL_THRESHOLD + [bad] + [good] * 10
        with pytest.raises(CanonicalizationError):
            rec.record_many(batch)
        assert ledger.size() == 0
        assert len(rec.record_many([good] * POOL_THRESHOLD)) == POOL_THRESHOLD


def _subject(a: Artifact) -> Subject:
    return Subject(a.name, a.sha256)


def test_signing_workers_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from prov_core.errors import ConfigError
    from prov_core.step import ENV_SIGNING_WORKERS

    signer = Ed25519Signer.generate()
    ledger = MemoryLedger("test.local/log", NoteSigner("test.local/log", signer.private_key))
    monkeypatch.setenv(ENV_SIGNING_WORKERS, "0")
    assert Recorder(ledger, signer)._pool_workers == 0
    monkeypatch.setenv(ENV_SIGNING_WORKERS, " 3 ")
    assert Recorder(ledger, signer)._pool_workers == 3
    assert Recorder(ledger, signer, signing_workers=1)._pool_workers == 1
    monkeypatch.delenv(ENV_SIGNING_WORKERS)
    assert 0 <= Recorder(ledger, signer)._pool_workers <= 2
    for bad in ("-1", "two", "\u00b2"):
        monkeypatch.setenv(ENV_SIGNING_WORKERS, bad)
        with pytest.raises(ConfigError, match=ENV_SIGNING_WORKERS):
            Recorder(ledger, signer)


def test_identity_artifact_names_a_try_that_wrote_nothing() -> None:

    a = Artifact.identity("airflow-task:dag/t/run/-1/1")
    assert a.sha256 == hashlib.sha256(b"airflow-task:dag/t/run/-1/1").hexdigest()
    assert a.blake3 is None
    assert Artifact.identity("x") != Artifact.identity("y")
    with pytest.raises(InputError):
        Artifact.identity("")
