"""Is this sample in that snapshot? Membership and non-membership proofs against signed roots.

The question of a data subject or a copyright holder — "was my document, my
row, in the data you trained on?" — is answered per pinned snapshot, with
proofs anyone can check against roots that signed records hold:

- **files**: the snapshot record signs its objects as a sample set
  (``samples``, leaf encoding ``provgate-file/v1``: one id per object's
  BLAKE3), so a file id is proven in or out with one Merkle proof against
  that root;
- **rows**: each tabular object covered by a single-file ingest of rows is
  linked, in the signed snapshot record, to that ingest record, whose signed
  ``samples`` root covers every row id. The sorted ids come from the
  :class:`~prov_core.sample_store.SampleStore`, checked against the signed
  root before any proof is made from them.

A tabular object with no recorded row set (written by a transform step,
uncovered, or ingested where the sample set was not kept) cannot be proven
not to hold the row: it is listed as *unprovable*, and the answer is then
``"unknown"`` rather than ``"absent"``. Every record a proof relies on has
its signature checked against the trust store first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from prov_core._rows import ROW_ENCODING
from prov_core._samples import (
    MembershipProof,
    SampleProof,
    SampleSet,
    check_sample_proof,
    prove_sample,
)
from prov_core.digest import is_tabular
from prov_core.errors import IntegrityError, NotFoundError, ProvgateError, VerificationError
from prov_core.records import decode_entry
from prov_core.statement import INGEST_V1, SNAPSHOT_V1

if TYPE_CHECKING:
    from prov_core.content_index import ContentIndex
    from prov_core.ledger.base import Ledger
    from prov_core.sample_store import SampleStore
    from prov_core.signing import KeyPolicy
    from prov_core.snapshots.base import SnapshotStore

__all__ = [
    "SampleEvidence",
    "SampleHolders",
    "SnapshotSampleAnswer",
    "file_sample_id",
    "prove_in_snapshot",
    "records_holding",
]


@dataclass(frozen=True)
class SampleEvidence:
    """SampleEvidence is one proof and the signed record whose root it is checked against."""

    scope: str  # "snapshot" or "object PATH"
    record: int  # the log index of the record that signs the root
    proof: SampleProof

    @property
    def member(self) -> bool:
        return isinstance(self.proof, MembershipProof)

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "record": self.record, "proof": self.proof.to_json()}


@dataclass
class SnapshotSampleAnswer:
    """SnapshotSampleAnswer says whether a sample is in a snapshot, with the proofs."""

    sample_id: str
    uri: str
    commit_id: str
    snapshot_record: int
    evidence: list[SampleEvidence] = field(default_factory=list)
    unprovable: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Literal["present", "absent", "unknown"]:
        """present if any proof shows membership; absent only if every part was proven."""
        if any(e.member for e in self.evidence):
            return "present"
        return "unknown" if self.unprovable else "absent"

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample": self.sample_id,
            "snapshot": self.uri,
            "commit": self.commit_id,
            "snapshotRecord": self.snapshot_record,
            "verdict": self.verdict,
            "evidence": [e.to_dict() for e in self.evidence],
            "unprovable": list(self.unprovable),
        }


def prove_in_snapshot(
    sample_id: str,
    store: SnapshotStore,
    repo: str,
    ref: str,
    *,
    ledger: Ledger,
    index: ContentIndex,
    trust: KeyPolicy,
    samples: SampleStore,
) -> SnapshotSampleAnswer:
    """prove_in_snapshot proves ``sample_id`` (64 hex) in or out of the snapshot at ``ref``.

    Raises :class:`~prov_core.errors.InputError` for a malformed id,
    :class:`~prov_core.errors.NotFoundError` for an unknown ref and
    :class:`~prov_core.errors.VerificationError` when the snapshot record
    does not verify (no proof is made from an unverified root).
    """
    from prov_core._samples import _as_id
    from prov_core.signing import Envelope, verify_envelope
    from prov_core.snapshot_record import find_snapshot_record

    sid = _as_id(sample_id).hex()
    commit = store.get_commit(repo, ref)
    record = find_snapshot_record(ledger, index, store, repo, commit)
    verify_envelope(Envelope.parse(record.leaf), trust, predicate_type=SNAPSHOT_V1)
    answer = SnapshotSampleAnswer(
        sample_id=sid,
        uri=f"{store.scheme}://{repo}/{commit.id}",
        commit_id=commit.id,
        snapshot_record=record.log_index,
    )
    # Files: the snapshot's own signed sample set.
    file_set = SampleSet.of_files(o.blake3 for o in record.objects)
    signed = record.statement.predicate.get("samples")
    if signed != file_set.summary():
        answer.unprovable.append(
            f"snapshot record {record.log_index} signs no file sample set of its objects "
            "(made before provgate signed one); its object list is signed in full instead"
        )
    else:
        answer.evidence.append(
            _checked("snapshot", record.log_index, prove_sample(file_set, sid), file_set)
        )
    # Rows: through the ingest records covering each tabular object.
    row_sets = _RowSets(ledger, trust, samples)
    for obj in record.objects:
        if not is_tabular(obj.path):
            continue
        sets = [row_sets.covering(n, obj.blake3) for n in obj.records]
        usable = [
            (n, s) for n, s in zip(obj.records, sets, strict=True) if isinstance(s, SampleSet)
        ]
        if not usable:
            why = "; ".join(s for s in sets if isinstance(s, str)) or "no record covers it"
            answer.unprovable.append(f"{obj.path}: no row sample set to prove against ({why})")
            continue
        n, rows = usable[0]
        answer.evidence.append(_checked(f"object {obj.path}", n, prove_sample(rows, sid), rows))
    return answer


def _checked(scope: str, record: int, proof: SampleProof, against: SampleSet) -> SampleEvidence:
    """_checked verifies a fresh proof as a reader would, before it is handed out."""
    if not check_sample_proof(proof, against.root, against.count):
        raise IntegrityError(f"{scope}: the proof made does not verify", reason="bad proof")
    return SampleEvidence(scope, record, proof)


class _RowSets:
    """_RowSets loads and verifies the row sample sets of ingest records, once each."""

    def __init__(self, ledger: Ledger, trust: KeyPolicy, samples: SampleStore) -> None:
        self.ledger, self.trust, self.samples = ledger, trust, samples
        self._cache: dict[int, tuple[SampleSet | str, Mapping[str, Any]]] = {}

    def covering(self, log_index: int, blake3_hex: str) -> SampleSet | str:
        """covering returns ingest ``log_index``'s verified row set, or why there is none."""
        if log_index not in self._cache:
            self._cache[log_index] = self._load(log_index)
        got, manifest = self._cache[log_index]
        # The claim "this ingest covers this object" is re-checked: one file, these bytes.
        if isinstance(got, SampleSet) and (
            manifest.get("files") != 1
            or blake3_hex not in (manifest.get("root"), manifest.get("blake3"))
        ):
            return f"ingest {log_index} is not an ingest of this object's bytes"
        return got

    def _load(self, log_index: int) -> tuple[SampleSet | str, Mapping[str, Any]]:
        from prov_core.signing import Envelope, verify_envelope

        try:
            leaf = self.ledger.entry(log_index)
            _, statement = decode_entry(leaf)
        except ProvgateError as exc:
            return f"record {log_index} unreadable: {exc}", {}
        predicate = statement.get("predicate") or {}
        manifest = predicate.get("manifest") or {}
        if statement.get("predicateType") != INGEST_V1:
            return f"record {log_index} is a transform step, which keeps no row sample set", {}
        summary = predicate.get("samples") or {}
        if summary.get("leafEncoding") != ROW_ENCODING:
            return f"ingest {log_index} sampled files, not rows", {}
        try:
            verify_envelope(Envelope.parse(leaf), self.trust, predicate_type=INGEST_V1)
        except VerificationError as exc:
            return f"ingest {log_index} does not verify: {exc}", {}
        try:
            rows = self.samples.get(str(summary["root"]), ROW_ENCODING, int(summary["count"]))
        except NotFoundError as exc:
            return str(exc), {}
        except IntegrityError as exc:
            return f"ingest {log_index}: stored sample set refused: {exc}", {}
        return rows, manifest


@dataclass
class SampleHolders:
    """SampleHolders are the records whose signed sample sets contain a sample, with proofs."""

    sample_id: str
    evidence: list[SampleEvidence] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)

    @property
    def records(self) -> list[int]:
        return sorted({e.record for e in self.evidence if e.member})

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample": self.sample_id,
            "records": self.records,
            "evidence": [e.to_dict() for e in self.evidence if e.member],
            "unchecked": list(self.unchecked),
        }


def records_holding(
    sample_id: str,
    *,
    ledger: Ledger,
    ingests: Sequence[int],
    snapshots: Sequence[int],
    trust: KeyPolicy,
    samples: SampleStore,
) -> SampleHolders:
    """records_holding finds the ingest and snapshot records whose signed sets contain a sample.

    ``ingests`` and ``snapshots`` are the log indices to look in (the lineage
    index lists them). An ingest's set is read from ``samples`` (checked
    against its signed root); one not kept here is listed as *unchecked*. A
    snapshot's file set is rebuilt from its signed objects. Records that do
    not verify against ``trust`` are listed as unchecked, never used.
    """
    from prov_core._samples import _as_id
    from prov_core.signing import Envelope, verify_envelope
    from prov_core.snapshot_record import parse_snapshot_record

    sid = _as_id(sample_id)
    found = SampleHolders(sid.hex())
    for n in ingests:
        try:
            leaf = ledger.entry(n)
            _, statement = decode_entry(leaf)
            summary = (statement.get("predicate") or {}).get("samples") or {}
            root, encoding = str(summary["root"]), str(summary["leafEncoding"])
            verify_envelope(Envelope.parse(leaf), trust, predicate_type=INGEST_V1)
            held = samples.get(root, encoding, int(summary["count"]))
        except (KeyError, TypeError, ValueError) as exc:
            found.unchecked.append(f"ingest {n}: no usable samples summary ({exc})")
            continue
        except ProvgateError as exc:
            found.unchecked.append(f"ingest {n}: {exc}")
            continue
        if sid in held:
            found.evidence.append(_checked(f"ingest {n}", n, prove_sample(held, sid), held))
    for n in snapshots:
        try:
            leaf = ledger.entry(n)
            record = parse_snapshot_record(n, leaf)
            verify_envelope(Envelope.parse(leaf), trust, predicate_type=SNAPSHOT_V1)
        except ProvgateError as exc:
            found.unchecked.append(f"snapshot {n}: {exc}")
            continue
        files = SampleSet.of_files(o.blake3 for o in record.objects)
        if record.statement.predicate.get("samples") == files.summary() and sid in files:
            found.evidence.append(_checked(f"snapshot {n}", n, prove_sample(files, sid), files))
    return found


def file_sample_id(blake3_hex: str) -> str:
    """file_sample_id returns the ``provgate-file/v1`` sample id (hex) of a file's BLAKE3."""
    from prov_core._samples import file_id_of_digest

    return file_id_of_digest(blake3_hex).hex()
