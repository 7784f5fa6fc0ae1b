"""Latency per RAG answer with and without inference-time provenance.

    .venv/bin/python benchmarks/inference.py [--answers 2000] [--chunks 4]

One run, one process, one fake retriever and one fake generator. Setup (not
timed): a fresh home in a temporary directory; 16 small documents ingested
one record each, committed as one snapshot, the training gate run on it
(PASSED, recorded) and a training record naming the model and the gate's
VSA -- the state of a model serving answers from the data it was trained on.

Timed per answer, alternating in blocks of 50 so drift on a shared machine
hits both sides alike:

* plain: ``generate(prompt, retrieve(prompt))``;
* traced: the same inside ``tracer.trace(...)``, one ``t.retrieved(...)``
  per chunk (BLAKE3 of the chunk bytes), ``t.answer(text)``: the default
  inference policy (7 CEL rules) judged, the inference statement signed
  (Ed25519) and appended to the SQLite ledger (one transaction).

The tracer caches what it verified (snapshot record, ingest records, the
model's gate), so after the first answer the added cost is hashing, the
policy, one signature and one append. The first (cold) traced answer is
reported on its own. Printed: p50/p99 per answer for each side, their ratio,
and the added microseconds at p50 and p99.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prov_core.gate import evaluate_gate  # noqa: E402
from prov_core.home import init_home  # noqa: E402
from prov_core.inference import InferenceTracer, ModelRef  # noqa: E402
from prov_core.ingest import IngestRequest, ingest_path  # noqa: E402
from prov_core.snapshot_record import commit_snapshot  # noqa: E402
from prov_core.step import TRAINING_BUILD_TYPE, Artifact, Recorder, record_step  # noqa: E402

WORDS = [
    "data",
    "model",
    "license",
    "source",
    "ledger",
    "snapshot",
    "gate",
    "answer",
    "chunk",
    "policy",
]


def corpus(n: int) -> dict[str, bytes]:
    docs = {}
    for i in range(n):
        words = [WORDS[(i * 7 + j) % len(WORDS)] for j in range(60)]
        docs[f"doc-{i:02d}.md"] = (f"# Document {i}\n\n" + " ".join(words) + "\n").encode()
    return docs


class FakeRetriever:
    """Scores documents by word overlap with the prompt; returns the top k."""

    def __init__(self, docs: dict[str, bytes], uri_of: dict[str, str], k: int) -> None:
        self.docs = [(name, body, set(body.decode().split())) for name, body in docs.items()]
        self.uri_of = uri_of
        self.k = k

    def __call__(self, prompt: str) -> list[tuple[str, bytes, float, str]]:
        words = set(prompt.split())
        scored = sorted(
            (
                (len(words & vocab) / (len(words) or 1), name, body)
                for name, body, vocab in self.docs
            ),
            reverse=True,
        )[: self.k]
        return [(name, body, score, self.uri_of[name]) for score, name, body in scored]


def generate(prompt: str, hits: list[tuple[str, bytes, float, str]]) -> str:
    """A stand-in for the model: a digest of the prompt and the context."""
    h = hashlib.sha256(prompt.encode())
    for _, body, _, _ in hits:
        h.update(body)
    return f"Answer {h.hexdigest()[:16]} citing {', '.join(n for n, *_ in hits)}"


def breakdown(
    tracer: InferenceTracer, model: ModelRef, retrieve: FakeRetriever, prompt: str
) -> dict[str, float]:
    """The parts of a warm traced answer, each timed alone (the append is the rest)."""
    from datetime import UTC, datetime

    from prov_core.canonical import parse_json
    from prov_core.policy import inference_activation
    from prov_core.signing import Envelope, sign_envelope
    from prov_core.statement import Statement

    with tracer.trace(model, prompt) as t:
        for rank, (_, body, score, uri) in enumerate(retrieve(prompt)):
            t.retrieved(body, rank=rank, score=score, snapshot=uri)
        decision = t.answer("answer")
    assert decision.attestation is not None
    leaf = tracer.ledger.entry(decision.attestation.log_index)
    doc = parse_json(Envelope.parse(leaf).payload)
    statement = Statement(
        Statement.parse(Envelope.parse(leaf).payload).subjects,
        doc["predicateType"],
        doc["predicate"],
    )
    payload = statement.canonical_bytes()
    now = datetime.now(UTC)
    chunks = list(decision.chunks)
    signer = tracer.recorder.signer

    def best(fn: Callable[[], object], n: int = 200) -> float:
        return min(timeit.repeat(fn, number=n, repeat=3)) / n * 1e6

    return {
        "policy (activation + 7 CEL rules)": best(
            lambda: tracer.policy.evaluate(
                inference_activation(decision.model, chunks, now=now, keys=tracer._keys)
            )
        ),
        f"canonical JSON ({len(payload):,} B)": best(statement.canonical_bytes),
        "sign + envelope": best(lambda: sign_envelope(payload, signer).canonical_bytes()),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--answers", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home, _ = init_home(Path(tmp) / "home")
        docs = corpus(16)
        data = Path(tmp) / "docs"
        data.mkdir()
        for name, body in docs.items():
            (data / name).write_bytes(body)
        with Recorder.from_home(home) as recorder, home.open_store() as store:
            with home.open_index() as index:
                store.create_repository("kbase", "main")
                for name in docs:
                    request = IngestRequest(source=f"https://example.org/kb/{name}", license="MIT")
                    ingest_path(recorder, data / name, request, index=index)
                snap = commit_snapshot(recorder, store, "kbase", "main", data, index=index)
            gate = evaluate_gate([f"provgate://kbase/{snap.commit_id}"], home=home)
            if not gate.allowed or gate.vsa is None:
                raise SystemExit(f"the training gate refused: {gate.reasons}")
            weights = Artifact.from_bytes("model.safetensors", b"weights")
            training = record_step(
                recorder,
                "train",
                inputs=[gate.vsa, snap.attestation],
                outputs=[weights],
                build_type=TRAINING_BUILD_TYPE,
            )
        model = ModelRef(weights.sha256, training=training, name="bench")
        uri_of = {name: f"provgate://kbase/{snap.commit_id}/{name}" for name in docs}
        retrieve = FakeRetriever(docs, uri_of, args.chunks)
        prompts = [" ".join(WORDS[i % 10 : i % 10 + 3]) + f" #{i}" for i in range(args.answers)]

        with InferenceTracer.from_home(home) as tracer:

            def plain(prompt: str) -> str:
                return generate(prompt, retrieve(prompt))

            def traced(prompt: str) -> str:
                with tracer.trace(model, prompt) as t:
                    hits = retrieve(prompt)
                    for rank, (_, body, score, uri) in enumerate(hits):
                        t.retrieved(body, rank=rank, score=score, snapshot=uri)
                    text = generate(prompt, hits)
                    t.answer(text)
                return text

            start = time.perf_counter_ns()
            traced("cold start")
            cold_us = (time.perf_counter_ns() - start) / 1000
            for p in prompts[:50]:  # warm-up both sides
                plain(p)
                traced(p)
            times: dict[str, list[float]] = {"plain": [], "traced": []}
            block = 50
            for b in range(0, len(prompts), block):
                for name, fn in (("plain", plain), ("traced", traced)):
                    for p in prompts[b : b + block]:
                        start = time.perf_counter_ns()
                        fn(p)
                        times[name].append((time.perf_counter_ns() - start) / 1000)
            size = tracer.ledger.size()
            phases = breakdown(tracer, model, retrieve, prompts[0])

    p = {k: (percentile(v, 0.50), percentile(v, 0.99)) for k, v in times.items()}
    print(
        f"{args.answers} answers per side, {args.chunks} chunks each, "
        f"{len(docs)} documents; ledger ended at {size} entries"
    )
    print(f"{'':8} {'p50 µs':>10} {'p99 µs':>10} {'mean µs':>10}")
    for name, values in times.items():
        print(f"{name:8} {p[name][0]:10.1f} {p[name][1]:10.1f} {statistics.fmean(values):10.1f}")
    print(f"cold first traced answer: {cold_us:,.0f} µs (verifies the records, then cached)")
    print(
        "phases of a warm traced answer (best of 3 x 200, µs): "
        + ", ".join(f"{k} {v:,.0f}" for k, v in phases.items())
    )
    added50 = p["traced"][0] - p["plain"][0]
    added99 = p["traced"][1] - p["plain"][1]
    print(
        f"ratio traced/plain: p50 {p['traced'][0] / p['plain'][0]:.1f}x, "
        f"p99 {p['traced'][1] / p['plain'][1]:.1f}x; "
        f"added per answer: p50 {added50:,.0f} µs, p99 {added99:,.0f} µs"
    )


if __name__ == "__main__":
    main()
