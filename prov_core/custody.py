"""The chain-of-custody walk: from a snapshot's objects back to verified ingest records.

:class:`CustodyWalk` is what the training gate (step 4 of
:mod:`prov_core.gate`) and inference-time tracing (:mod:`prov_core.inference`)
use to decide whether content is covered by verified records: each record
is read from the ledger once, checked against the envelope SHA-256 the
record naming it signed, verified against the trust store, and judged; a
transform step is followed through every one of its inputs (a gate decision
a training step names is a non-data input: it must verify and have PASSED).
A generation step (synthetic data, :mod:`prov_core.synthetic`) is a step
too: its generator leads through the record that produced the model's bytes
to that model's training data; the walk counts generations per record
(:attr:`CustodyNode.depth`) and collects
:class:`~prov_core.policy.GenerationFacts`. Problems become
:class:`Reason` s on the :class:`InputState` being judged, never exceptions
(ledger failures excepted: the caller fails closed on them).

:mod:`prov_core.lineage` answers lineage questions for people (trace, verify
a chain, which models used X) over an index; this walk is the gate's own,
bounded and policy-facing: it builds the :class:`~prov_core.policy.IngestFacts`
and :class:`~prov_core.policy.StepFacts` the CEL policies see.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from prov_core.errors import (
    InputError,
    IntegrityError,
    ProvgateError,
    RevokedKeyError,
    SignatureError,
    UntrustedKeyError,
    VerificationError,
)
from prov_core.policy import GenerationFacts, IngestFacts, InputFacts, StepFacts
from prov_core.snapshots.base import SnapshotURI
from prov_core.statement import INGEST_V1, SLSA_PROVENANCE_V1, SLSA_VSA_V1, SNAPSHOT_V1, Statement
from prov_core.step import GENERATION_BUILD_TYPE, TRAINING_BUILD_TYPE
from prov_core.synthetic import ROLE_GENERATOR, ROLE_GENERATOR_TRAINING, ROLE_SEED

if TYPE_CHECKING:
    from prov_core.content_index import ContentIndex
    from prov_core.ledger.base import Ledger
    from prov_core.sample_store import SampleStore
    from prov_core.signing import KeyPolicy
    from prov_core.snapshot_record import SnapshotRecord

__all__ = [
    "MAX_NAMED_OBJECTS",
    "MAX_STEP_DEPTH",
    "CustodyNode",
    "CustodyWalk",
    "InputState",
    "Reason",
    "key_status",
    "kind_name",
    "object_samples",
    "signature_code",
    "step_name",
    "step_outputs",
]

MAX_NAMED_OBJECTS: Final = 100
"""MAX_NAMED_OBJECTS bounds the per-object reasons of one kind per input (then one summary)."""
MAX_STEP_DEPTH: Final = 64
"""MAX_STEP_DEPTH bounds how many transform steps the walk follows from a snapshot to ingest."""

_HEX64: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Reason:
    """Reason is one thing that refuses the gate: a ``code``, the input it is about, a message.

    ``input`` is the URI as the caller wrote it (``None`` for reasons about
    the whole decision: policy rules, the ledger); ``rule_id`` is the policy
    rule that failed, for ``code == "policy"``.
    """

    code: str
    input: str | None
    message: str
    rule_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"code", "input", "rule", "message"}`` (the CLI's JSON form)."""
        return {
            "code": self.code,
            "input": self.input,
            "rule": self.rule_id,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = f"{self.input}: " if self.input else ""
        rule = f" [{self.rule_id}]" if self.rule_id else ""
        return f"{self.code}{rule}: {where}{self.message}"


@dataclass
class InputState:
    """What the gate established about one input (mutable while it is being judged)."""

    text: str
    uri: SnapshotURI
    store_kind: str = ""
    commit: str | None = None
    record: SnapshotRecord | None = None
    objects: int = 0
    uncovered: list[str] = field(default_factory=list)
    ingests: list[IngestFacts] = field(default_factory=list)
    steps: list[StepFacts] = field(default_factory=list)
    attestations: dict[int, str] = field(default_factory=dict)  # log index -> envelope sha256
    generations: list[GenerationFacts] = field(default_factory=list)
    synthetic_objects: list[str] = field(default_factory=list)
    samples: int | None = 0
    synthetic_samples: int | None = 0
    bytes: int = 0
    synthetic_bytes: int = 0
    generation_depth: int = 0

    def add_object(self, path: str, size: int, nodes: Sequence[CustodyNode], blake3: str) -> None:
        """add_object counts one object of the input, covered by ``nodes`` (maybe none).

        It is synthetic when a generation stands behind any of them; its samples
        are the count the first of them signs (unknown when none does).
        """
        depth = max((n.depth for n in nodes), default=0)
        counts = (object_samples(n, blake3) for n in nodes)
        count = next((c for c in counts if c is not None), None)
        self.bytes += size
        self.samples = None if self.samples is None or count is None else self.samples + count
        if depth > 0:
            self.synthetic_objects.append(path)
            self.synthetic_bytes += size
            self.generation_depth = max(self.generation_depth, depth)
            if self.synthetic_samples is not None:
                self.synthetic_samples = None if count is None else self.synthetic_samples + count

    def facts(self) -> InputFacts:
        samples = self.samples
        synthetic = self.synthetic_samples if samples is not None else None
        if samples and synthetic is not None:
            fraction = synthetic / samples
        else:
            fraction = self.synthetic_bytes / self.bytes if self.bytes else 0.0
        return InputFacts(
            uri=self.text,
            store=self.store_kind or ("local" if self.uri.scheme == "provgate" else "lakefs"),
            repository=self.uri.repository,
            ref=self.uri.ref,
            commit=self.commit,
            pinned=self.uri.pinned and self.commit == self.uri.ref,
            objects=self.objects,
            uncovered=tuple(self.uncovered),
            ingests=tuple(self.ingests),
            steps=tuple(self.steps),
            generations=tuple(self.generations),
            synthetic_objects=tuple(self.synthetic_objects),
            samples=samples,
            synthetic_samples=synthetic,
            synthetic_fraction=fraction,
            generation_depth=self.generation_depth,
        )


def derived_from(predicate: Mapping[str, Any]) -> dict[int, str]:
    """derived_from maps log index -> envelope sha256 from a predicate's ``derivedFrom``."""
    out: dict[int, str] = {}
    raw = predicate.get("derivedFrom")
    for d in raw if isinstance(raw, list) else []:
        if not isinstance(d, dict):
            continue
        annotations = d.get("annotations")
        digest = d.get("digest")
        if isinstance(annotations, dict) and isinstance(digest, dict):
            i, sha = annotations.get("logIndex"), digest.get("sha256")
            if type(i) is int and isinstance(sha, str):
                out[i] = sha
    return out


def signature_code(exc: VerificationError, other: str = "bad-signature") -> str:
    """signature_code names why a signature check failed; ``other`` for any other failure."""
    if isinstance(exc, RevokedKeyError):
        return "revoked-key"
    if isinstance(exc, UntrustedKeyError):
        return "untrusted-key"
    if isinstance(exc, SignatureError):
        return "bad-signature"
    return other


@dataclass(frozen=True)
class CustodyNode:
    """CustodyNode is the gate's verdict on one record of the lineage.

    ``ok``: an ingest record that verifies, or a transform step (or a
    snapshot a step read) that verifies and whose every input (object) leads
    to such ingest records; for a gate decision a training step names, that
    it verifies and PASSED. ``kind`` is the record's predicate type (``""``
    when it could not be read). ``depth`` counts the generations (synthetic
    data, :mod:`prov_core.synthetic`) behind the record, ``ingests`` the log
    indices of the verified ingest records it leads to.
    """

    log_index: int
    ok: bool
    kind: str
    predicate: Mapping[str, Any] | None = None
    depth: int = 0
    ingests: frozenset[int] = frozenset()


class CustodyWalk:
    """CustodyWalk walks the records behind one input, judging each record once.

    From a snapshot object's records, an ingest record ends the walk; a
    transform step (SLSA Provenance) continues through its
    ``resolvedDependencies``: an attestation input by its log index (the
    entry must hash to the descriptor's sha256), an artifact input by its
    BLAKE3 through the content index (each covering entry must hash to the
    index row's envelope sha256, and its signed content must name that
    BLAKE3). A snapshot record a step read (an attestation input) leads to
    ingest records when each of its signed objects does, through the records
    it names. At most :data:`MAX_STEP_DEPTH` steps deep; a record met again on
    the path being walked (a cycle through content digests) does not count.
    Ledger failures raise (the caller turns them into a refusal).
    """

    def __init__(
        self,
        state: InputState,
        ledger: Ledger,
        trust: KeyPolicy,
        index: ContentIndex,
        reasons: list[Reason],
        *,
        samples: SampleStore | None = None,
    ) -> None:
        self.state = state
        self.samples = samples
        self.ledger = ledger
        self.trust = trust
        self.index = index
        self.reasons = reasons
        self._nodes: dict[int, CustodyNode] = {}
        self._leaves: dict[int, bytes] = {}
        self._active: set[int] = set()
        self._mismatched: set[tuple[int, str | None]] = set()

    def _reason(self, code: str, message: str) -> None:
        self.reasons.append(Reason(code, self.state.text, message))

    def record(
        self, log_index: int, expected_sha256: str | None, *, depth: int, via: str
    ) -> CustodyNode:
        """record judges log entry ``log_index``, which ``via`` names by ``expected_sha256``."""
        if log_index not in self._leaves:
            self._leaves[log_index] = self.ledger.entry(log_index)
        sha = hashlib.sha256(self._leaves[log_index]).hexdigest()
        self.state.attestations[log_index] = sha
        if expected_sha256 is None or sha != expected_sha256:
            if (log_index, expected_sha256) not in self._mismatched:
                self._mismatched.add((log_index, expected_sha256))
                self._reason(
                    "record-mismatch",
                    f"log entry {log_index} is not the record {via} (envelope sha256 {sha}, "
                    f"signed {expected_sha256})",
                )
            return CustodyNode(log_index, False, "")
        done = self._nodes.get(log_index)
        if done is not None:
            return done
        if log_index in self._active:  # a cycle: this path reaches nothing new
            # (a record judged while an ancestor was active keeps its verdict even
            # if another path would have reached ingest: conservative, fails closed)
            return CustodyNode(log_index, False, "")
        if depth > MAX_STEP_DEPTH:
            self._reason(
                "lineage-too-deep",
                f"record {log_index} is more than {MAX_STEP_DEPTH} transform steps away from "
                "the snapshot; the gate does not walk further",
            )
            return CustodyNode(log_index, False, "")
        self._active.add(log_index)
        try:
            node = self._judge(log_index, depth)
        finally:
            self._active.discard(log_index)
        self._nodes[log_index] = node
        return node

    def _judge(self, log_index: int, depth: int) -> CustodyNode:
        from prov_core.signing import Envelope, verify_envelope

        leaf = self._leaves[log_index]
        try:
            envelope: Envelope = Envelope.parse(leaf)
            statement = Statement.parse(envelope.payload)
        except ProvgateError as exc:
            self._reason("malformed-record", f"log entry {log_index}: {exc}")
            return CustodyNode(log_index, False, "")
        kind = statement.predicate_type
        predicate = statement.predicate
        keyid = envelope.signatures[0].keyid if envelope.signatures else ""
        status = key_status(self.trust, keyid)
        verified = True
        try:
            verify_envelope(envelope, self.trust, predicate_type=kind)
        except VerificationError as exc:
            verified = False
            self._reason(signature_code(exc), f"{kind_name(kind)} record {log_index}: {exc}")
        if kind == INGEST_V1:
            try:
                facts = IngestFacts.from_predicate(
                    predicate,
                    signer_keyid=keyid,
                    key_status=status,
                    verified=verified,
                    log_index=log_index,
                )
            except InputError as exc:
                self._reason("malformed-record", f"ingest record {log_index}: {exc}")
                return CustodyNode(log_index, False, kind)
            self.state.ingests.append(facts)
            return CustodyNode(log_index, verified, kind, predicate, ingests=frozenset({log_index}))
        if kind == SLSA_VSA_V1:  # judged where it is used: a training step's gate decision
            passed = predicate.get("verificationResult") == "PASSED"
            return CustodyNode(log_index, verified and passed, kind, predicate)
        name = step_name(statement, log_index)
        self.state.steps.append(
            StepFacts(
                name=name,
                signer_keyid=keyid,
                key_status=status,
                verified=verified,
                log_index=log_index,
                predicate_type=kind,
                build_type=build_type(predicate),
            )
        )
        if kind not in (SLSA_PROVENANCE_V1, SNAPSHOT_V1):
            node = CustodyNode(log_index, False, kind, predicate)
            self._unsupported(node)
            return node
        generation = kind == SLSA_PROVENANCE_V1 and build_type(predicate) == GENERATION_BUILD_TYPE
        if not verified:
            if generation:
                self._generation(
                    log_index, name, predicate, [], keyid=keyid, status=status, verified=False
                )
            return CustodyNode(log_index, False, kind, predicate)
        if kind == SNAPSHOT_V1:
            ok, below = self._snapshot_objects(log_index, leaf, depth)
        else:
            ok, below = self._step_inputs(log_index, name, predicate, depth)
        nodes = [n for _, n in below]
        generations = max((n.depth for n in nodes), default=0)
        if generation:
            generations += 1
            self._generation(
                log_index, name, predicate, below, keyid=keyid, status=status, verified=True
            )
        ingests = frozenset().union(*(n.ingests for n in nodes))
        return CustodyNode(log_index, ok, kind, predicate, generations, ingests)

    def _generation(
        self,
        log_index: int,
        name: str,
        predicate: Mapping[str, Any],
        below: Sequence[tuple[str, CustodyNode]],
        *,
        keyid: str,
        status: str,
        verified: bool,
    ) -> None:
        """_generation adds the facts of generation step ``log_index`` (its inputs walked)."""
        build = predicate.get("buildDefinition")
        external = build.get("externalParameters") if isinstance(build, dict) else None
        external = external if isinstance(external, dict) else {}
        model = external.get("generator")
        digest = model.get("digest") if isinstance(model, dict) else None
        sha = digest.get("sha256") if isinstance(digest, dict) else None
        parameters = external.get("parameters")
        by_index = {r.log_index: r for r in self.state.ingests}

        def facts(indices: frozenset[int]) -> tuple[IngestFacts, ...]:
            return tuple(by_index[i] for i in sorted(indices) if i in by_index)

        generator = [n for role, n in below if role == ROLE_GENERATOR]
        training = next(
            (n.log_index for n in generator if build_type(n.predicate) == TRAINING_BUILD_TYPE),
            None,
        )
        seeds = frozenset().union(*(n.ingests for role, n in below if role == ROLE_SEED))
        every = frozenset().union(*(n.ingests for _, n in below))
        self.state.generations.append(
            GenerationFacts(
                name=name,
                log_index=log_index,
                verified=verified,
                signer_keyid=keyid,
                key_status=status,
                depth=1 + max((n.depth for _, n in below), default=0),
                generator_digest=sha if isinstance(sha, str) else None,
                generator_verified=bool(generator),
                generator_training_log_index=training,
                samples=_outputs_samples(predicate),
                parameters=parameters if isinstance(parameters, dict) else {},
                ingests=facts(every),
                seed_ingests=facts(seeds),
            )
        )

    def _unsupported(self, node: CustodyNode) -> None:
        self._reason(
            "unsupported-record",
            f"record {node.log_index} is a {node.kind} record; only ingest records, transform "
            "steps (SLSA Provenance) and the snapshots they read can stand behind data",
        )

    def _snapshot_objects(
        self, log_index: int, leaf: bytes, depth: int
    ) -> tuple[bool, list[tuple[str, CustodyNode]]]:
        """_snapshot_objects: a snapshot a step read leads to ingest if each of its objects does."""
        from prov_core.snapshot_record import parse_snapshot_record

        try:
            rec = parse_snapshot_record(log_index, leaf)
        except ProvgateError as exc:
            self._reason("malformed-record", f"snapshot record {log_index}: {exc}")
            return False, []
        derived = derived_from(rec.statement.predicate)
        bare: list[str] = []
        below: list[tuple[str, CustodyNode]] = []
        for obj in rec.objects:
            covered = False
            for i in obj.records:
                node = self.record(
                    i,
                    derived.get(i),
                    depth=depth + 1,
                    via=f"snapshot record {log_index} derives from",
                )
                if node.kind == SLSA_VSA_V1:
                    self._unsupported(node)
                elif node.ok and self.refuted(node, obj.blake3) is None:
                    covered = True
                    below.append(("", node))
            if not covered:
                bare.append(obj.path)
        if bare or not rec.objects:
            shown = ", ".join(bare[:MAX_NAMED_OBJECTS]) + (
                f" and {len(bare) - MAX_NAMED_OBJECTS} more"
                if len(bare) > MAX_NAMED_OBJECTS
                else ""
            )
            self._reason(
                "step-input",
                f"snapshot record {log_index}, read by a transform step: "
                + (
                    f"no verified record leads from {shown} to ingest records"
                    if bare
                    else "it holds no object"
                ),
            )
            return False, below
        return True, below

    def _step_inputs(
        self, log_index: int, name: str, predicate: Mapping[str, Any], depth: int
    ) -> tuple[bool, list[tuple[str, CustodyNode]]]:
        """_step_inputs is true when every input of the step leads to verified ingest records.

        It also returns, with each input's role (``annotations.role``, or ``""``),
        the verified records each input led to.
        """
        build = predicate.get("buildDefinition")
        deps = build.get("resolvedDependencies") if isinstance(build, dict) else None
        if not isinstance(deps, list) or not deps:
            self._reason(
                "step-input",
                f"transform step record {log_index} ({name}) names no input, so it reaches no "
                "ingest record",
            )
            return False, []
        ok = True
        below: list[tuple[str, CustodyNode]] = []
        for d in deps:
            led, nodes = self._dependency(log_index, name, d, depth)
            ok = ok and led
            below.extend((_role(d), n) for n in nodes)
        if ok and not below:
            self._reason(
                "step-input",
                f"transform step record {log_index} ({name}) names no data input (only gate "
                "decisions), so it reaches no ingest record",
            )
            return False, below
        if ok and build_type(predicate) == GENERATION_BUILD_TYPE:
            ok = self._generator_trained_by(log_index, name, deps, below)
        return ok, below

    def _generator_trained_by(
        self, log_index: int, name: str, deps: list[Any], below: list[tuple[str, CustodyNode]]
    ) -> bool:
        """_generator_trained_by checks that the training record a generation names is the
        record whose signed outputs hold the generator's bytes."""
        named = {
            i
            for d in deps
            if _role(d) == ROLE_GENERATOR_TRAINING
            and type(i := _annotations(d).get("logIndex")) is int
        }
        if not named:
            return True
        producers = {n.log_index for role, n in below if role == ROLE_GENERATOR}
        if named & producers:
            return True
        self._reason(
            "step-input",
            f"generation step record {log_index} ({name}): the training attestation(s) "
            f"{', '.join(map(str, sorted(named)))} it names did not output the generator's "
            f"bytes (produced by record(s) {', '.join(map(str, sorted(producers))) or 'none'})",
        )
        return False

    def _dependency(
        self, step: int, name: str, dep: Any, depth: int
    ) -> tuple[bool, list[CustodyNode]]:
        """_dependency follows one input of step ``step``; a reason when it leads nowhere.

        It returns whether the input is satisfied and the verified data records
        it led to (none for a gate decision a training step names).
        """
        dep = dep if isinstance(dep, dict) else {}
        label = dep.get("name") or dep.get("uri") or "?"
        where = f"transform step record {step} ({name}): input {label!r}"
        annotations = _annotations(dep)
        digest = dep.get("digest")
        digest = digest if isinstance(digest, dict) else {}
        attested = annotations.get("logIndex")
        if type(attested) is int and attested >= 0:
            sha = digest.get("sha256")
            node = self.record(
                attested,
                sha if isinstance(sha, str) else None,
                depth=depth + 1,
                via=f"transform step record {step} names as its input {label!r}",
            )
            if node.kind == SLSA_VSA_V1:
                if node.ok:
                    return True, []
                self._reason(
                    "step-input",
                    f"{where}: gate decision {attested} did not pass or does not verify",
                )
                return False, []
            if node.ok:
                return True, [node]
            self._reason(
                "step-input",
                f"{where}: attestation {attested} does not lead to verified ingest records",
            )
            return False, []
        b3 = annotations.get("blake3")
        if not isinstance(b3, str) or not _HEX64.fullmatch(b3):
            self._reason(
                "step-input",
                f"{where} has neither a log index nor a BLAKE3 digest, so no record can be "
                "found for it",
            )
            return False, []
        refs = self.index.covering([b3], ledger=self.ledger).get(b3, [])
        if not refs:
            self._reason(
                "step-input",
                f"{where}: no record covers its content (BLAKE3 {b3}); ingest it, or record "
                "the step that wrote it, before the step that reads it",
            )
            return False, []
        found: list[CustodyNode] = []
        for ref in refs:
            node = self.record(
                ref.log_index,
                ref.envelope_sha256,
                depth=depth + 1,
                via=f"the content index names for input {label!r} of transform step {step}",
            )
            if not node.ok:
                continue
            claim = self.refuted(node, b3)
            if claim is not None:
                self._reason(
                    "coverage-mismatch",
                    f"{where}: {kind_name(node.kind)} record {ref.log_index} cannot cover it: "
                    f"{claim}",
                )
                continue
            found.append(node)
        if not found:
            indices = ", ".join(str(r.log_index) for r in refs)
            self._reason(
                "step-input",
                f"{where}: no record covering its content (BLAKE3 {b3}; records {indices}) "
                "leads to verified ingest records",
            )
        return bool(found), found

    def covers(
        self,
        path: str,
        blake3_hex: str,
        records: Sequence[tuple[int, str | None]],
        *,
        via: str,
    ) -> bool:
        """covers reports whether any of ``records`` (log index, expected envelope sha256)
        verifies and covers content ``blake3_hex`` at ``path``; each that verifies but
        cannot cover it is a ``coverage-mismatch`` reason."""
        return bool(self.cover(path, blake3_hex, records, via=via))

    def cover(
        self,
        path: str,
        blake3_hex: str,
        records: Sequence[tuple[int, str | None]],
        *,
        via: str,
    ) -> list[CustodyNode]:
        """cover is :meth:`covers` returning the records that do cover the content."""
        covered: list[CustodyNode] = []
        for log_index, expected in records:
            node = self.record(log_index, expected or None, depth=0, via=via)
            if node.kind == SLSA_VSA_V1:
                self._unsupported(node)
                continue
            if not node.ok:
                continue
            claim = self.refuted(node, blake3_hex)
            if claim is not None:
                self._reason(
                    "coverage-mismatch",
                    f"{path}: {kind_name(node.kind)} record {log_index} cannot cover it: {claim}",
                )
                continue
            covered.append(node)
        return covered

    def refuted(self, node: CustodyNode, blake3_hex: str) -> str | None:
        """refuted says why ``node`` cannot cover content ``blake3_hex``, or None."""
        if node.predicate is None:
            return "its record cannot be read"
        if node.kind == INGEST_V1:
            return _coverage_refuted(node.predicate, blake3_hex) or _set_refuted(
                node.predicate, blake3_hex, self.samples
            )
        if node.kind == SNAPSHOT_V1:
            return "a snapshot record vouches for no content by itself"
        if blake3_hex in step_outputs(node.predicate):
            return None
        return f"its signed outputs do not include BLAKE3 {blake3_hex}"


def step_name(statement: Statement, log_index: int) -> str:
    build = statement.predicate.get("buildDefinition")
    external = build.get("externalParameters") if isinstance(build, dict) else None
    step = external.get("step") if isinstance(external, dict) else None
    if isinstance(step, str) and step:
        return step
    return str(statement.subjects[0].name) if statement.subjects else f"entry {log_index}"


def build_type(predicate: Mapping[str, Any] | None) -> str | None:
    """build_type is an SLSA Provenance predicate's ``buildDefinition.buildType``, or None."""
    build = predicate.get("buildDefinition") if predicate is not None else None
    value = build.get("buildType") if isinstance(build, dict) else None
    return value if isinstance(value, str) else None


def _annotations(dep: Any) -> dict[str, Any]:
    annotations = dep.get("annotations") if isinstance(dep, dict) else None
    return annotations if isinstance(annotations, dict) else {}


def _role(dep: Any) -> str:
    role = _annotations(dep).get("role")
    return role if isinstance(role, str) else ""


def _byproducts(predicate: Mapping[str, Any]) -> list[Any]:
    run = predicate.get("runDetails")
    byproducts = run.get("byproducts") if isinstance(run, dict) else None
    return byproducts if isinstance(byproducts, list) else []


def _count(summary: Any) -> int | None:
    count = summary.get("count") if isinstance(summary, dict) else None
    return count if type(count) is int and count >= 0 else None


def _outputs_samples(predicate: Mapping[str, Any]) -> int | None:
    """_outputs_samples sums the sample counts a step's outputs sign, None if one does not."""
    counts = [_count(_annotations(b).get("samples")) for b in _byproducts(predicate)]
    if not counts or None in counts:
        return None
    return sum(c for c in counts if c is not None)


def object_samples(node: CustodyNode, blake3_hex: str) -> int | None:
    """object_samples is how many samples the object ``blake3_hex`` holds, as ``node`` signs it.

    An ingest of one file signs its samples (rows, or the one file); an ingest
    of several files has one sample per file; a step signs an output's count
    when it recorded ``annotations.samples`` for it. ``None`` when unknown.
    """
    from prov_core._samples import FILE_SAMPLE_ENCODING

    predicate = node.predicate
    if predicate is None:
        return None
    if node.kind == INGEST_V1:
        manifest = predicate.get("manifest")
        if isinstance(manifest, dict) and manifest.get("files") == 1:
            return _count(predicate.get("samples"))
        samples = predicate.get("samples")
        if isinstance(samples, dict) and samples.get("leafEncoding") == FILE_SAMPLE_ENCODING:
            return 1
        return None
    for b in _byproducts(predicate):
        annotations = _annotations(b)
        if annotations.get("blake3") == blake3_hex:
            return _count(annotations.get("samples"))
    return None


def step_outputs(predicate: Mapping[str, Any]) -> set[str]:
    """step_outputs returns the BLAKE3 of every output a step's signed record names."""
    return {
        b3 for b in _byproducts(predicate) if isinstance(b3 := _annotations(b).get("blake3"), str)
    }


def kind_name(predicate_type: str) -> str:
    if predicate_type == INGEST_V1:
        return "ingest"
    if predicate_type == SLSA_PROVENANCE_V1:
        return "transform step"
    return predicate_type or "unreadable"


def key_status(trust: KeyPolicy, keyid: str) -> str:
    get = getattr(trust, "get", None)
    entry = get(keyid) if callable(get) else None
    status = getattr(entry, "status", None)
    return status if isinstance(status, str) else "unknown"


def _set_refuted(
    predicate: Mapping[str, Any], blake3_hex: str, samples: SampleStore | None
) -> str | None:
    """_set_refuted checks a several-file ingest's claim against its signed file sample set.

    Only where the sorted ids are kept (:mod:`prov_core.sample_store`) and
    hash to the signed root; otherwise the claim stands as the snapshot's
    signer made it.
    """
    from prov_core._samples import FILE_SAMPLE_ENCODING, file_id_of_digest

    summary = predicate.get("samples")
    manifest = predicate.get("manifest")
    if (
        samples is None
        or not isinstance(summary, dict)
        or summary.get("leafEncoding") != FILE_SAMPLE_ENCODING
        or not isinstance(manifest, dict)
        or manifest.get("files") == 1
    ):
        return None
    root, count = summary.get("root"), summary.get("count")
    if not isinstance(root, str) or not isinstance(count, int):
        return None
    try:
        if not samples.has(root, FILE_SAMPLE_ENCODING):
            return None
        files = samples.get(root, FILE_SAMPLE_ENCODING, count)
    except IntegrityError as exc:
        return f"its stored sample set does not match its signed root ({exc})"
    except ProvgateError:
        return None
    if file_id_of_digest(blake3_hex) in files:
        return None
    return (
        f"it is an ingest of {count} files whose signed sample root {root} does not "
        f"include BLAKE3 {blake3_hex}"
    )


def _coverage_refuted(predicate: Mapping[str, Any], blake3_hex: str) -> str | None:
    """_coverage_refuted re-checks a single-file ingest's claim to cover ``blake3_hex``.

    Returns why the claim is false, or ``None`` when it holds or cannot be
    checked cheaply (an ingest of several files).
    """
    from prov_core._samples import FILE_SAMPLE_ENCODING, file_id_of_digest

    manifest = predicate.get("manifest")
    if not isinstance(manifest, dict) or manifest.get("files") != 1:
        return None
    if manifest.get("root") == blake3_hex:
        return None
    samples = predicate.get("samples")
    if (
        isinstance(samples, dict)
        and samples.get("leafEncoding") == FILE_SAMPLE_ENCODING
        and samples.get("count") == 1
        and samples.get("root") == file_id_of_digest(blake3_hex).hex()
    ):
        return None
    return (
        f"it is an ingest of one file with manifest root {manifest.get('root')}, "
        f"not this object's BLAKE3 {blake3_hex}"
    )
