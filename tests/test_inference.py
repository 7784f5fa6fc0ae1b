"""Inference-time provenance on a real home: ingest, snapshot, gated training, then answers.

Everything is real: the SQLite ledger, the embedded store, the content index,
the training gate's VSA records and the CEL policies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from prov_core.content_index import ContentIndex, RecordRef
from prov_core.digest import digest_bytes
from prov_core.errors import FormatError, InferenceBlocked, InputError
from prov_core.gate import evaluate_gate
from prov_core.home import Home
from prov_core.inference import InferenceTracer, ModelRef, Trace, traced_answer
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.policy import AllOf, Policy
from prov_core.records import decode_entry
from prov_core.snapshot_record import SnapshotResult, commit_snapshot
from prov_core.snapshots.local import LocalStore
from prov_core.statement import INFERENCE_V1, Statement
from prov_core.step import TRAINING_BUILD_TYPE, Artifact, Attestation, Recorder, record_step
from prov_core.verify import verify_home

from .conftest import REPO, demo_home

BANNED = REPO / "examples" / "policies" / "banned-sources.toml"
SCHEMA = REPO / "docs" / "schemas" / "inference-v1.json"
PROMPT = "Which data trained the model? my-secret-account-4711"
ANSWER = "The ledger says: the FAQ and the handbook."
NEVER = Policy.from_toml(
    '[[rule]]\nid = "never"\nmessage = "nothing passes"\nexpr = "false"', source="<never>"
)


@dataclass
class World:
    home: Home
    recorder: Recorder
    store: LocalStore
    index: ContentIndex
    docs: Path
    ingests: dict[str, int]  # file name -> ingest log index
    snap: SnapshotResult
    passed: Attestation  # the gate's VSA, PASSED
    failed: Attestation  # the gate's VSA, FAILED
    model: ModelRef  # trained after a PASSED gate
    bad_model: ModelRef  # trained after a FAILED gate

    def uri(self, name: str = "", commit: str | None = None) -> str:
        path = f"/docs/{name}" if name else ""
        return f"provgate://demo/{commit or self.snap.commit_id}{path}"

    def chunk(self, name: str) -> bytes:
        return (self.docs / name).read_bytes()

    def tracer(self, **kwargs: Any) -> InferenceTracer:
        return InferenceTracer.from_home(self.home, **kwargs)

    def statement(self, attestation: Attestation | None) -> dict[str, Any]:
        assert attestation is not None
        with self.home.open_ledger() as ledger:
            envelope, statement = decode_entry(ledger.entry(attestation.log_index))
        # The strict parser accepts it too.
        Statement.parse(base64.b64decode(envelope["payload"]))
        return statement


def _train(recorder: Recorder, vsa: Attestation, snap: SnapshotResult, weights: bytes) -> ModelRef:
    model = Artifact.from_bytes("model.safetensors", weights)
    training = record_step(
        recorder,
        "train",
        inputs=[vsa, snap.attestation],
        outputs=[model],
        build_type=TRAINING_BUILD_TYPE,
    )
    return ModelRef(model.sha256, training=training, name="support-bot", uri="file:///m")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with demo_home(tmp_path) as (home, recorder, store, index, data):
        docs = data / "docs"
        sources = {
            "faq.md": ("https://example.org/faq", "CC-BY-4.0"),
            "handbook.md": ("https://wiki.example.org/handbook", "MIT"),
            # Allowed when the model was trained; banned later (banned-sources.toml).
            "policy.md": ("https://books3.example/policy", "CC0-1.0"),
        }
        ingests = {}
        for name, (source, license) in sources.items():
            result = ingest_path(
                recorder, docs / name, IngestRequest(source=source, license=license), index=index
            )
            ingests[name] = result.attestation.log_index
        snap = commit_snapshot(recorder, store, "demo", "main", docs, prefix="docs", index=index)
        uri = f"provgate://demo/{snap.commit_id}/docs"
        passed = evaluate_gate([uri], home=home)
        failed = evaluate_gate([uri], home=home, policy=NEVER)
        assert passed.allowed, passed.reasons
        assert not failed.allowed
        assert passed.vsa is not None
        assert failed.vsa is not None
        model = _train(recorder, passed.vsa, snap, b"weights v1")
        bad_model = _train(recorder, failed.vsa, snap, b"weights v2")
        yield World(
            home,
            recorder,
            store,
            index,
            docs,
            ingests,
            snap,
            passed.vsa,
            failed.vsa,
            model,
            bad_model,
        )


def _answer(tracer: InferenceTracer, model: ModelRef, *chunks: tuple[bytes, str]) -> Any:
    with tracer.trace(model, PROMPT) as t:
        for rank, (chunk, uri) in enumerate(chunks):
            t.retrieved(chunk, rank=rank, score=1.0 - rank / 10, snapshot=uri)
        return t.answer(ANSWER)


# --------------------------------------------------------------------------
# What is recorded


def test_allowed_answer_is_recorded_with_digests_and_traced_chunks(world: World) -> None:
    with world.tracer() as tracer, tracer.trace(world.model, PROMPT, invocation_id="q-1") as t:
        t.retrieved(world.chunk("faq.md"), rank=0, score=0.91, snapshot=world.uri("faq.md"))
        # By digest only, with no path: found in the snapshot record by its BLAKE3.
        handbook = digest_bytes(world.chunk("handbook.md"))
        t.retrieved(digest=handbook, rank=1, score=0.5, snapshot=world.uri(), chunk_id="hb#0")
        decision = t.answer(ANSWER)
    assert decision.allowed, decision.reasons
    assert decision.reasons == ()
    assert decision.failed_rules == ()
    assert decision.model.gate == "PASSED"
    assert decision.model.gate_verified
    assert [c.covered for c in decision.chunks] == [True, True]
    st = world.statement(decision.attestation)
    assert st["predicateType"] == INFERENCE_V1
    answer_sha = hashlib.sha256(ANSWER.encode()).hexdigest()
    assert st["subject"] == [{"name": "answer", "digest": {"sha256": answer_sha}}]
    p = st["predicate"]
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(p)
    # The prompt is a digest, never in clear.
    assert p["prompt"] == {"digest": {"sha256": hashlib.sha256(PROMPT.encode()).hexdigest()}}
    with world.home.open_ledger() as ledger:
        leaf = ledger.entry(decision.attestation.log_index)  # type: ignore[union-attr]
    assert b"my-secret-account-4711" not in leaf
    assert b"my-secret-account-4711" not in base64.b64decode(json.loads(leaf)["payload"])
    assert p["answer"] == {"digest": {"sha256": answer_sha}}
    assert p["invocationId"] == "q-1"
    # The model, its training record and the gate decision behind it.
    assert p["model"]["digest"] == {"sha256": world.model.digest}
    assert p["model"]["name"] == "support-bot"
    assert world.model.training is not None
    assert p["model"]["trainingAttestation"]["annotations"]["logIndex"] == (
        world.model.training.log_index
    )
    gate = p["model"]["gateDecision"]
    assert gate["annotations"] == {"logIndex": world.passed.log_index}
    assert gate["uri"] == f"provgate+log://{world.home.origin}/{world.passed.log_index}"
    assert gate["digest"] == {"sha256": world.passed.envelope_sha256}
    # Each chunk: its digest, rank, score, snapshot, and exactly the right ingest record.
    faq, hb = p["retrieved"]
    assert faq["digest"] == {"blake3": digest_bytes(world.chunk("faq.md"))}
    assert (faq["rank"], faq["score"]) == (0, 0.91)
    assert faq["snapshot"] == {
        "repository": "demo",
        "commitId": world.snap.commit_id,
        "path": "docs/faq.md",
    }
    assert faq["snapshotRecord"]["annotations"]["logIndex"] == world.snap.log_index
    assert [r["annotations"]["logIndex"] for r in faq["ingestRecords"]] == [world.ingests["faq.md"]]
    assert faq["ingestRecord"] == faq["ingestRecords"][0]
    assert hb["id"] == "hb#0"
    assert hb["snapshot"]["path"] == "docs/handbook.md"
    assert [r["annotations"]["logIndex"] for r in hb["ingestRecords"]] == [
        world.ingests["handbook.md"]
    ]
    assert [r.source_uri for r in decision.chunks[1].ingests] == [
        "https://wiki.example.org/handbook"
    ]
    # The decision and the policy it was judged against.
    assert p["policy"]["decision"] == "allow"
    assert p["policy"]["reasons"] == []
    assert "model-gate-passed" in p["policy"]["policies"]
    assert p["policy"]["policy"]["digest"] == {"sha256": Policy.default_inference().digest}
    assert verify_home(world.home).ok


def test_trace_from_an_answer_reaches_exactly_its_sources(world: World, tmp_path: Path) -> None:
    """Upstream of an answer: its chunks' ingest records directly, the rest through the model."""
    from prov_core.lineage import open_lineage

    unrelated = tmp_path / "unrelated.txt"
    unrelated.write_text("never snapshotted, never retrieved\n")
    other = ingest_path(
        world.recorder, unrelated, IngestRequest(source="https://x.example", license="MIT")
    ).attestation.log_index
    with world.tracer() as tracer:
        decision = _answer(tracer, world.model, (world.chunk("faq.md"), world.uri("faq.md")))
    assert decision.attestation is not None
    answer = decision.attestation.log_index
    with open_lineage(world.home) as lineage:
        graph = lineage.upstream(answer)
        report = lineage.verify_chain(answer)
    ingests = {n.log_index for n in graph.of_kind("ingest")}
    assert ingests == set(world.ingests.values())  # the model's training data, all of it
    assert other not in graph.nodes
    direct = {e.parent for e in graph.edges if e.child == answer}
    assert world.ingests["faq.md"] in direct  # the retrieved chunk's own source
    assert world.ingests["policy.md"] not in direct  # reached only through the model
    assert world.snap.log_index in direct
    assert world.model.training is not None
    assert world.model.training.log_index in direct
    assert report.ok, report.problems


def test_prompt_in_clear_only_when_configured(world: World) -> None:
    with world.tracer(record_prompt=True) as tracer:
        decision = _answer(tracer, world.model, (world.chunk("faq.md"), world.uri("faq.md")))
    assert world.statement(decision.attestation)["predicate"]["prompt"]["text"] == PROMPT


def test_caches_follow_the_trust_store(world: World) -> None:
    """A second answer reuses verified traces; a revocation takes effect on the next answer."""
    with world.tracer() as tracer:
        cite = (world.chunk("faq.md"), world.uri("faq.md"))
        assert _answer(tracer, world.model, cite).allowed
        assert _answer(tracer, world.model, cite).allowed
        trust = world.home.trust()
        trust.revoke(world.home.signer.keyid, "laptop stolen")
        trust.save(world.home.trust_path)
        with pytest.raises(InferenceBlocked) as info:
            _answer(tracer, world.model, cite)
    assert any(r.startswith("revoked-key") for r in info.value.reasons)


# --------------------------------------------------------------------------
# Blocking


def test_source_banned_after_the_fact_is_blocked_and_the_block_recorded(world: World) -> None:
    policy = AllOf([Policy.default_inference(), Policy.load(BANNED)])
    with world.tracer(policy=policy) as tracer:
        # Only the FAQ: allowed under the new policy.
        assert _answer(tracer, world.model, (world.chunk("faq.md"), world.uri("faq.md"))).allowed
        with pytest.raises(InferenceBlocked) as info:
            _answer(
                tracer,
                world.model,
                (world.chunk("faq.md"), world.uri("faq.md")),
                (world.chunk("policy.md"), world.uri("policy.md")),
            )
    blocked = info.value
    assert blocked.exit_code == 1
    assert blocked.reasons == (
        "policy [banned-sources]: no input may come from a banned source "
        "(shadow libraries, local files, plain HTTP)",
    )
    decision = blocked.decision
    assert decision is not None
    assert not decision.allowed
    assert decision.failed_rules == ("banned-sources",)  # type: ignore[attr-defined]
    p = world.statement(decision.attestation)["predicate"]  # type: ignore[attr-defined]
    assert p["policy"]["decision"] == "block"
    assert p["policy"]["reasons"] == list(blocked.reasons)
    assert [c["snapshot"]["path"] for c in p["retrieved"]] == ["docs/faq.md", "docs/policy.md"]
    assert (
        p["retrieved"][1]["ingestRecord"]["annotations"]["logIndex"] == (world.ingests["policy.md"])
    )


def test_model_whose_gate_failed_is_blocked(world: World) -> None:
    with world.tracer() as tracer, pytest.raises(InferenceBlocked) as info:
        _answer(tracer, world.bad_model, (world.chunk("faq.md"), world.uri("faq.md")))
    decision: Any = info.value.decision
    assert decision.failed_rules == ("model-gate-passed",)
    assert decision.model.gate == "FAILED"
    assert decision.model.gate_log_index == world.failed.log_index
    p = world.statement(decision.attestation)["predicate"]
    assert p["policy"]["decision"] == "block"
    assert p["model"]["gateDecision"]["digest"] == {"sha256": world.failed.envelope_sha256}


def test_model_with_no_gate_decision_is_blocked(world: World) -> None:
    untrained = ModelRef(hashlib.sha256(b"downloaded").hexdigest())
    with world.tracer() as tracer, pytest.raises(InferenceBlocked, match="model-gate-passed"):
        _answer(tracer, untrained, (world.chunk("faq.md"), world.uri("faq.md")))
    # A training record that does not name the model is a reason of its own.
    assert world.model.training is not None
    impostor = ModelRef(hashlib.sha256(b"other").hexdigest(), training=world.model.training)
    with world.tracer() as tracer, pytest.raises(InferenceBlocked, match="model-mismatch"):
        _answer(tracer, impostor, (world.chunk("faq.md"), world.uri("faq.md")))
    # A training attestation that is not the entry at its index.
    forged = RecordRef(world.model.training.log_index, "0" * 64)
    with world.tracer() as tracer, pytest.raises(InferenceBlocked, match="record-mismatch"):
        _answer(tracer, ModelRef(world.model.digest, training=forged), (b"x", world.uri("faq.md")))


def test_chunks_that_do_not_trace_are_blocked(world: World) -> None:
    with world.tracer() as tracer, pytest.raises(InferenceBlocked) as info:
        _answer(
            tracer,
            world.model,
            (b"not in any snapshot", world.uri()),  # no path, unknown digest
            (world.chunk("faq.md"), "provgate://demo/main/docs/faq.md"),  # a branch
            (world.chunk("faq.md"), world.uri("faq.md", commit="f" * 64)),  # no such commit
            (world.chunk("faq.md"), world.uri("missing.md")),
        )
    reasons = info.value.reasons
    codes = [r.split(":")[0] for r in reasons]
    assert codes[:4] == ["not-in-snapshot", "unpinned", "no-snapshot-record", "not-in-snapshot"]
    assert "policy [chunks-traced]" in codes
    assert "policy [pinned-inputs]" in codes
    assert "chunk 1 (provgate://demo/main/docs/faq.md)" in reasons[1]
    decision: Any = info.value.decision
    assert decision.attestation is not None  # the block is recorded


def test_ledger_unreachable_fails_closed(world: World) -> None:
    cite = (world.chunk("faq.md"), world.uri("faq.md"))
    # Cold: nothing verified yet, the ledger cannot be read.
    tracer = world.tracer()
    tracer.recorder.close()
    with pytest.raises(InferenceBlocked) as info:
        _answer(tracer, world.model, cite)
    codes = [r.split(":")[0] for r in info.value.reasons]
    assert codes[0] == "ledger-unreachable"
    assert "fails closed" in info.value.reasons[0]
    assert codes[-1] == "not-recorded"
    assert info.value.decision.attestation is None  # type: ignore[attr-defined]
    tracer.close()
    # Warm: everything cached, but the answer cannot be recorded.
    with world.tracer() as tracer:
        assert _answer(tracer, world.model, cite).allowed
        tracer.recorder.close()
        with pytest.raises(InferenceBlocked) as info:
            _answer(tracer, world.model, cite)
    assert [r.split(":")[0] for r in info.value.reasons] == ["not-recorded"]


def test_unreadable_trust_store_fails_closed(world: World) -> None:
    with world.tracer() as tracer:
        world.home.trust_path.write_text("{not json")
        with pytest.raises(InferenceBlocked, match="trust-unavailable"):
            _answer(tracer, world.model, (world.chunk("faq.md"), world.uri("faq.md")))


# --------------------------------------------------------------------------
# The other entry points


def test_decorator_returns_the_answer_or_raises(world: World) -> None:
    calls: list[str] = []
    with world.tracer() as tracer:

        @tracer.traced(world.model)
        def rag(prompt: str, trace: Trace, source: str) -> str:
            calls.append(prompt)
            trace.retrieved(world.chunk(source), score=0.8, snapshot=world.uri(source))
            return f"answer from {source}"

        assert rag("q", "faq.md") == "answer from faq.md"
        strict = world.tracer(policy=AllOf([Policy.default_inference(), Policy.load(BANNED)]))
        with strict:
            guarded = strict.traced(world.model)(rag.__wrapped__)  # type: ignore[attr-defined]
            with pytest.raises(InferenceBlocked, match="banned-sources"):
                guarded("q2", "policy.md")
    assert calls == ["q", "q2"]


def test_traced_answer_without_a_tracer(world: World) -> None:
    with traced_answer(
        world.recorder,
        model=world.model,
        prompt=PROMPT,
        trust=world.home.trust(),
        index=world.index,
    ) as t:
        t.retrieved(
            world.chunk("faq.md"),
            snapshot=world.uri("faq.md"),
            ingest=[RecordRef(world.ingests["faq.md"], _sha(world, world.ingests["faq.md"]))],
        )
        decision = t.answer(ANSWER)
    assert decision.allowed, decision.reasons
    assert [i.log_index for i in decision.chunks[0].ingests] == [world.ingests["faq.md"]]


def _sha(world: World, index: int) -> str:
    with world.home.open_ledger() as ledger:
        return hashlib.sha256(ledger.entry(index)).hexdigest()


# --------------------------------------------------------------------------
# Bad input


def test_bad_input_raises_input_error(world: World, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="SHA-256 of the model"):
        ModelRef("abc")
    with pytest.raises(InputError, match="Attestation or a RecordRef"):
        ModelRef("a" * 64, training="3")  # type: ignore[arg-type]
    with world.tracer() as tracer:
        with pytest.raises(InputError, match="prompt must be str or bytes"):
            tracer.trace(world.model, 42)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="a ModelRef"):
            tracer.trace("model", PROMPT)  # type: ignore[arg-type]
        t = tracer.trace(world.model, PROMPT)
        uri = world.uri("faq.md")
        with pytest.raises(InputError, match="not both"):
            t.retrieved(b"x", digest="a" * 64, snapshot=uri)
        with pytest.raises(InputError, match="not both"):
            t.retrieved(snapshot=uri)
        with pytest.raises(InputError, match="BLAKE3"):
            t.retrieved(digest="XYZ", snapshot=uri)
        with pytest.raises(InputError, match="not a snapshot URI"):
            t.retrieved(b"x", snapshot="s3://bucket/key")
        with pytest.raises(InputError, match="snapshot URI string"):
            t.retrieved(b"x", snapshot=None)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="rank"):
            t.retrieved(b"x", snapshot=uri, rank=-1)
        with pytest.raises(InputError, match="score"):
            t.retrieved(b"x", snapshot=uri, score=math.nan)
        with pytest.raises(InputError, match="chunk must be bytes or str"):
            t.retrieved(3, snapshot=uri)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="answer must be str or bytes"):
            t.answer(None)  # type: ignore[arg-type]
        t.retrieved(world.chunk("faq.md"), snapshot=uri)
        assert t.answer(ANSWER).allowed
        with pytest.raises(InputError, match="already called"):
            t.answer(ANSWER)
        with pytest.raises(InputError, match="already judged"):
            t.retrieved(b"x", snapshot=uri)
    with pytest.raises(InputError, match="AllOf of Policy"):
        InferenceTracer(
            world.recorder,
            trust=world.home.trust(),
            index=world.index,
            policy=AllOf([NEVER.rules[0]]),
        )


def test_inference_rules_load_and_need_an_inference_activation(tmp_path: Path) -> None:
    """Inference rules are checked at load like any other; on training they fail closed."""
    rule = Policy.from_toml(
        '[[rule]]\nid = "top-chunk"\nmessage = "m"\n'
        "expr = 'chunks.all(c, c.score == null || c.score >= 0.2) && model.gate == \"PASSED\"'\n"
        'applies_to = "inference"\n'
    )
    assert [r.id for r in rule.rules] == ["top-chunk"]
    with pytest.raises(Exception, match="licence"):
        Policy.from_toml('[[rule]]\nid = "x"\nmessage = "m"\nexpr = "chunks.all(c, c.licence)"')


def test_strict_parser_checks_the_added_fields(world: World) -> None:
    with world.tracer() as tracer:
        decision = _answer(tracer, world.model, (world.chunk("faq.md"), world.uri("faq.md")))
    statement = world.statement(decision.attestation)
    for field, value, message in (
        ("rank", -1, "non-negative integer"),
        ("score", "high", "expected a number"),
        ("ingestRecords", [{"name": "x"}], "needs uri, digest or content"),
    ):
        bad = json.loads(json.dumps(statement))
        bad["predicate"]["retrieved"][0][field] = value
        with pytest.raises(FormatError, match=message):
            Statement.parse(json.dumps(bad).encode())
    bad = json.loads(json.dumps(statement))
    bad["predicate"]["policy"]["policy"] = {}
    with pytest.raises(FormatError, match=r"policy\.policy"):
        Statement.parse(json.dumps(bad).encode())
