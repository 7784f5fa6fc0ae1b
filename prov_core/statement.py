"""Records: in-toto Statement v1 with provgate's predicate types.

A record is an in-toto Statement v1 (``https://in-toto.io/Statement/v1``)::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": NAME, "digest": {"sha256": HEX64}}, ...],
     "predicateType": URI,
     "predicate": {...}}

serialized as RFC 8785 canonical JSON (:func:`Statement.canonical_bytes`)
and signed as the payload of a DSSE envelope (:mod:`prov_core.signing`).

Subjects carry ``sha256`` only: in-toto's digest names do not include
BLAKE3 and sigstore rejects unknown digest keys even beside ``sha256``. The
BLAKE3 digests of files and samples live in the predicate.

Predicate types:

==========================  ==========================================  =====================
constant                    predicateType                               used for
==========================  ==========================================  =====================
``SLSA_PROVENANCE_V1``      ``https://slsa.dev/provenance/v1``          transform, training
``SLSA_VSA_V1``             ``https://slsa.dev/verification_summary/v1`` gate decisions
``INGEST_V1``               ``https://provgate.dev/ingest/v1``          ingestion
``SNAPSHOT_V1``             ``https://provgate.dev/snapshot/v1``        dataset snapshots
``INFERENCE_V1``            ``https://provgate.dev/inference/v1``       RAG answers
``KEY_EVENT_V1``            ``https://provgate.dev/key-event/v1``       key rotation, revocation
``FEDERATED_UPDATE_V1``     ``https://provgate.dev/federated-update/v1`` a client's model update
==========================  ==========================================  =====================

The five provgate types are specified by JSON Schemas (draft 2020-12) in
``docs/schemas/`` and described field by field in ``docs/record-format.md``.
Each has a frozen builder here whose ``to_dict()`` is the predicate; builders
check their arguments (:class:`~prov_core.errors.InputError`, or
:class:`~prov_core.errors.LicenseError` for a license that is not an SPDX
expression). :meth:`Statement.parse` checks outside bytes strictly and names
the path of the first bad field in its :class:`~prov_core.errors.FormatError`.
Unknown fields are accepted (in-toto's parsing rule: consumers ignore fields
they do not know, so minor versions may add fields).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar, Final, Literal, Protocol

from prov_core.canonical import canonical_json, parse_json
from prov_core.errors import FormatError, InputError, LicenseError

__all__ = [
    "DSSE_MEDIA_TYPE",
    "FEDERATED_UPDATE_V1",
    "INFERENCE_V1",
    "INGEST_V1",
    "IN_TOTO_PAYLOAD_TYPE",
    "KEY_EVENT_V1",
    "PROVGATE_PREDICATE_TYPES",
    "SLSA_PROVENANCE_V1",
    "SLSA_VSA_V1",
    "SNAPSHOT_V1",
    "STATEMENT_TYPE",
    "ClientData",
    "Confidentiality",
    "FederatedUpdatePredicate",
    "InferencePredicate",
    "IngestPredicate",
    "KeyEventKind",
    "KeyEventPredicate",
    "ManifestSummary",
    "PolicyDecision",
    "Predicate",
    "Provenance",
    "ResourceDescriptor",
    "RetrievedChunk",
    "SampleSummary",
    "SnapshotPredicate",
    "Statement",
    "Subject",
    "VerificationSummary",
    "attestation_ref",
    "check_identifier",
    "ingest_predicate",
    "key_event_predicate",
    "rfc3339",
    "spdx_expression",
]

STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
#: DSSE ``payloadType`` of an in-toto statement.
IN_TOTO_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
#: ``mediaType`` of a ResourceDescriptor that points at a signed record.
DSSE_MEDIA_TYPE: Final = "application/vnd.dsse.envelope.v1+json"

SLSA_PROVENANCE_V1: Final = "https://slsa.dev/provenance/v1"
SLSA_VSA_V1: Final = "https://slsa.dev/verification_summary/v1"
INGEST_V1: Final = "https://provgate.dev/ingest/v1"
SNAPSHOT_V1: Final = "https://provgate.dev/snapshot/v1"
INFERENCE_V1: Final = "https://provgate.dev/inference/v1"
KEY_EVENT_V1: Final = "https://provgate.dev/key-event/v1"
FEDERATED_UPDATE_V1: Final = "https://provgate.dev/federated-update/v1"
#: The predicate types provgate defines (JSON Schemas in docs/schemas/).
PROVGATE_PREDICATE_TYPES: Final = frozenset(
    {INGEST_V1, SNAPSHOT_V1, INFERENCE_V1, KEY_EVENT_V1, FEDERATED_UPDATE_V1}
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")
_ALG = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})")
_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MAX_SAFE = 2**53 - 1
_LICENSE_REF = re.compile(r"(?:DocumentRef-[A-Za-z0-9.\-]+:)?LicenseRef-[A-Za-z0-9.\-]+")


# --------------------------------------------------------------------------
# Small helpers shared by builders


def rfc3339(when: datetime | str) -> str:
    """Format an aware ``datetime`` as RFC 3339 UTC (``2025-01-02T03:04:05.123456Z``).

    A string is checked and returned unchanged. Naive datetimes are refused.
    """
    if isinstance(when, str):
        if not _is_time(when):
            raise InputError(f"{when!r} is not an RFC 3339 timestamp (2025-01-02T03:04:05Z)")
        return when
    if when.tzinfo is None or when.utcoffset() is None:
        raise InputError(f"timestamp {when.isoformat()} has no time zone; use an aware datetime")
    utc = when.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def _is_time(text: str) -> bool:
    if not _TIME.fullmatch(text):
        return False
    try:
        # fromisoformat (3.11) takes at most 6 fractional digits: check the rest
        head, _, frac_tz = text.partition(".")
        if frac_tz:
            digits = len(frac_tz) - len(frac_tz.lstrip("0123456789"))
            text = head + ("." + frac_tz[: min(digits, 6)] if digits else "") + frac_tz[digits:]
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _need(value: str | None, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{what} must be a non-empty string")
    return value


def check_identifier(value: str, what: str) -> str:
    """check_identifier returns ``value`` if it is 1-128 of ``A-Z a-z 0-9 . _ -``, first alnum.

    Otherwise InputError naming ``what`` (a federation or a client id, say).
    """
    if not isinstance(value, str) or not _IDENT.fullmatch(value):
        raise InputError(
            f"{what} {value!r} must be 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def _need_hex64(value: str, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InputError(f"{what} must be 64 lowercase hex characters, got {value!r}")
    return value


def _need_digest_set(digest: Mapping[str, str], what: str) -> dict[str, str]:
    if not isinstance(digest, Mapping) or not digest:
        raise InputError(f"{what} must be a non-empty mapping of algorithm to hex digest")
    for alg, value in digest.items():
        if not isinstance(alg, str) or not _ALG.fullmatch(alg):
            raise InputError(f"{what}: {alg!r} is not a digest algorithm name")
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            raise InputError(f"{what}.{alg} must be lowercase hex, got {value!r}")
    return dict(digest)


@lru_cache(maxsize=1)
def _licensing() -> Any:
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@lru_cache(maxsize=512)
def spdx_expression(expression: str) -> str:
    """Validate an SPDX license expression and return its normalized form.

    ``"mit OR apache-2.0"`` -> ``"MIT OR Apache-2.0"``. Custom licenses are
    written ``LicenseRef-<name>`` (SPDX 2.3 annex D). Raises
    :class:`LicenseError` naming any unknown identifier.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise LicenseError("license is empty; give an SPDX expression such as 'CC-BY-4.0'")
    licensing = _licensing()
    try:
        info = licensing.validate(expression)
    except Exception as exc:  # license_expression raises assorted errors on bad syntax
        raise LicenseError(f"license {expression!r} is not a valid SPDX expression: {exc}") from exc
    if not info.errors and info.normalized_expression:
        return str(info.normalized_expression)
    unknown = [str(s) for s in info.invalid_symbols if s]
    syntax = [e for e in info.errors if not str(e).startswith("Unknown license key")]
    if syntax or not unknown:
        detail = "; ".join(str(e) for e in info.errors) or "empty expression"
        raise LicenseError(f"license {expression!r} is not a valid SPDX expression: {detail}")
    not_refs = [s for s in unknown if not _LICENSE_REF.fullmatch(s)]
    if not_refs:
        raise LicenseError(
            f"unknown SPDX license identifier {', '.join(repr(s) for s in not_refs)} in "
            f"{expression!r}; use an identifier from https://spdx.org/licenses/ or "
            f"'LicenseRef-<name>' for a custom license"
        )
    try:
        return str(licensing.parse(expression, validate=False))
    except Exception as exc:  # pragma: no cover - validate() parsed it already
        raise LicenseError(f"license {expression!r} is not a valid SPDX expression") from exc


# --------------------------------------------------------------------------
# The statement


@dataclass(frozen=True)
class Subject:
    """A statement subject: a name and the SHA-256 (hex) of the artifact."""

    name: str
    sha256: str

    def __post_init__(self) -> None:
        _need(self.name, "subject name")
        _need_hex64(self.sha256, f"subject {self.name!r} sha256")

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., "digest": {"sha256": ...}}``."""
        return {"name": self.name, "digest": {"sha256": self.sha256}}


class Predicate(Protocol):
    """What a predicate builder provides: its type URI and its JSON object."""

    @property
    def predicate_type(self) -> str:
        """The ``predicateType`` URI."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The ``predicate`` object."""
        ...


@dataclass(frozen=True, init=False)
class Statement:
    """An in-toto Statement v1.

    ``raw`` holds the exact bytes a statement was parsed from (``None`` for a
    statement built in memory): verification uses those bytes, never a
    re-serialization.
    """

    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: Mapping[str, Any]
    raw: bytes | None = field(default=None, compare=False, repr=False)

    def __init__(
        self,
        subjects: Iterable[Subject],
        predicate_type: str,
        predicate: Mapping[str, Any],
        raw: bytes | None = None,
    ) -> None:
        """A statement about ``subjects`` (at least one) with a predicate of ``predicate_type``."""
        items = tuple(subjects)
        if not items:
            raise InputError("a statement needs at least one subject")
        for subject in items:
            if not isinstance(subject, Subject):
                raise InputError(f"subject {subject!r} is not a Subject")
        _need(predicate_type, "predicate type")
        if not isinstance(predicate, Mapping):
            raise InputError("predicate must be a JSON object")
        object.__setattr__(self, "subjects", items)
        object.__setattr__(self, "predicate_type", predicate_type)
        object.__setattr__(self, "predicate", predicate)
        object.__setattr__(self, "raw", raw)

    @classmethod
    def of(cls, subjects: Sequence[Subject], predicate: Predicate) -> Statement:
        """A statement about ``subjects`` with a builder's predicate and its type."""
        return cls(tuple(subjects), predicate.predicate_type, predicate.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The statement as a JSON object."""
        return {
            "_type": STATEMENT_TYPE,
            "subject": [s.to_dict() for s in self.subjects],
            "predicateType": self.predicate_type,
            "predicate": self.predicate,
        }

    def canonical_bytes(self) -> bytes:
        """RFC 8785 bytes of :meth:`to_dict`: the DSSE payload to sign."""
        return canonical_json(self.to_dict())

    @classmethod
    def parse(cls, data: bytes) -> Statement:
        """Parse and check a statement from outside bytes; keep them in ``raw``.

        Raises :class:`FormatError` naming the path of the first bad field.
        """
        doc = parse_json(data)
        _STATEMENT_CHECK(doc, "statement")
        predicate_type: str = doc["predicateType"]
        check = _PREDICATE_CHECKS.get(predicate_type)
        if check is not None:
            check(doc["predicate"], "statement.predicate")
        subjects = tuple(
            Subject(name=s["name"], sha256=s["digest"]["sha256"]) for s in doc["subject"]
        )
        return cls(subjects, predicate_type, doc["predicate"], raw=bytes(data))


# --------------------------------------------------------------------------
# in-toto ResourceDescriptor and SLSA predicates


@dataclass(frozen=True)
class ResourceDescriptor:
    """An in-toto ResourceDescriptor v1 (at least one of ``uri`` and ``digest``)."""

    uri: str | None = None
    digest: Mapping[str, str] | None = None
    name: str | None = None
    download_location: str | None = None
    media_type: str | None = None
    annotations: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.uri and not self.digest:
            raise InputError("a resource descriptor needs a uri or a digest")
        if self.digest is not None:
            _need_digest_set(self.digest, f"digest of {self.name or self.uri or 'resource'}")

    def to_dict(self) -> dict[str, Any]:
        """The descriptor's JSON object (absent fields omitted)."""
        d: dict[str, Any] = {}
        if self.name is not None:
            d["name"] = self.name
        if self.uri is not None:
            d["uri"] = self.uri
        if self.digest is not None:
            d["digest"] = dict(self.digest)
        if self.download_location is not None:
            d["downloadLocation"] = self.download_location
        if self.media_type is not None:
            d["mediaType"] = self.media_type
        if self.annotations is not None:
            d["annotations"] = dict(self.annotations)
        return d


def attestation_ref(envelope_sha256: str, uri: str | None = None) -> ResourceDescriptor:
    """A descriptor pointing at a signed record by the SHA-256 of its ledger leaf."""
    _need_hex64(envelope_sha256, "envelope sha256")
    return ResourceDescriptor(
        uri=uri, digest={"sha256": envelope_sha256}, media_type=DSSE_MEDIA_TYPE
    )


def _descriptors(items: Sequence[ResourceDescriptor | Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [i.to_dict() if isinstance(i, ResourceDescriptor) else dict(i) for i in items]


@dataclass(frozen=True)
class Provenance:
    """SLSA Provenance v1 predicate (``https://slsa.dev/provenance/v1``), fields verbatim."""

    build_type: str
    external_parameters: Mapping[str, Any]
    builder_id: str
    internal_parameters: Mapping[str, Any] | None = None
    resolved_dependencies: Sequence[ResourceDescriptor | Mapping[str, Any]] = ()
    builder_version: Mapping[str, str] | None = None
    invocation_id: str | None = None
    started_on: datetime | str | None = None
    finished_on: datetime | str | None = None
    byproducts: Sequence[ResourceDescriptor | Mapping[str, Any]] = ()

    predicate_type: ClassVar[str] = SLSA_PROVENANCE_V1

    def __post_init__(self) -> None:
        _need(self.build_type, "buildType")
        _need(self.builder_id, "builder id")

    def to_dict(self) -> dict[str, Any]:
        """The predicate object."""
        build: dict[str, Any] = {
            "buildType": self.build_type,
            "externalParameters": dict(self.external_parameters),
        }
        if self.internal_parameters is not None:
            build["internalParameters"] = dict(self.internal_parameters)
        if self.resolved_dependencies:
            build["resolvedDependencies"] = _descriptors(self.resolved_dependencies)
        builder: dict[str, Any] = {"id": self.builder_id}
        if self.builder_version is not None:
            builder["version"] = dict(self.builder_version)
        run: dict[str, Any] = {"builder": builder}
        metadata: dict[str, Any] = {}
        if self.invocation_id is not None:
            metadata["invocationId"] = self.invocation_id
        if self.started_on is not None:
            metadata["startedOn"] = rfc3339(self.started_on)
        if self.finished_on is not None:
            metadata["finishedOn"] = rfc3339(self.finished_on)
        if metadata:
            run["metadata"] = metadata
        if self.byproducts:
            run["byproducts"] = _descriptors(self.byproducts)
        return {"buildDefinition": build, "runDetails": run}


@dataclass(frozen=True)
class VerificationSummary:
    """SLSA VSA v1 predicate (``https://slsa.dev/verification_summary/v1``): a gate decision.

    ``verified_levels`` that are not SLSA levels must not start with ``SLSA_``
    (the spec reserves the prefix); provgate uses e.g. ``PROVGATE_CUSTODY_VERIFIED``.
    """

    verifier_id: str
    time_verified: datetime | str
    resource_uri: str
    policy: ResourceDescriptor
    passed: bool
    verified_levels: Sequence[str] = ()
    input_attestations: Sequence[ResourceDescriptor] = ()
    verifier_version: Mapping[str, str] | None = None
    dependency_levels: Mapping[str, int] | None = None
    slsa_version: str | None = "1.0"

    predicate_type: ClassVar[str] = SLSA_VSA_V1

    def __post_init__(self) -> None:
        _need(self.verifier_id, "verifier id")
        _need(self.resource_uri, "resourceUri")

    def to_dict(self) -> dict[str, Any]:
        """The predicate object."""
        verifier: dict[str, Any] = {"id": self.verifier_id}
        if self.verifier_version is not None:
            verifier["version"] = dict(self.verifier_version)
        d: dict[str, Any] = {
            "verifier": verifier,
            "timeVerified": rfc3339(self.time_verified),
            "resourceUri": self.resource_uri,
            "policy": self.policy.to_dict(),
            "verificationResult": "PASSED" if self.passed else "FAILED",
            "verifiedLevels": list(self.verified_levels),
        }
        if self.input_attestations:
            d["inputAttestations"] = [a.to_dict() for a in self.input_attestations]
        if self.dependency_levels is not None:
            d["dependencyLevels"] = dict(self.dependency_levels)
        if self.slsa_version is not None:
            d["slsaVersion"] = self.slsa_version
        return d


# --------------------------------------------------------------------------
# provgate predicates


@dataclass(frozen=True)
class SampleSummary:
    """Per-sample Merkle root: ``count`` ids, RFC 9162 root over them (hex)."""

    count: int
    root: str
    leaf_encoding: str
    algorithm: str = "sha256"

    def __post_init__(self) -> None:
        if type(self.count) is not int or self.count < 0:
            raise InputError(f"sample count must be a non-negative integer, got {self.count!r}")
        _need_hex64(self.root, "samples root")
        _need(self.leaf_encoding, "samples leafEncoding")
        _need(self.algorithm, "samples algorithm")

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> SampleSummary:
        """From ``{"count", "root", "leafEncoding", "algorithm"}`` (``SampleSet.summary()``)."""
        try:
            return cls(
                count=m["count"],
                root=m["root"],
                leaf_encoding=m["leafEncoding"],
                algorithm=m.get("algorithm", "sha256"),
            )
        except KeyError as exc:
            raise InputError(f"sample summary lacks {exc.args[0]!r}") from exc

    def to_dict(self) -> dict[str, Any]:
        """``{"count", "algorithm", "leafEncoding", "root"}``."""
        return {
            "count": self.count,
            "algorithm": self.algorithm,
            "leafEncoding": self.leaf_encoding,
            "root": self.root,
        }


@dataclass(frozen=True)
class ManifestSummary:
    """Summary of a per-file BLAKE3 manifest: file count, total bytes, manifest root (hex)."""

    files: int
    total_bytes: int
    root: str
    algorithm: str = "blake3"

    def __post_init__(self) -> None:
        for what, n in (("file count", self.files), ("total bytes", self.total_bytes)):
            if type(n) is not int or n < 0:
                raise InputError(f"manifest {what} must be a non-negative integer, got {n!r}")
        _need_hex64(self.root, "manifest root")

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> ManifestSummary:
        """From ``{"blake3": root, "files": n, "bytes": n}`` or this class's own JSON keys."""
        try:
            if "blake3" in m:
                return cls(files=m["files"], total_bytes=m["bytes"], root=m["blake3"])
            return cls(
                files=m["files"],
                total_bytes=m["totalBytes"],
                root=m["root"],
                algorithm=m.get("algorithm", "blake3"),
            )
        except KeyError as exc:
            raise InputError(f"manifest summary lacks {exc.args[0]!r}") from exc

    def to_dict(self) -> dict[str, Any]:
        """``{"algorithm", "root", "files", "totalBytes"}``."""
        return {
            "algorithm": self.algorithm,
            "root": self.root,
            "files": self.files,
            "totalBytes": self.total_bytes,
        }


Confidentiality = Literal["public", "internal", "confidential", "restricted"]
_CONFIDENTIALITY: Final = ("public", "internal", "confidential", "restricted")


@dataclass(frozen=True)
class IngestPredicate:
    """``https://provgate.dev/ingest/v1``: where a dataset came from and on what terms.

    Fields follow the Data & Trust Alliance Data Provenance Standards v1.0
    where they apply (source, issuer, origin geography, method, license,
    confidentiality classification, consent documentation location, intended
    use), plus the collector and the per-sample and per-file digests.
    """

    source_uri: str
    retrieved_at: datetime | str
    collection_method: str
    license: str
    collector: str
    samples: SampleSummary
    issuer: str | None = None
    license_url: str | None = None
    origin_geography: str | None = None
    confidentiality: Confidentiality | None = None
    consent_location: str | None = None
    intended_use: str | None = None
    manifest: ManifestSummary | None = None
    dataset_title: str | None = None
    data_format: str | None = None
    source_revision: str | None = None
    orchestrator: Mapping[str, Any] | None = None
    standards_version: str = "DPS-1.0.0"

    predicate_type: ClassVar[str] = INGEST_V1

    def __post_init__(self) -> None:
        _need(self.source_uri, "source uri")
        _need(self.collection_method, "collection method")
        _need(self.collector, "collector")
        if self.source_revision is not None:
            _need(self.source_revision, "source revision")
        rfc3339(self.retrieved_at)
        spdx_expression(self.license)
        if self.confidentiality is not None and self.confidentiality not in _CONFIDENTIALITY:
            allowed = ", ".join(_CONFIDENTIALITY)
            raise InputError(f"confidentiality {self.confidentiality!r} is not one of {allowed}")

    def to_dict(self) -> dict[str, Any]:
        """The predicate object (absent optional fields omitted)."""
        source: dict[str, Any] = {"uri": self.source_uri}
        if self.issuer is not None:
            source["issuer"] = self.issuer
        if self.dataset_title is not None:
            source["title"] = self.dataset_title
        if self.source_revision is not None:
            source["revision"] = self.source_revision
        lic: dict[str, Any] = {"spdx": spdx_expression(self.license)}
        if self.license_url is not None:
            lic["url"] = self.license_url
        d: dict[str, Any] = {
            "standardsVersion": self.standards_version,
            "source": source,
            "retrievedAt": rfc3339(self.retrieved_at),
            "collectionMethod": self.collection_method,
            "license": lic,
            "collector": {"id": self.collector},
            "samples": self.samples.to_dict(),
        }
        for key, value in (
            ("originGeography", self.origin_geography),
            ("confidentiality", self.confidentiality),
            ("consentLocation", self.consent_location),
            ("intendedUse", self.intended_use),
            ("dataFormat", self.data_format),
        ):
            if value is not None:
                d[key] = value
        if self.manifest is not None:
            d["manifest"] = self.manifest.to_dict()
        if self.orchestrator is not None:
            d["orchestrator"] = dict(self.orchestrator)
        return d


def ingest_predicate(
    *,
    source_uri: str,
    retrieved_at: datetime | str,
    collection_method: str,
    license: str,
    collector: str,
    samples: SampleSummary | Mapping[str, Any],
    manifest: ManifestSummary | Mapping[str, Any] | None = None,
    issuer: str | None = None,
    license_url: str | None = None,
    origin_geography: str | None = None,
    confidentiality: str | None = None,
    consent_location: str | None = None,
    intended_use: str | None = None,
    dataset_title: str | None = None,
    data_format: str | None = None,
    source_revision: str | None = None,
    orchestrator: Mapping[str, Any] | None = None,
) -> IngestPredicate:
    """Build an ingest predicate; summaries may be given as mappings (see ``from_mapping``)."""
    if confidentiality is not None and confidentiality not in _CONFIDENTIALITY:
        raise InputError(
            f"confidentiality {confidentiality!r} is not one of {', '.join(_CONFIDENTIALITY)}"
        )
    return IngestPredicate(
        source_uri=source_uri,
        retrieved_at=retrieved_at,
        collection_method=collection_method,
        license=license,
        collector=collector,
        samples=samples
        if isinstance(samples, SampleSummary)
        else SampleSummary.from_mapping(samples),
        manifest=None
        if manifest is None
        else manifest
        if isinstance(manifest, ManifestSummary)
        else ManifestSummary.from_mapping(manifest),
        issuer=issuer,
        license_url=license_url,
        origin_geography=origin_geography,
        confidentiality=confidentiality,  # type: ignore[arg-type]  # checked above
        consent_location=consent_location,
        intended_use=intended_use,
        dataset_title=dataset_title,
        data_format=data_format,
        source_revision=source_revision,
        orchestrator=orchestrator,
    )


@dataclass(frozen=True)
class SnapshotPredicate:
    """``https://provgate.dev/snapshot/v1``: an immutable dataset commit and what it derives from.

    ``commit_id`` is the pin (a lakeFS commit id or the local store's commit);
    ``ref`` records the branch it was taken from, for information only.
    ``derived_from`` lists the inputs: attestations (see :func:`attestation_ref`)
    and earlier snapshots. ``orchestrator`` (as on ingest records and in a step's
    ``internalParameters``) is the run identity of the task that committed it.
    """

    store: str
    repository: str
    commit_id: str
    manifest: ManifestSummary
    derived_from: Sequence[ResourceDescriptor] = ()
    ref: str | None = None
    committed_at: datetime | str | None = None
    orchestrator: Mapping[str, Any] | None = None

    predicate_type: ClassVar[str] = SNAPSHOT_V1

    def __post_init__(self) -> None:
        _need(self.store, "snapshot store")
        _need(self.repository, "snapshot repository")
        _need(self.commit_id, "snapshot commit id")

    def to_dict(self) -> dict[str, Any]:
        """The predicate object."""
        d: dict[str, Any] = {
            "store": self.store,
            "repository": self.repository,
            "commitId": self.commit_id,
            "manifest": self.manifest.to_dict(),
            "derivedFrom": [r.to_dict() for r in self.derived_from],
        }
        if self.ref is not None:
            d["ref"] = self.ref
        if self.committed_at is not None:
            d["committedAt"] = rfc3339(self.committed_at)
        if self.orchestrator is not None:
            d["orchestrator"] = dict(self.orchestrator)
        return d


@dataclass(frozen=True)
class RetrievedChunk:
    """A retrieved RAG chunk traced to its snapshot and, when known, its ingest record."""

    digest: Mapping[str, str]
    repository: str
    commit_id: str
    path: str | None = None
    chunk_id: str | None = None
    ingest_record: ResourceDescriptor | None = None
    snapshot_record: ResourceDescriptor | None = None
    rank: int | None = None
    score: float | None = None
    ingest_records: Sequence[ResourceDescriptor] = ()

    def __post_init__(self) -> None:
        _need_digest_set(self.digest, "chunk digest")
        _need(self.repository, "chunk repository")
        _need(self.commit_id, "chunk commit id")
        if self.rank is not None and (type(self.rank) is not int or self.rank < 0):
            raise InputError(f"chunk rank must be a non-negative integer, got {self.rank!r}")
        if self.score is not None and (
            type(self.score) not in (int, float) or not math.isfinite(self.score)
        ):
            raise InputError(f"chunk score must be a finite number, got {self.score!r}")

    def to_dict(self) -> dict[str, Any]:
        """The chunk object."""
        snapshot: dict[str, Any] = {"repository": self.repository, "commitId": self.commit_id}
        if self.path is not None:
            snapshot["path"] = self.path
        d: dict[str, Any] = {"digest": dict(self.digest), "snapshot": snapshot}
        if self.chunk_id is not None:
            d["id"] = self.chunk_id
        if self.ingest_record is not None:
            d["ingestRecord"] = self.ingest_record.to_dict()
        if self.snapshot_record is not None:
            d["snapshotRecord"] = self.snapshot_record.to_dict()
        if self.rank is not None:
            d["rank"] = self.rank
        if self.score is not None:
            d["score"] = self.score
        if self.ingest_records:
            d["ingestRecords"] = [r.to_dict() for r in self.ingest_records]
        return d


@dataclass(frozen=True)
class PolicyDecision:
    """The outcome of the inference policies: allowed or blocked, and why."""

    allowed: bool
    policies: Sequence[str] = ()
    reasons: Sequence[str] = ()
    policy: ResourceDescriptor | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"decision": "allow"|"block", "policies": [...], "reasons": [...]}``.

        ``policy`` (the policy's descriptor: source and digest) is added when given.
        """
        d: dict[str, Any] = {
            "decision": "allow" if self.allowed else "block",
            "policies": list(self.policies),
            "reasons": list(self.reasons),
        }
        if self.policy is not None:
            d["policy"] = self.policy.to_dict()
        return d


@dataclass(frozen=True)
class InferencePredicate:
    """``https://provgate.dev/inference/v1``: one model answer and everything it drew on.

    Prompt and answer are recorded as digests; the prompt text is stored only
    when ``prompt_text`` is given explicitly (off by default).
    """

    model: ResourceDescriptor
    prompt_digest: Mapping[str, str]
    answer_digest: Mapping[str, str]
    decision: PolicyDecision
    retrieved: Sequence[RetrievedChunk] = ()
    training_attestation: ResourceDescriptor | None = None
    invocation_id: str | None = None
    answered_at: datetime | str | None = None
    prompt_text: str | None = None
    gate_decision: ResourceDescriptor | None = None

    predicate_type: ClassVar[str] = INFERENCE_V1

    def __post_init__(self) -> None:
        if not self.model.digest:
            raise InputError("the model descriptor needs a digest")
        _need_digest_set(self.prompt_digest, "prompt digest")
        _need_digest_set(self.answer_digest, "answer digest")

    def to_dict(self) -> dict[str, Any]:
        """The predicate object."""
        model = self.model.to_dict()
        if self.training_attestation is not None:
            model["trainingAttestation"] = self.training_attestation.to_dict()
        if self.gate_decision is not None:
            model["gateDecision"] = self.gate_decision.to_dict()
        prompt: dict[str, Any] = {"digest": dict(self.prompt_digest)}
        if self.prompt_text is not None:
            prompt["text"] = self.prompt_text
        d: dict[str, Any] = {
            "model": model,
            "prompt": prompt,
            "retrieved": [c.to_dict() for c in self.retrieved],
            "answer": {"digest": dict(self.answer_digest)},
            "policy": self.decision.to_dict(),
        }
        if self.invocation_id is not None:
            d["invocationId"] = self.invocation_id
        if self.answered_at is not None:
            d["answeredAt"] = rfc3339(self.answered_at)
        return d


KeyEventKind = Literal["added", "rotated", "retired", "revoked"]
_KEY_EVENTS: Final = ("added", "rotated", "retired", "revoked")


@dataclass(frozen=True)
class KeyEventPredicate:
    """``https://provgate.dev/key-event/v1``: a change to the trust store, kept in the ledger.

    ``rotated``: ``keyid`` is retired and ``new_keyid`` becomes active.
    ``revoked``: every record ``keyid`` signed fails verification, with ``reason``.
    The statement's subject is the key itself: name ``key:<keyid>``, sha256 = keyid
    (the key id *is* the SHA-256 of the key's DER SubjectPublicKeyInfo).
    """

    event: KeyEventKind
    keyid: str
    time: datetime | str
    new_keyid: str | None = None
    public_key: str | None = None
    predicate_types: Sequence[str] | None = None
    reason: str | None = None
    note_name: str | None = None

    predicate_type: ClassVar[str] = KEY_EVENT_V1

    def __post_init__(self) -> None:
        if self.event not in _KEY_EVENTS:
            raise InputError(f"key event {self.event!r} is not one of {', '.join(_KEY_EVENTS)}")
        _need_hex64(self.keyid, "keyid")
        rfc3339(self.time)
        if self.event == "rotated":
            _need_hex64(self.new_keyid or "", "new keyid of a rotation")
        elif self.new_keyid is not None:
            _need_hex64(self.new_keyid, "new keyid")
        if self.event == "revoked":
            _need(self.reason, "reason of a revocation")

    def to_dict(self) -> dict[str, Any]:
        """The predicate object."""
        d: dict[str, Any] = {"event": self.event, "keyid": self.keyid, "time": rfc3339(self.time)}
        if self.new_keyid is not None:
            d["newKeyid"] = self.new_keyid
        if self.public_key is not None:
            d["publicKey"] = self.public_key
        if self.predicate_types is not None:
            d["predicateTypes"] = list(self.predicate_types)
        if self.reason is not None:
            d["reason"] = self.reason
        if self.note_name is not None:
            d["noteName"] = self.note_name
        return d

    def subject(self) -> Subject:
        """The key this event is about, as a statement subject."""
        return Subject(name=f"key:{self.keyid}", sha256=self.keyid)


def key_event_predicate(
    *,
    event: str,
    keyid: str,
    time: datetime | str,
    new_keyid: str | None = None,
    public_key: str | None = None,
    predicate_types: Sequence[str] | None = None,
    reason: str | None = None,
    note_name: str | None = None,
) -> KeyEventPredicate:
    """Build a key-event predicate (``added``, ``rotated``, ``retired`` or ``revoked``)."""
    if event not in _KEY_EVENTS:
        raise InputError(f"key event {event!r} is not one of {', '.join(_KEY_EVENTS)}")
    return KeyEventPredicate(
        event=event,  # type: ignore[arg-type]  # checked above
        keyid=keyid,
        time=time,
        new_keyid=new_keyid,
        public_key=public_key,
        predicate_types=predicate_types,
        reason=reason,
        note_name=note_name,
    )


@dataclass(frozen=True)
class ClientData:
    """One local data snapshot a federated client trained on.

    ``snapshot`` is its pinned URI (``provgate://REPO/COMMIT``), ``root`` the
    BLAKE3 root of its snapshot manifest, and ``record`` the signed snapshot
    record in the federation's ledger: an attestation descriptor carrying the
    record's envelope SHA-256 and ``annotations.logIndex``.
    """

    snapshot: str
    root: str
    record: ResourceDescriptor

    def __post_init__(self) -> None:
        _need(self.snapshot, "client data snapshot URI")
        _need_hex64(self.root, f"root of {self.snapshot}")
        digest = self.record.digest or {}
        _need_hex64(digest.get("sha256", ""), f"envelope sha256 of the record of {self.snapshot}")
        index = (self.record.annotations or {}).get("logIndex")
        if type(index) is not int or index < 0:
            raise InputError(f"the record of {self.snapshot} needs annotations.logIndex")

    def to_dict(self) -> dict[str, Any]:
        """``{"snapshot", "root": {"blake3"}, "record"}``."""
        return {
            "snapshot": self.snapshot,
            "root": {"blake3": self.root},
            "record": self.record.to_dict(),
        }


@dataclass(frozen=True)
class FederatedUpdatePredicate:
    """``https://provgate.dev/federated-update/v1``: a client's model update for one round.

    Signed by the client's own key: which federation and round, which client,
    the global model it started from (BLAKE3 of its bytes), the local data
    snapshots it trained on (``data``), and the update it sends (BLAKE3 and
    SHA-256 of its bytes, size, and the number of training examples that
    weighs it in the aggregate). ``federation`` and ``client_id`` are 1-128
    of ``A-Z a-z 0-9 . _ -``, starting with a letter or digit.
    """

    federation: str
    round: int
    client_id: str
    base_model: str
    data: Sequence[ClientData]
    update_blake3: str
    update_sha256: str
    update_size: int
    examples: int
    trained_at: datetime | str | None = None
    parameters: Mapping[str, Any] | None = None

    predicate_type: ClassVar[str] = FEDERATED_UPDATE_V1

    def __post_init__(self) -> None:
        check_identifier(self.federation, "federation")
        check_identifier(self.client_id, "client id")
        for what, n, low in (
            ("round", self.round, 0),
            ("update size", self.update_size, 0),
            ("examples", self.examples, 1),
        ):
            if type(n) is not int or not low <= n <= _MAX_SAFE:
                raise InputError(f"{what} must be an integer >= {low}, got {n!r}")
        _need_hex64(self.base_model, "base model BLAKE3")
        _need_hex64(self.update_blake3, "update BLAKE3")
        _need_hex64(self.update_sha256, "update SHA-256")
        if not self.data or not all(isinstance(d, ClientData) for d in self.data):
            raise InputError("a federated update names at least one ClientData it trained on")
        if self.trained_at is not None:
            rfc3339(self.trained_at)

    def to_dict(self) -> dict[str, Any]:
        """The predicate object."""
        d: dict[str, Any] = {
            "federation": self.federation,
            "round": self.round,
            "client": {"id": self.client_id},
            "baseModel": {"digest": {"blake3": self.base_model}},
            "data": [c.to_dict() for c in self.data],
            "update": {
                "digest": {"blake3": self.update_blake3, "sha256": self.update_sha256},
                "size": self.update_size,
                "examples": self.examples,
            },
        }
        if self.trained_at is not None:
            d["trainedAt"] = rfc3339(self.trained_at)
        if self.parameters is not None:
            d["parameters"] = dict(self.parameters)
        return d


# --------------------------------------------------------------------------
# Strict shape checks for parsed statements. A check is f(value, path) that
# raises FormatError("<path>: <what is wrong>").

_Check = Callable[[Any, str], None]


def _fail(path: str, message: str) -> FormatError:
    return FormatError(f"{path}: {message}")


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _string(value: Any, path: str) -> None:
    if type(value) is not str:
        raise _fail(path, f"expected a string, got {_type_name(value)}")


def _nonempty(value: Any, path: str) -> None:
    _string(value, path)
    if not value:
        raise _fail(path, "must not be empty")


def _hex64(value: Any, path: str) -> None:
    _string(value, path)
    if not _HEX64.fullmatch(value):
        raise _fail(path, "expected 64 lowercase hex characters")


def _time(value: Any, path: str) -> None:
    _string(value, path)
    if not _is_time(value):
        raise _fail(path, "expected an RFC 3339 timestamp")


def _count(value: Any, path: str) -> None:
    if type(value) is not int or value < 0:
        raise _fail(path, "expected a non-negative integer")


def _number(value: Any, path: str) -> None:
    if type(value) not in (int, float):
        raise _fail(path, f"expected a number, got {_type_name(value)}")


def _any_object(value: Any, path: str) -> None:
    if type(value) is not dict:
        raise _fail(path, f"expected an object, got {_type_name(value)}")


def _digest_set(value: Any, path: str) -> None:
    _any_object(value, path)
    if not value:
        raise _fail(path, "expected at least one digest")
    for alg, digest in value.items():
        if not _ALG.fullmatch(alg):
            raise _fail(f"{path}.{alg}", "not a digest algorithm name")
        _string(digest, f"{path}.{alg}")
        if not _HEX.fullmatch(digest):
            raise _fail(f"{path}.{alg}", "expected lowercase hex")


def _string_map(value: Any, path: str) -> None:
    _any_object(value, path)
    for key, item in value.items():
        _string(item, f"{path}.{key}")


def _enum(*allowed: str) -> _Check:
    def check(value: Any, path: str) -> None:
        if value not in allowed:
            raise _fail(path, f"expected one of {', '.join(allowed)}")

    return check


def _array(item: _Check, *, min_items: int = 0) -> _Check:
    def check(value: Any, path: str) -> None:
        if type(value) is not list:
            raise _fail(path, f"expected an array, got {_type_name(value)}")
        if len(value) < min_items:
            raise _fail(path, f"expected at least {min_items} item(s)")
        for i, element in enumerate(value):
            item(element, f"{path}[{i}]")

    return check


def _object(
    required: Mapping[str, _Check],
    optional: Mapping[str, _Check] | None = None,
    also: _Check | None = None,
) -> _Check:
    opt = optional or {}

    def check(value: Any, path: str) -> None:
        _any_object(value, path)
        for key, sub in required.items():
            if key not in value:
                raise _fail(f"{path}.{key}", "required field is missing")
            sub(value[key], f"{path}.{key}")
        for key, sub in opt.items():
            if key in value:
                sub(value[key], f"{path}.{key}")
        if also is not None:
            also(value, path)

    return check


def _uri_or_digest(value: Any, path: str) -> None:
    if "uri" not in value and "digest" not in value and "content" not in value:
        raise _fail(path, "a resource descriptor needs uri, digest or content")


_RESOURCE: Final = _object(
    {},
    {
        "name": _string,
        "uri": _nonempty,
        "digest": _digest_set,
        "content": _string,
        "downloadLocation": _string,
        "mediaType": _string,
        "annotations": _any_object,
    },
    _uri_or_digest,
)

_SUBJECT_DIGEST: Final = _object({"sha256": _hex64})


def _sha256_only(value: Any, path: str) -> None:
    extra = sorted(set(value) - {"sha256"})
    if extra:
        raise _fail(f"{path}.{extra[0]}", "subjects carry sha256 only")


_STATEMENT_CHECK: Final = _object(
    {
        "_type": _enum(STATEMENT_TYPE),
        "subject": _array(
            _object(
                {
                    "name": _nonempty,
                    "digest": _object({"sha256": _hex64}, also=_sha256_only),
                }
            ),
            min_items=1,
        ),
        "predicateType": _nonempty,
        "predicate": _any_object,
    }
)

_SAMPLES: Final = _object(
    {"count": _count, "algorithm": _nonempty, "leafEncoding": _nonempty, "root": _hex64}
)
_MANIFEST: Final = _object(
    {"algorithm": _nonempty, "root": _hex64, "files": _count, "totalBytes": _count}
)


def _license(value: Any, path: str) -> None:
    # Syntax only: a record signed under a newer SPDX list must still parse.
    # Builders check identifiers against the SPDX list (LicenseError).
    _object({"spdx": _nonempty}, {"url": _string})(value, path)


def _key_event_rules(value: Any, path: str) -> None:
    if value["event"] == "rotated" and "newKeyid" not in value:
        raise _fail(f"{path}.newKeyid", "a rotation names the new key")
    if value["event"] == "revoked" and not value.get("reason"):
        raise _fail(f"{path}.reason", "a revocation needs a reason")


def _ident(value: Any, path: str) -> None:
    _string(value, path)
    if not _IDENT.fullmatch(value):
        raise _fail(path, "expected 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit")


def _positive(value: Any, path: str) -> None:
    if type(value) is not int or value < 1:
        raise _fail(path, "expected a positive integer")


_RECORD_REF: Final = _object(
    {
        "digest": _object({"sha256": _hex64}),
        "annotations": _object({"logIndex": _count}),
    },
    {"name": _string, "uri": _nonempty, "mediaType": _string},
)


_PREDICATE_CHECKS: Final[dict[str, _Check]] = {
    SLSA_PROVENANCE_V1: _object(
        {
            "buildDefinition": _object(
                {"buildType": _nonempty, "externalParameters": _any_object},
                {"internalParameters": _any_object, "resolvedDependencies": _array(_RESOURCE)},
            ),
            "runDetails": _object(
                {
                    "builder": _object(
                        {"id": _nonempty},
                        {"version": _string_map, "builderDependencies": _array(_RESOURCE)},
                    )
                },
                {
                    "metadata": _object(
                        {},
                        {"invocationId": _string, "startedOn": _time, "finishedOn": _time},
                    ),
                    "byproducts": _array(_RESOURCE),
                },
            ),
        }
    ),
    SLSA_VSA_V1: _object(
        {
            "verifier": _object({"id": _nonempty}, {"version": _string_map}),
            "timeVerified": _time,
            "resourceUri": _nonempty,
            "policy": _RESOURCE,
            "verificationResult": _enum("PASSED", "FAILED"),
            "verifiedLevels": _array(_nonempty),
        },
        {
            "inputAttestations": _array(_RESOURCE),
            "dependencyLevels": _any_object,
            "slsaVersion": _string,
        },
    ),
    INGEST_V1: _object(
        {
            "standardsVersion": _nonempty,
            "source": _object(
                {"uri": _nonempty}, {"issuer": _string, "title": _string, "revision": _nonempty}
            ),
            "retrievedAt": _time,
            "collectionMethod": _nonempty,
            "license": _license,
            "collector": _object({"id": _nonempty}),
            "samples": _SAMPLES,
        },
        {
            "originGeography": _string,
            "confidentiality": _enum(*_CONFIDENTIALITY),
            "consentLocation": _string,
            "intendedUse": _string,
            "dataFormat": _string,
            "manifest": _MANIFEST,
            "orchestrator": _any_object,
        },
    ),
    SNAPSHOT_V1: _object(
        {
            "store": _nonempty,
            "repository": _nonempty,
            "commitId": _nonempty,
            "manifest": _MANIFEST,
            "derivedFrom": _array(_RESOURCE),
        },
        {"ref": _string, "committedAt": _time, "orchestrator": _any_object},
    ),
    INFERENCE_V1: _object(
        {
            "model": _object(
                {"digest": _digest_set},
                {
                    "name": _string,
                    "uri": _string,
                    "trainingAttestation": _RESOURCE,
                    "gateDecision": _RESOURCE,
                },
            ),
            "prompt": _object({"digest": _digest_set}, {"text": _string}),
            "retrieved": _array(
                _object(
                    {
                        "digest": _digest_set,
                        "snapshot": _object(
                            {"repository": _nonempty, "commitId": _nonempty}, {"path": _string}
                        ),
                    },
                    {
                        "id": _string,
                        "ingestRecord": _RESOURCE,
                        "snapshotRecord": _RESOURCE,
                        "rank": _count,
                        "score": _number,
                        "ingestRecords": _array(_RESOURCE),
                    },
                )
            ),
            "answer": _object({"digest": _digest_set}),
            "policy": _object(
                {
                    "decision": _enum("allow", "block"),
                    "policies": _array(_string),
                    "reasons": _array(_string),
                },
                {"policy": _RESOURCE},
            ),
        },
        {"invocationId": _string, "answeredAt": _time},
    ),
    KEY_EVENT_V1: _object(
        {"event": _enum(*_KEY_EVENTS), "keyid": _hex64, "time": _time},
        {
            "newKeyid": _hex64,
            "publicKey": _nonempty,
            "predicateTypes": _array(_nonempty, min_items=1),
            "reason": _string,
            "noteName": _string,
        },
        _key_event_rules,
    ),
    FEDERATED_UPDATE_V1: _object(
        {
            "federation": _ident,
            "round": _count,
            "client": _object({"id": _ident}),
            "baseModel": _object({"digest": _object({"blake3": _hex64})}),
            "data": _array(
                _object(
                    {
                        "snapshot": _nonempty,
                        "root": _object({"blake3": _hex64}),
                        "record": _RECORD_REF,
                    }
                ),
                min_items=1,
            ),
            "update": _object(
                {
                    "digest": _object({"blake3": _hex64, "sha256": _hex64}),
                    "size": _count,
                    "examples": _positive,
                }
            ),
        },
        {"trainedAt": _time, "parameters": _any_object},
    ),
}
