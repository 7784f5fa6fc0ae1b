"""The chain-of-custody walk: from a snapshot's objects back to verified ingest records.

:class:`CustodyWalk` is what the training gate (step 4 of
:mod:`prov_core.gate`) and inference-time tracing (:mod:`prov_core.inference`)
use to decide whether content is covered by verified records: each record
is read from the ledger once, checked against the envelope SHA-256 the
record naming it signed, verified against the trust store, and judged; a
transform step is followed through every one of its inputs. Problems become
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
from prov_core.policy import IngestFacts, InputFacts, StepFacts
from prov_core.snapshots.base import SnapshotURI
from prov_core.statement import INGEST_V1, SLSA_PROVENANCE_V1, SNAPSHOT_V1, Statement

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

    def facts(self) -> InputFacts:
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
    to such ingest records. ``kind`` is the record's predicate type (``""``
    when it could not be read).
    """

    log_index: int
    ok: bool
    kind: str
    predicate: Mapping[str, Any] | None = None


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
            return CustodyNode(log_index, verified, kind, predicate)
        name = step_name(statement, log_index)
        self.state.steps.append(
            StepFacts(
                name=name,
                signer_keyid=keyid,
                key_status=status,
                verified=verified,
                log_index=log_index,
                predicate_type=kind,
            )
        )
        if kind not in (SLSA_PROVENANCE_V1, SNAPSHOT_V1):
            self._reason(
                "unsupported-record",
                f"record {log_index} is a {kind} record; only ingest records, transform "
                "steps (SLSA Provenance) and the snapshots they read can stand behind data",
            )
            return CustodyNode(log_index, False, kind, predicate)
        if not verified:
            return CustodyNode(log_index, False, kind, predicate)
        if kind == SNAPSHOT_V1:
            ok = self._snapshot_objects(log_index, leaf, depth)
        else:
            ok = self._step_inputs(log_index, name, predicate, depth)
        return CustodyNode(log_index, ok, kind, predicate)

    def _snapshot_objects(self, log_index: int, leaf: bytes, depth: int) -> bool:
        """_snapshot_objects: a snapshot a step read leads to ingest if each of its objects does."""
        from prov_core.snapshot_record import parse_snapshot_record

        try:
            rec = parse_snapshot_record(log_index, leaf)
        except ProvgateError as exc:
            self._reason("malformed-record", f"snapshot record {log_index}: {exc}")
            return False
        derived = derived_from(rec.statement.predicate)
        bare: list[str] = []
        for obj in rec.objects:
            covered = False
            for i in obj.records:
                node = self.record(
                    i,
                    derived.get(i),
                    depth=depth + 1,
                    via=f"snapshot record {log_index} derives from",
                )
                if node.ok and self.refuted(node, obj.blake3) is None:
                    covered = True
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
            return False
        return True

    def _step_inputs(
        self, log_index: int, name: str, predicate: Mapping[str, Any], depth: int
    ) -> bool:
        """_step_inputs is true when every input of the step leads to verified ingest records."""
        build = predicate.get("buildDefinition")
        deps = build.get("resolvedDependencies") if isinstance(build, dict) else None
        if not isinstance(deps, list) or not deps:
            self._reason(
                "step-input",
                f"transform step record {log_index} ({name}) names no input, so it reaches no "
                "ingest record",
            )
            return False
        results = [self._dependency(log_index, name, d, depth) for d in deps]
        return all(results)

    def _dependency(self, step: int, name: str, dep: Any, depth: int) -> bool:
        """_dependency follows one input of step ``step``; a reason when it leads nowhere."""
        dep = dep if isinstance(dep, dict) else {}
        label = dep.get("name") or dep.get("uri") or "?"
        where = f"transform step record {step} ({name}): input {label!r}"
        annotations = dep.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
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
            if node.ok:
                return True
            self._reason(
                "step-input",
                f"{where}: attestation {attested} does not lead to verified ingest records",
            )
            return False
        b3 = annotations.get("blake3")
        if not isinstance(b3, str) or not _HEX64.fullmatch(b3):
            self._reason(
                "step-input",
                f"{where} has neither a log index nor a BLAKE3 digest, so no record can be "
                "found for it",
            )
            return False
        refs = self.index.covering([b3], ledger=self.ledger).get(b3, [])
        if not refs:
            self._reason(
                "step-input",
                f"{where}: no record covers its content (BLAKE3 {b3}); ingest it, or record "
                "the step that wrote it, before the step that reads it",
            )
            return False
        found = False
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
            found = True
        if not found:
            indices = ", ".join(str(r.log_index) for r in refs)
            self._reason(
                "step-input",
                f"{where}: no record covering its content (BLAKE3 {b3}; records {indices}) "
                "leads to verified ingest records",
            )
        return found

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
        covered = False
        for log_index, expected in records:
            node = self.record(log_index, expected or None, depth=0, via=via)
            if not node.ok:
                continue
            claim = self.refuted(node, blake3_hex)
            if claim is not None:
                self._reason(
                    "coverage-mismatch",
                    f"{path}: {kind_name(node.kind)} record {log_index} cannot cover it: {claim}",
                )
                continue
            covered = True
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


def step_outputs(predicate: Mapping[str, Any]) -> set[str]:
    """step_outputs returns the BLAKE3 of every output a step's signed record names."""
    run = predicate.get("runDetails")
    byproducts = run.get("byproducts") if isinstance(run, dict) else None
    out: set[str] = set()
    for b in byproducts if isinstance(byproducts, list) else []:
        annotations = b.get("annotations") if isinstance(b, dict) else None
        b3 = annotations.get("blake3") if isinstance(annotations, dict) else None
        if isinstance(b3, str):
            out.add(b3)
    return out


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
