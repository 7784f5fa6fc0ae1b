"""Ingestion: digest every sample of a dataset and record where it came from.

A tabular file (CSV, Parquet, JSON Lines) is a set of rows: one id per row
(see docs/digests.md). Anything else — another file, or a directory — is a
set of files: one id per file, its BLAKE3. Either way the dataset root is the
RFC 9162 Merkle root of the ids in sorted order (a sample's id is its RFC 9162
leaf hash, see docs/digests.md), which the ingest record signs, so any single
sample can later be proven to be in the dataset or not.
One call appends exactly one ledger entry. Given a
:class:`~prov_core.content_index.ContentIndex`, it then indexes the BLAKE3 of
every file it read (for a table ingested by rows: the file's own BLAKE3), so
that a later snapshot of those bytes finds this record by content.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prov_core.digest import (
    ROW_ENCODING,
    FileDigest,
    SampleSet,
    digest_bytes,
    digest_path,
    sample_set_of_path,
)
from prov_core.errors import InputError
from prov_core.statement import INGEST_V1, Statement, Subject, ingest_predicate
from prov_core.step import Attestation, Recorder

if TYPE_CHECKING:
    from prov_core.content_index import ContentIndex
    from prov_core.sample_store import SampleStore

__all__ = ["IngestRequest", "IngestResult", "ingest_path", "ingest_samples"]


@dataclass(frozen=True)
class IngestRequest:
    """Where data came from and on what terms (Data & Trust Alliance provenance fields)."""

    source: str
    license: str
    method: str = "unspecified"
    issuer: str | None = None
    license_url: str | None = None
    geography: str | None = None
    confidentiality: str | None = None
    consent_location: str | None = None
    intended_use: str | None = None
    collector: str | None = None
    per_file: bool = False
    revision: str | None = None
    title: str | None = None
    data_format: str | None = None
    #: The run identity of the task ingesting (``name``, run id, ..., and ``instance``,
    #: ``attempt``, ``previous_attempt`` as on a step: docs/record-format.md).
    orchestrator: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class IngestResult:
    """What was recorded: the attestation, the dataset root and the sample count."""

    attestation: Attestation
    root: str
    samples: int
    unit: str  # "rows" or "files"
    sample_set: SampleSet


def default_collector() -> str:
    """``user@host`` of the process doing the ingestion."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def ingest_path(
    recorder: Recorder,
    path: Path,
    request: IngestRequest,
    progress: Callable[[int], None] | None = None,
    *,
    index: ContentIndex | None = None,
    samples_store: SampleStore | None = None,
    reuse_written: bool = False,
) -> IngestResult:
    """Digest ``path`` (rows or files), sign the ingest record, append it; return it.

    With ``index``, every file's BLAKE3 is indexed as covered by the new record.
    With ``samples_store``, the sorted sample ids are kept there (before the
    record is appended), so a sample can later be proven in or out of the set.
    With ``reuse_written``, files this process collected through
    :mod:`prov_core.sink` (unchanged since) are named by the digest taken as
    they were stored, not read again (see :func:`~prov_core.digest.digest_path`).
    """
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    retrieved = datetime.now(UTC)
    tree = digest_path(path, progress=progress, reuse_written=reuse_written)
    return _record(
        recorder,
        path.name or str(path),
        sample_set_of_path(path, tree, per_file=request.per_file),
        request,
        files=tree.files,
        manifest={"blake3": tree.blake3, "files": len(tree.files), "bytes": tree.bytes},
        subject_sha256=tree.sha256_subject,
        retrieved=retrieved,
        index=index,
        samples_store=samples_store,
    )


def ingest_samples(
    recorder: Recorder,
    name: str,
    samples: SampleSet,
    request: IngestRequest,
    *,
    files: Sequence[FileDigest] = (),
    retrieved_at: datetime | None = None,
    index: ContentIndex | None = None,
    samples_store: SampleStore | None = None,
) -> IngestResult:
    """Sign and append the ingest record of a sample set computed elsewhere; return it.

    For data that is not one file or directory on disk: a table in memory, a
    Hugging Face dataset (``prov_hf``), rows streamed from a service. ``name``
    is the subject's name. ``files`` are the files the samples were read
    from, if any: the record then carries their manifest, the subject digest
    is the manifest's SHA-256, and with ``index`` each file's BLAKE3 is
    indexed as covered by the record (as :func:`ingest_path` does). Without
    files the subject digest is the sample root (itself a SHA-256 Merkle
    root) and there is no manifest. ``retrieved_at`` defaults to now.
    """
    if not name:
        raise InputError("an ingest needs a name for its subject")
    manifest: dict[str, object] | None = None
    subject = samples.root.hex()
    if files:
        from prov_core.digest import manifest_bytes

        # As digest_path: one file's root is its own BLAKE3, several files' the manifest's.
        data = manifest_bytes((f.path, f.blake3) for f in files)
        manifest = {
            "blake3": files[0].blake3 if len(files) == 1 else digest_bytes(data),
            "files": len(files),
            "bytes": sum(f.size for f in files),
        }
        subject = hashlib.sha256(data).hexdigest()  # manifest_sha256 of the files
    return _record(
        recorder,
        name,
        samples,
        request,
        files=files,
        manifest=manifest,
        subject_sha256=subject,
        retrieved=retrieved_at or datetime.now(UTC),
        index=index,
        samples_store=samples_store,
    )


def _record(
    recorder: Recorder,
    name: str,
    samples: SampleSet,
    request: IngestRequest,
    *,
    files: Sequence[FileDigest],
    manifest: dict[str, object] | None,
    subject_sha256: str,
    retrieved: datetime,
    index: ContentIndex | None,
    samples_store: SampleStore | None,
) -> IngestResult:
    """_record builds, signs and appends one ingest record (and keeps and indexes as asked)."""
    unit = "rows" if samples.leaf_encoding == ROW_ENCODING else "files"
    predicate = ingest_predicate(
        source_uri=request.source,
        issuer=request.issuer,
        retrieved_at=retrieved,
        collection_method=request.method,
        origin_geography=request.geography,
        license=request.license,
        license_url=request.license_url,
        confidentiality=request.confidentiality,
        consent_location=request.consent_location,
        intended_use=request.intended_use,
        collector=request.collector or default_collector(),
        samples=samples.summary(),
        manifest=manifest,
        dataset_title=request.title,
        data_format=request.data_format,
        source_revision=request.revision,
        orchestrator=request.orchestrator,
    )
    statement = Statement(
        subjects=[Subject(name=name, sha256=subject_sha256)],
        predicate_type=predicate.predicate_type,
        predicate=predicate.to_dict(),
    )
    if samples_store is not None:
        samples_store.put(samples)
    attestation = recorder.record(statement)
    if index is not None:
        from prov_core.content_index import RecordRef

        index.add_content(
            (f.blake3 for f in files),
            RecordRef(attestation.log_index, attestation.envelope_sha256, INGEST_V1),
        )
    return IngestResult(
        attestation=attestation,
        root=samples.root.hex(),
        samples=samples.count,
        unit=unit,
        sample_set=samples,
    )
