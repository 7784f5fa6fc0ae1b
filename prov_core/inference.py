"""Inference-time provenance: record what a RAG answer drew on, and block it before it leaves.

A retrieval-augmented answer is recorded as one signed
``https://provgate.dev/inference/v1`` statement (see ``docs/inference.md``
and ``docs/record-format.md``)::

    tracer = InferenceTracer.from_home(open_home())       # one per worker
    model = ModelRef(sha256_of_model, training=training_attestation)
    with tracer.trace(model, prompt) as t:
        for rank, hit in enumerate(retriever(prompt)):
            t.retrieved(hit.text, rank=rank, score=hit.score,
                        snapshot="provgate://docs/<commit>/faq/refunds.md")
        text = generate(prompt, hits)
        t.answer(text)          # records; raises InferenceBlocked if blocked
    return text

What is recorded (the subject is the answer, by SHA-256 of its UTF-8 bytes):

- the model by digest, its training attestation and the gate decision (SLSA
  VSA) that training attestation links to;
- the prompt as a SHA-256 digest only, unless ``record_prompt=True``;
- every retrieved chunk: its BLAKE3, rank, score, the snapshot commit and
  object it came from, the snapshot record, and the ingest records behind
  that object -- found by the content index and the *signed* snapshot record,
  walked through transform steps exactly as the training gate walks them;
- the answer digest, and the policy decision with every reason.

Before :meth:`Trace.answer` returns, the policy (default
:meth:`~prov_core.policy.Policy.default_inference`) is evaluated on
:func:`~prov_core.policy.inference_activation`: each chunk is an ``input``
(so the training rules -- pinned, signed ingest, licenses, banned sources --
apply unchanged) and ``model`` / ``chunks`` carry the rest. The answer is
blocked when a rule fails or when a record does not check out (a ledger entry
that is not the record named, a signature that does not verify, an
unreadable record): every reason is collected. A block is recorded like an
allow, then raised as :class:`~prov_core.errors.InferenceBlocked`.

Fail closed: a ledger, content index or trust store that cannot be read, or a
statement that cannot be appended, blocks the answer (``ledger-unreachable``,
``trust-unavailable``, ``not-recorded``); nothing is returned unrecorded.

Latency: records are immutable, so a tracer caches what it verified (each
chunk's trace by snapshot object, each model's gate) and an answer that
cites known objects costs one policy evaluation, one signature and one
ledger append (``benchmarks/inference.py``). The caches hold until the trust
store changes: a tracer built by :meth:`InferenceTracer.from_home` re-reads
the trust file when its size or mtime changes (a revocation takes effect on
the next answer); otherwise call :meth:`InferenceTracer.refresh`.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, Final, ParamSpec, Protocol

from prov_core.canonical import canonical_json
from prov_core.content_index import ContentIndex, RecordRef
from prov_core.errors import (
    InferenceBlocked,
    InputError,
    LedgerError,
    ProvgateError,
    VerificationError,
)
from prov_core.policy import (
    AllOf,
    ChunkFacts,
    ModelFacts,
    Policy,
    inference_activation,
)
from prov_core.snapshots.base import SnapshotURI
from prov_core.statement import (
    SLSA_PROVENANCE_V1,
    SLSA_VSA_V1,
    SNAPSHOT_V1,
    InferencePredicate,
    PolicyDecision,
    ResourceDescriptor,
    RetrievedChunk,
    Statement,
    Subject,
)
from prov_core.step import Attestation, Recorder

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.ledger.base import Ledger
    from prov_core.snapshot_record import SnapshotRecord
    from prov_core.trust import TrustEntry

__all__ = [
    "MAX_CHUNKS",
    "InferenceDecision",
    "InferenceTracer",
    "ModelRef",
    "Trace",
    "traced_answer",
]

MAX_CHUNKS: Final = 1000
"""MAX_CHUNKS bounds the chunks one answer may cite (one record holds them all)."""

_P = ParamSpec("_P")
_LEDGER_ERRORS: Final = (LedgerError, sqlite3.Error, OSError)


class _Trust(Protocol):
    """What the tracer needs of a trust store (:class:`~prov_core.trust.TrustStore`)."""

    def check(self, keyid: str, predicate_type: str | None) -> None: ...
    def public_key(self, keyid: str) -> Any: ...
    def get(self, keyid: str) -> TrustEntry | None: ...
    def entries(self) -> list[TrustEntry]: ...


# --------------------------------------------------------------------------
# What the caller gives and what it gets back


@dataclass(frozen=True)
class ModelRef:
    """ModelRef names a model by the SHA-256 of its artifact and the record of its training.

    ``training`` is the training step's attestation (SLSA Provenance whose
    subjects include ``digest`` and whose ``resolvedDependencies`` name the
    gate's VSA by ``annotations.predicateType``, as
    :meth:`~prov_core.step.Attestation.descriptor` writes it), or the gate's
    VSA itself; ``None`` records the model with no gate (``model.gate ==
    "none"``, which the default inference policy blocks).
    """

    digest: str
    training: Attestation | RecordRef | None = None
    name: str | None = None
    uri: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.digest, str) or not _is_hex64(self.digest):
            raise InputError(
                f"model digest must be the SHA-256 of the model as 64 lowercase hex characters, "
                f"got {self.digest!r}"
            )
        if self.training is not None and not isinstance(self.training, Attestation | RecordRef):
            raise InputError(
                "training must be an Attestation or a RecordRef, "
                f"got {type(self.training).__name__}"
            )


@dataclass(frozen=True)
class InferenceDecision:
    """InferenceDecision is the verdict on one answer and where it was recorded.

    ``reasons`` are empty when ``allowed``; ``failed_rules`` are the ids of the
    policy rules that failed; ``attestation`` is the recorded inference
    statement (``None`` when it could not be recorded -- then never allowed).
    """

    allowed: bool
    reasons: tuple[str, ...]
    failed_rules: tuple[str, ...]
    model: ModelFacts
    chunks: tuple[ChunkFacts, ...]
    policy_digest: str
    prompt_sha256: str
    answer_sha256: str
    attestation: Attestation | None


# --------------------------------------------------------------------------
# The tracer


@dataclass(frozen=True)
class _ChunkTrace:
    """What a chunk's snapshot object traced to (cached per object)."""

    facts: ChunkFacts
    reasons: tuple[str, ...]
    snapshot_record: ResourceDescriptor | None
    ingest_records: tuple[ResourceDescriptor, ...]


@dataclass(frozen=True)
class _ModelTrace:
    facts: ModelFacts
    reasons: tuple[str, ...]
    training: ResourceDescriptor | None
    gate: ResourceDescriptor | None


class InferenceTracer:
    """InferenceTracer records and judges RAG answers; one per worker (not thread-safe).

    ``recorder`` signs and appends; ``trust`` verifies the records an answer
    relies on; ``index`` finds each snapshot's record; ``policy`` (a
    :class:`~prov_core.policy.Policy` or an :class:`~prov_core.policy.AllOf`
    of policies; default :meth:`Policy.default_inference`) decides.
    ``record_prompt=True`` stores the prompt text in clear beside its digest.
    """

    def __init__(
        self,
        recorder: Recorder,
        *,
        trust: _Trust,
        index: ContentIndex,
        policy: Policy | AllOf | None = None,
        record_prompt: bool = False,
        trust_path: Path | None = None,
    ) -> None:
        if not isinstance(recorder, Recorder):
            raise InputError(f"recorder must be a Recorder, got {type(recorder).__name__}")
        self.recorder = recorder
        self.index = index
        self.policy: Policy | AllOf = Policy.default_inference() if policy is None else policy
        self.policy_descriptor = _policy_descriptor(self.policy)
        self.policy_digest: str = dict(self.policy_descriptor.digest or {})["sha256"]
        self.record_prompt = record_prompt
        self._trust: _Trust | None = trust
        self._trust_error: str | None = None
        self._trust_path = trust_path
        self._trust_stamp = _stamp(trust_path)
        self._keys = _keys(trust)
        self._chunks: dict[tuple[str, str, tuple[tuple[int, str], ...]], _ChunkTrace] = {}
        self._models: dict[ModelRef, _ModelTrace] = {}
        self._snapshots: dict[tuple[str, str, str], _Snapshot] = {}
        self._owned: list[Callable[[], None]] = []

    @classmethod
    def from_home(
        cls,
        home: Home,
        *,
        policy: Policy | AllOf | None = None,
        record_prompt: bool = False,
    ) -> InferenceTracer:
        """A tracer on a home's ledger, signing key, trust store and content index.

        It owns what it opens: :meth:`close` it (or use it as a context manager).
        """
        recorder = Recorder.from_home(home)
        try:
            index = home.open_index()
        except BaseException:
            recorder.close()
            raise
        tracer = cls(
            recorder,
            trust=home.trust(),
            index=index,
            policy=policy,
            record_prompt=record_prompt,
            trust_path=home.trust_path,
        )
        tracer._owned = [index.close, recorder.close]
        return tracer

    def close(self) -> None:
        """Close what :meth:`from_home` opened."""
        for close in self._owned:
            close()
        self._owned = []

    def __enter__(self) -> InferenceTracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ledger(self) -> Ledger:
        return self.recorder.ledger

    def refresh(self) -> None:
        """Reload the trust store (when built from a home) and forget every cached trace."""
        self._chunks.clear()
        self._models.clear()
        self._snapshots.clear()
        if self._trust_path is None:
            return
        from prov_core.trust import TrustStore

        self._trust_stamp = _stamp(self._trust_path)
        try:
            self._trust = TrustStore.load(self._trust_path)
            self._trust_error = None
            self._keys = _keys(self._trust)
        except ProvgateError as exc:
            self._trust = None
            self._trust_error = f"trust-unavailable: cannot load the trust store: {exc}"
            self._keys = {}

    def _current_trust(self) -> _Trust | None:
        if self._trust_path is not None and _stamp(self._trust_path) != self._trust_stamp:
            self.refresh()
        return self._trust

    def trace(
        self, model: ModelRef, prompt: str | bytes, *, invocation_id: str | None = None
    ) -> Trace:
        """Start tracing one answer to ``prompt`` by ``model`` (a context manager)."""
        return Trace(self, model, prompt, invocation_id=invocation_id)

    def traced(
        self, model: ModelRef
    ) -> Callable[
        [Callable[Concatenate[str, Trace, _P], str]], Callable[Concatenate[str, _P], str]
    ]:
        """Wrap ``fn(prompt, trace, ...) -> answer`` so its answer is recorded and judged.

        The wrapped function is called as ``fn(prompt, ...)``; it returns the
        answer if allowed, and raises :class:`InferenceBlocked` otherwise::

            @tracer.traced(model)
            def rag(prompt: str, trace: Trace) -> str:
                hits = retrieve(prompt)
                for rank, hit in enumerate(hits):
                    trace.retrieved(hit.text, rank=rank, score=hit.score, snapshot=hit.uri)
                return generate(prompt, hits)
        """

        def decorate(
            fn: Callable[Concatenate[str, Trace, _P], str],
        ) -> Callable[Concatenate[str, _P], str]:
            @functools.wraps(fn)
            def wrapper(prompt: str, /, *args: _P.args, **kwargs: _P.kwargs) -> str:
                with self.trace(model, prompt) as t:
                    text = fn(prompt, t, *args, **kwargs)
                    t.answer(text)
                return text

            return wrapper

        return decorate

    # ------------------------------------------------------------------
    # Tracing a model

    def _model(self, model: ModelRef) -> _ModelTrace:
        cached = self._models.get(model)
        if cached is not None:
            return cached
        trust = self._current_trust()
        if trust is None:
            return _ModelTrace(
                ModelFacts(model.digest, name=model.name, uri=model.uri), (), None, None
            )
        traced = _trace_model(model, self.ledger, trust, self.recorder.origin)
        if not any(r.startswith("ledger-unreachable") for r in traced.reasons):
            self._models[model] = traced
        return traced

    # ------------------------------------------------------------------
    # Tracing a chunk

    def _chunk(self, item: _Retrieved) -> _ChunkTrace:
        key = (str(item.snapshot), item.digest, item.ingest)
        cached = self._chunks.get(key)
        if cached is None:
            trust = self._current_trust()
            if trust is None:
                cached = _untraced(item, ())
            else:
                cached = _trace_chunk(
                    item,
                    self.ledger,
                    trust,
                    self.index,
                    self.recorder.origin,
                    snapshots=self._snapshots,
                )
                if not any(r.startswith("ledger-unreachable") for r in cached.reasons):
                    self._chunks[key] = cached
        # Rank, score and id are the caller's, not the object's.
        facts = ChunkFacts(
            **{**_fields(cached.facts), "rank": item.rank, "score": item.score, "id": item.chunk_id}
        )
        where = f"chunk {item.rank} ({item.snapshot})"
        return _ChunkTrace(
            facts,
            tuple(_located(r, where) for r in cached.reasons),
            cached.snapshot_record,
            cached.ingest_records,
        )


@dataclass(frozen=True)
class _Retrieved:
    digest: str
    rank: int
    score: float | None
    snapshot: SnapshotURI
    chunk_id: str | None
    ingest: tuple[tuple[int, str], ...]


class Trace:
    """Trace collects one answer's retrieved chunks, then judges and records it.

    Use as a context manager from :meth:`InferenceTracer.trace`; call
    :meth:`retrieved` per chunk and :meth:`answer` once. Leaving the block
    without :meth:`answer` (an exception in retrieval or generation) records
    nothing: no answer was produced.
    """

    def __init__(
        self,
        tracer: InferenceTracer,
        model: ModelRef,
        prompt: str | bytes,
        *,
        invocation_id: str | None = None,
    ) -> None:
        if not isinstance(model, ModelRef):
            raise InputError(f"model must be a ModelRef, got {type(model).__name__}")
        if isinstance(prompt, str):
            prompt_bytes = prompt.encode("utf-8", "surrogatepass")
        elif isinstance(prompt, bytes | bytearray | memoryview):
            prompt_bytes = bytes(prompt)
        else:
            raise InputError(f"prompt must be str or bytes, got {type(prompt).__name__}")
        if invocation_id is not None and (not isinstance(invocation_id, str) or not invocation_id):
            raise InputError("invocation_id must be a non-empty string")
        self._tracer = tracer
        self._model = model
        self._prompt = prompt_bytes
        self._invocation_id = invocation_id
        self._items: list[_Retrieved] = []
        self._decision: InferenceDecision | None = None

    def __enter__(self) -> Trace:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @property
    def decision(self) -> InferenceDecision | None:
        """The decision, once :meth:`answer` was called."""
        return self._decision

    def retrieved(
        self,
        chunk: bytes | str | None = None,
        *,
        snapshot: str | SnapshotURI,
        digest: str | None = None,
        rank: int | None = None,
        score: float | None = None,
        chunk_id: str | None = None,
        ingest: Sequence[Attestation | RecordRef] = (),
    ) -> None:
        """Note one retrieved chunk: its bytes (or text, UTF-8), or its BLAKE3 ``digest``.

        ``snapshot`` is the object it came from, ``SCHEME://REPO/COMMIT/PATH``
        (the path may be left out when the chunk is a whole object: it is
        then found by digest in the snapshot record). ``rank`` defaults to
        the call order (0-based). ``ingest`` names the ingest records behind
        it when the caller knows them; otherwise the snapshot record's are used.
        """
        if self._decision is not None:
            raise InputError("this answer was already judged; start a new trace")
        if (chunk is None) == (digest is None):
            raise InputError("give the chunk's bytes or text, or its BLAKE3 digest= (not both)")
        if chunk is not None:
            from prov_core.digest import digest_bytes

            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8", "surrogatepass")
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise InputError(f"chunk must be bytes or str, got {type(chunk).__name__}")
            b3 = digest_bytes(chunk)
        else:
            if not isinstance(digest, str) or not _is_hex64(digest):
                raise InputError(
                    f"chunk digest must be a BLAKE3 as 64 lowercase hex characters, got {digest!r}"
                )
            b3 = digest
        uri = snapshot if isinstance(snapshot, SnapshotURI) else _parse_uri(snapshot)
        if rank is None:
            rank = len(self._items)
        if type(rank) is not int or rank < 0:
            raise InputError(f"rank must be a non-negative integer, got {rank!r}")
        if score is not None:
            if type(score) not in (int, float) or not math.isfinite(score):
                raise InputError(f"score must be a finite number, got {score!r}")
            score = float(score)
        if chunk_id is not None and (not isinstance(chunk_id, str) or not chunk_id):
            raise InputError("chunk_id must be a non-empty string")
        refs: list[tuple[int, str]] = []
        for ref in ingest:
            if not isinstance(ref, Attestation | RecordRef):
                raise InputError(f"ingest record {ref!r} is not an Attestation or a RecordRef")
            refs.append((ref.log_index, ref.envelope_sha256))
        if len(self._items) >= MAX_CHUNKS:
            raise InputError(f"an answer may cite at most {MAX_CHUNKS} chunks")
        self._items.append(_Retrieved(b3, rank, score, uri, chunk_id, tuple(refs)))

    def answer(self, text: str | bytes) -> InferenceDecision:
        """Judge and record the answer; return the decision, or raise :class:`InferenceBlocked`.

        The decision is recorded either way; the block names every reason.
        """
        if self._decision is not None:
            raise InputError("answer() was already called for this trace")
        if isinstance(text, str):
            answer_bytes = text.encode("utf-8", "surrogatepass")
        elif isinstance(text, bytes | bytearray | memoryview):
            answer_bytes = bytes(text)
        else:
            raise InputError(f"the answer must be str or bytes, got {type(text).__name__}")
        tracer = self._tracer
        now = datetime.now(UTC)
        reasons: list[str] = []
        # 1. The trust store, the model and its gate, each chunk: facts and hard reasons.
        tracer._current_trust()
        if tracer._trust_error is not None:
            reasons.append(tracer._trust_error)
        model = tracer._model(self._model)
        reasons.extend(model.reasons)
        chunks = [tracer._chunk(item) for item in sorted(self._items, key=lambda i: i.rank)]
        for c in chunks:
            reasons.extend(c.reasons)
        # 2. The policy: every rule, failures collected.
        failed: list[str] = []
        evaluated: list[str] = []
        try:
            act = inference_activation(
                model.facts, [c.facts for c in chunks], now=now, keys=tracer._keys
            )
            results = tracer.policy.evaluate(act)
        except Exception as exc:  # fail closed: a policy that cannot run blocks
            reasons.append(f"policy: the policy could not be evaluated: {exc}")
            results = []
        for result in results:
            evaluated.append(result.id)
            if not result.passed:
                failed.append(result.id)
                detail = f" ({result.error})" if result.error else ""
                reasons.append(f"policy [{result.id}]: {result.message}{detail}")
        # 3. The record, allowed or blocked.
        prompt_sha = hashlib.sha256(self._prompt).hexdigest()
        answer_sha = hashlib.sha256(answer_bytes).hexdigest()
        statement = self._statement(
            model=model,
            chunks=chunks,
            now=now,
            prompt_sha=prompt_sha,
            answer_sha=answer_sha,
            allowed=not reasons,
            evaluated=evaluated,
            reasons=reasons,
        )
        attestation: Attestation | None = None
        try:
            attestation = tracer.recorder.record(statement)
        except (ProvgateError, *_LEDGER_ERRORS) as exc:
            reasons.append(
                f"not-recorded: the answer could not be recorded in the ledger, so it is "
                f"blocked (fails closed): {exc}"
            )
        decision = InferenceDecision(
            allowed=not reasons,
            reasons=tuple(reasons),
            failed_rules=tuple(failed),
            model=model.facts,
            chunks=tuple(c.facts for c in chunks),
            policy_digest=tracer.policy_digest,
            prompt_sha256=prompt_sha,
            answer_sha256=answer_sha,
            attestation=attestation,
        )
        self._decision = decision
        if not decision.allowed:
            n = len(reasons)
            listing = "\n".join(f"  - {r}" for r in reasons)
            raise InferenceBlocked(
                f"the answer was blocked ({n} reason{'s' if n != 1 else ''}):\n{listing}",
                reasons=tuple(reasons),
                decision=decision,
            )
        return decision

    def _statement(
        self,
        *,
        model: _ModelTrace,
        chunks: Sequence[_ChunkTrace],
        now: datetime,
        prompt_sha: str,
        answer_sha: str,
        allowed: bool,
        evaluated: Sequence[str],
        reasons: Sequence[str],
    ) -> Statement:
        m = self._model
        predicate = InferencePredicate(
            model=ResourceDescriptor(name=m.name, uri=m.uri, digest={"sha256": m.digest}),
            training_attestation=model.training,
            gate_decision=model.gate,
            prompt_digest={"sha256": prompt_sha},
            prompt_text=self._prompt.decode("utf-8", "replace")
            if self._tracer.record_prompt
            else None,
            retrieved=[
                RetrievedChunk(
                    digest={"blake3": c.facts.digest},
                    repository=c.facts.repository,
                    commit_id=c.facts.commit,
                    path=c.facts.path,
                    chunk_id=c.facts.id,
                    rank=c.facts.rank,
                    score=c.facts.score,
                    snapshot_record=c.snapshot_record,
                    ingest_record=c.ingest_records[0] if len(c.ingest_records) == 1 else None,
                    ingest_records=c.ingest_records,
                )
                for c in chunks
            ],
            answer_digest={"sha256": answer_sha},
            decision=PolicyDecision(
                allowed=allowed,
                policies=list(evaluated),
                reasons=list(reasons),
                policy=self._tracer.policy_descriptor,
            ),
            invocation_id=self._invocation_id,
            answered_at=now,
        )
        return Statement.of([Subject(name="answer", sha256=answer_sha)], predicate)


@contextmanager
def traced_answer(
    recorder: Recorder,
    *,
    model: ModelRef,
    prompt: str | bytes,
    trust: _Trust,
    index: ContentIndex,
    policy: Policy | AllOf | None = None,
    record_prompt: bool = False,
    invocation_id: str | None = None,
) -> Iterator[Trace]:
    """One traced answer without a long-lived tracer (nothing cached between answers)::

    with traced_answer(recorder, model=m, prompt=q, trust=trust, index=index) as t:
        t.retrieved(chunk, rank=0, score=0.9, snapshot=uri)
        t.answer(text)
    """
    tracer = InferenceTracer(
        recorder, trust=trust, index=index, policy=policy, record_prompt=record_prompt
    )
    with tracer.trace(model, prompt, invocation_id=invocation_id) as t:
        yield t


# --------------------------------------------------------------------------
# Tracing records (pure functions of the ledger, trust store and index)


def _trace_model(model: ModelRef, ledger: Ledger, trust: _Trust, origin: str) -> _ModelTrace:
    """_trace_model reads the training attestation and the gate decision it links to."""
    bare = ModelFacts(model.digest, name=model.name, uri=model.uri)
    if model.training is None:
        return _ModelTrace(bare, (), None, None)
    t = model.training
    training = _descriptor(t.log_index, t.envelope_sha256, origin)
    reasons: list[str] = []
    try:
        record = _read_verified(ledger, trust, t.log_index, t.envelope_sha256, "training record")
    except _LEDGER_ERRORS as exc:
        return _ModelTrace(
            bare,
            (f"ledger-unreachable: model {model.digest}: {_unreachable(exc)}",),
            training,
            None,
        )
    if record.problem is not None:
        reasons.append(f"{record.code}: model {model.digest}: {record.problem}")
    statement = record.statement
    vsas: list[tuple[int, str]] = []
    training_verified = record.verified
    if statement is None:
        pass
    elif statement.predicate_type == SLSA_VSA_V1:
        vsas.append((t.log_index, t.envelope_sha256))
    elif statement.predicate_type == SLSA_PROVENANCE_V1:
        if model.digest not in {s.sha256 for s in statement.subjects}:
            training_verified = False
            reasons.append(
                f"model-mismatch: model {model.digest}: training record {t.log_index} does not "
                "name this model among its subjects (outputs)"
            )
        vsas.extend(_gate_dependencies(statement.predicate))
    else:
        training_verified = False
        reasons.append(
            f"unsupported-record: model {model.digest}: record {t.log_index} is a "
            f"{statement.predicate_type} record, not a training record or a gate decision"
        )
    results: list[str] = []
    gate_verified = bool(vsas)
    gate_index: int | None = None
    gate_policy: str | None = None
    gate_ref: ResourceDescriptor | None = None
    for index, sha in vsas:
        try:
            vsa = (
                record
                if index == t.log_index
                else _read_verified(ledger, trust, index, sha, "gate decision")
            )
        except _LEDGER_ERRORS as exc:
            reasons.append(f"ledger-unreachable: model {model.digest}: {_unreachable(exc)}")
            return _ModelTrace(bare, tuple(reasons), training, None)
        if vsa.problem is not None and index != t.log_index:
            reasons.append(f"{vsa.code}: model {model.digest}: {vsa.problem}")
        p = vsa.statement.predicate if vsa.statement is not None else {}
        from prov_core.gate import VERIFIER_ID

        is_gate = (
            vsa.statement is not None
            and vsa.statement.predicate_type == SLSA_VSA_V1
            and isinstance(p.get("verifier"), dict)
            and p["verifier"].get("id") == VERIFIER_ID
        )
        if not is_gate:
            reasons.append(
                f"unsupported-record: model {model.digest}: record {index} is not a decision "
                "of the training gate"
            )
        gate_verified = gate_verified and vsa.verified and is_gate
        results.append(str(p.get("verificationResult", "FAILED")))
        gate_index = index
        policy = p.get("policy")
        digest = policy.get("digest") if isinstance(policy, dict) else None
        gate_policy = digest.get("sha256") if isinstance(digest, dict) else None
        gate_ref = _descriptor(index, sha, origin)
    gate = (
        "none" if not results else ("PASSED" if all(r == "PASSED" for r in results) else "FAILED")
    )
    facts = ModelFacts(
        digest=model.digest,
        name=model.name,
        uri=model.uri,
        training_verified=training_verified,
        training_log_index=t.log_index,
        gate=gate,
        gate_verified=gate_verified,
        gate_log_index=gate_index,
        gate_policy_digest=gate_policy if isinstance(gate_policy, str) else None,
    )
    return _ModelTrace(facts, tuple(reasons), training, gate_ref)


def _gate_dependencies(predicate: Mapping[str, Any]) -> list[tuple[int, str]]:
    """The gate decisions (VSA) a training record names among its inputs."""
    build = predicate.get("buildDefinition")
    deps = build.get("resolvedDependencies") if isinstance(build, dict) else None
    out: list[tuple[int, str]] = []
    for d in deps if isinstance(deps, list) else []:
        annotations = d.get("annotations") if isinstance(d, dict) else None
        digest = d.get("digest") if isinstance(d, dict) else None
        if not isinstance(annotations, dict) or not isinstance(digest, dict):
            continue
        index, sha = annotations.get("logIndex"), digest.get("sha256")
        if (
            annotations.get("predicateType") == SLSA_VSA_V1
            and type(index) is int
            and isinstance(sha, str)
        ):
            out.append((index, sha))
    return out


@dataclass(frozen=True)
class _Read:
    statement: Statement | None
    verified: bool
    keyid: str = ""
    code: str = ""
    problem: str | None = None


def _read_verified(ledger: Ledger, trust: _Trust, index: int, sha: str, what: str) -> _Read:
    """Read entry ``index``; it must hash to ``sha``, parse, and verify. Ledger errors raise."""
    from prov_core.signing import Envelope, verify_envelope

    if type(index) is not int or index < 0 or index >= ledger.size():
        return _Read(None, False, code="not-found", problem=f"no {what} at log index {index}")
    leaf = ledger.entry(index)
    actual = hashlib.sha256(leaf).hexdigest()
    if actual != sha:
        return _Read(
            None,
            False,
            code="record-mismatch",
            problem=f"log entry {index} is not the {what} named (envelope sha256 {actual}, "
            f"expected {sha})",
        )
    try:
        envelope = Envelope.parse(leaf)
        statement = Statement.parse(envelope.payload)
    except ProvgateError as exc:
        return _Read(None, False, code="malformed-record", problem=f"log entry {index}: {exc}")
    keyid = envelope.signatures[0].keyid if envelope.signatures else ""
    try:
        verify_envelope(envelope, trust, predicate_type=statement.predicate_type)
    except VerificationError as exc:
        from prov_core.custody import signature_code

        return _Read(statement, False, keyid, signature_code(exc), f"{what} {index}: {exc}")
    return _Read(statement, True, keyid)


_Snapshot = tuple["SnapshotRecord | None", ResourceDescriptor | None, str | None]
"""A commit's verified snapshot record and its descriptor, or why there is none."""


def _trace_chunk(
    item: _Retrieved,
    ledger: Ledger,
    trust: _Trust,
    index: ContentIndex,
    origin: str,
    *,
    snapshots: dict[tuple[str, str, str], _Snapshot],
) -> _ChunkTrace:
    """_trace_chunk finds a chunk's snapshot record, object and the ingest records behind it.

    ``snapshots`` caches each commit's verified record (a snapshot record can
    name 50,000 objects: it is read and verified once, not once per object).
    """
    try:
        return _trace_chunk_or_raise(item, ledger, trust, index, origin, snapshots=snapshots)
    except _LEDGER_ERRORS as exc:
        return _untraced(item, (f"ledger-unreachable: {_unreachable(exc)}",))


def _snapshot(
    uri: SnapshotURI, ledger: Ledger, trust: _Trust, index: ContentIndex, origin: str
) -> _Snapshot:
    """The commit's snapshot record: found by the index, hash, signature and commit checked."""
    from prov_core.snapshot_record import parse_snapshot_record

    ref = index.snapshot(uri.scheme, uri.repository, uri.ref)
    if ref is None:
        return None, None, f"no-snapshot-record: commit {uri.ref} has no snapshot record"
    read = _read_verified(ledger, trust, ref.log_index, ref.envelope_sha256, "snapshot record")
    snapshot_ref = _descriptor(ref.log_index, ref.envelope_sha256, origin)
    if read.statement is None or not read.verified:
        return None, snapshot_ref, f"{read.code}: {read.problem}"
    p = read.statement.predicate
    store = "local" if uri.scheme == "provgate" else "lakefs"
    if (
        read.statement.predicate_type != SNAPSHOT_V1
        or p.get("repository") != uri.repository
        or p.get("commitId") != uri.ref
        or p.get("store") != store
    ):
        return (
            None,
            snapshot_ref,
            f"record-mismatch: log entry {ref.log_index} is not the snapshot record of "
            f"{uri.scheme}://{uri.repository}/{uri.ref}",
        )
    try:
        rec = parse_snapshot_record(ref.log_index, ledger.entry(ref.log_index))
    except ProvgateError as exc:
        return None, snapshot_ref, f"malformed-record: {exc}"
    return rec, snapshot_ref, None


def _trace_chunk_or_raise(
    item: _Retrieved,
    ledger: Ledger,
    trust: _Trust,
    index: ContentIndex,
    origin: str,
    *,
    snapshots: dict[tuple[str, str, str], _Snapshot],
) -> _ChunkTrace:
    from prov_core.custody import CustodyWalk, InputState, Reason, derived_from

    uri = item.snapshot
    if not uri.pinned:
        return _untraced(
            item,
            (
                f"unpinned: ref {uri.ref!r} is not a commit id; cite the snapshot by the commit "
                "the retriever's index was built from",
            ),
        )
    key = (uri.scheme, uri.repository, uri.ref)
    found = snapshots.get(key)
    if found is None:
        found = snapshots[key] = _snapshot(uri, ledger, trust, index, origin)
    rec, snapshot_ref, problem = found
    if rec is None:
        return _untraced(item, (problem or "no-snapshot-record: not found",), snapshot_ref)
    # The object: by path when given, else by the chunk's digest.
    path = uri.path.rstrip("/")
    if path:
        matches = [o for o in rec.objects if o.path == path]
        missing = f"{path} is not an object of the signed snapshot record {rec.log_index}"
    else:
        matches = [o for o in rec.objects if o.blake3 == item.digest]
        missing = (
            f"no object of snapshot record {rec.log_index} has the chunk's BLAKE3; give the "
            "object's path in the snapshot URI"
        )
    if not matches:
        return _untraced(item, (f"not-in-snapshot: {missing}",), snapshot_ref, verified=True)
    obj = matches[0]
    # The records behind it, walked as the training gate walks them.
    state = InputState(str(uri), uri)
    reasons: list[Reason] = []
    lineage = CustodyWalk(state, ledger, trust, index, reasons)
    if item.ingest:
        walk = list(item.ingest)
        via = "the caller names"
    else:
        derived = derived_from(rec.statement.predicate)
        walk = [(i, derived.get(i, "")) for i in obj.records]
        via = "the signed snapshot record derives from"
    covered = lineage.covers(obj.path, obj.blake3, walk, via=via)
    ingests = tuple(state.ingests)
    ingest_refs = tuple(
        _descriptor(i.log_index, state.attestations[i.log_index], origin)
        for i in ingests
        if i.log_index is not None and i.log_index in state.attestations
    )
    facts = ChunkFacts(
        digest=item.digest,
        rank=item.rank,
        uri=str(SnapshotURI(uri.scheme, uri.repository, uri.ref, obj.path)),
        repository=uri.repository,
        commit=uri.ref,
        path=obj.path,
        pinned=True,
        snapshot_verified=True,
        covered=covered,
        ingests=ingests,
        steps=tuple(state.steps),
    )
    texts = tuple(f"{r.code}: {r.message}" for r in reasons)
    return _ChunkTrace(facts, texts, snapshot_ref, ingest_refs)


def _untraced(
    item: _Retrieved,
    reasons: tuple[str, ...],
    snapshot_ref: ResourceDescriptor | None = None,
    *,
    verified: bool = False,
) -> _ChunkTrace:
    uri = item.snapshot
    facts = ChunkFacts(
        digest=item.digest,
        rank=item.rank,
        uri=str(uri),
        repository=uri.repository,
        commit=uri.ref,
        path=uri.path.rstrip("/") or None,
        pinned=uri.pinned,
        snapshot_verified=verified,
        covered=False,
    )
    return _ChunkTrace(facts, reasons, snapshot_ref, ())


# --------------------------------------------------------------------------
# Small helpers


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _parse_uri(text: object) -> SnapshotURI:
    if not isinstance(text, str):
        raise InputError(f"snapshot must be a snapshot URI string, got {type(text).__name__}")
    return SnapshotURI.parse(text)


def _descriptor(index: int, sha: str, origin: str) -> ResourceDescriptor:
    """A pointer to a ledger record: where (log URI and index) and which (envelope SHA-256).

    Kept small on purpose (no name, no media type): every chunk of every
    answer carries two or three, and the canonical JSON of the statement is
    most of an answer's recording cost. The field a descriptor sits in says
    what kind of record it points at.
    """
    return ResourceDescriptor(
        uri=f"provgate+log://{origin}/{index}",
        digest={"sha256": sha},
        annotations={"logIndex": index},
    )


def _policy_descriptor(policy: Policy | AllOf) -> ResourceDescriptor:
    """The policy's source and digest; an AllOf of policies by the digest of their digests."""
    from prov_core.gate import policy_uri

    if isinstance(policy, Policy):
        return ResourceDescriptor(
            name="policy", uri=policy_uri(policy), digest={"sha256": policy.digest}
        )
    if isinstance(policy, AllOf) and all(isinstance(c, Policy) for c in policy.children):
        children = [c for c in policy.children if isinstance(c, Policy)]
        digest = hashlib.sha256(canonical_json([c.digest for c in children])).hexdigest()
        uri = "provgate:policy/all-of:" + ",".join(policy_uri(c) for c in children)
        return ResourceDescriptor(name="policy", uri=uri, digest={"sha256": digest})
    raise InputError("policy must be a Policy or an AllOf of Policy objects")


def _keys(trust: _Trust) -> dict[str, str]:
    return {e.keyid: e.status for e in trust.entries()}


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return (st.st_mtime_ns, st.st_size)


def _unreachable(exc: BaseException) -> str:
    detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"the ledger cannot be read, so the answer is blocked (fails closed): {detail}"


def _located(reason: str, where: str) -> str:
    """``code: message`` -> ``code: where: message``."""
    code, sep, message = reason.partition(": ")
    return f"{code}: {where}: {message}" if sep else f"{where}: {reason}"


def _fields(facts: ChunkFacts) -> dict[str, Any]:
    return {f: getattr(facts, f) for f in facts.__dataclass_fields__}
