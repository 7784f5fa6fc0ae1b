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
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from prov_core.digest import SampleSet, digest_path, is_tabular
from prov_core.errors import InputError
from prov_core.statement import INGEST_V1, Statement, Subject, ingest_predicate
from prov_core.step import Attestation, Recorder

if TYPE_CHECKING:
    from prov_core.content_index import ContentIndex
    from prov_core.sample_store import SampleStore

__all__ = ["IngestRequest", "IngestResult", "ingest_path"]


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
) -> IngestResult:
    """Digest ``path`` (rows or files), sign the ingest record, append it; return it.

    With ``index``, every file's BLAKE3 is indexed as covered by the new record.
    With ``samples_store``, the sorted sample ids are kept there (before the
    record is appended), so a sample can later be proven in or out of the set.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    retrieved = datetime.now(UTC)
    tree = digest_path(path, progress=progress)
    if is_tabular(path) and not request.per_file:
        from prov_core.digest import read_table, sample_set_of_table

        samples = sample_set_of_table(read_table(path))
        unit = "rows"
    else:
        samples = SampleSet.of_files(f.blake3 for f in tree.files)
        unit = "files"
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
        manifest={"blake3": tree.blake3, "files": len(tree.files), "bytes": tree.bytes},
    )
    statement = Statement(
        subjects=[Subject(name=path.name or str(path), sha256=tree.sha256_subject)],
        predicate_type=predicate.predicate_type,
        predicate=predicate.to_dict(),
    )
    if samples_store is not None:
        samples_store.put(samples)
    attestation = recorder.record(statement)
    if index is not None:
        from prov_core.content_index import RecordRef

        index.add_content(
            (f.blake3 for f in tree.files),
            RecordRef(attestation.log_index, attestation.envelope_sha256, INGEST_V1),
        )
    return IngestResult(
        attestation=attestation,
        root=samples.root.hex(),
        samples=samples.count,
        unit=unit,
        sample_set=samples,
    )
