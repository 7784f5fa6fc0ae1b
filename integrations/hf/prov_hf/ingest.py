"""The ingest record of a ``datasets.Dataset``: its rows as samples, its Hub origin as source."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from prov_core.digest import digest_path
from prov_core.errors import InputError
from prov_core.ingest import IngestRequest, IngestResult, ingest_samples
from prov_hf.hub import hub_origin
from prov_hf.ids import DEFAULT_BATCH_SIZE, sample_set

if TYPE_CHECKING:
    import datasets

    from prov_core.content_index import ContentIndex
    from prov_core.sample_store import SampleStore
    from prov_core.step import Recorder

__all__ = ["ingest_dataset"]


def ingest_dataset(
    recorder: Recorder,
    dataset: datasets.Dataset,
    request: IngestRequest | None = None,
    *,
    license: str | None = None,
    repo_id: str | None = None,
    name: str | None = None,
    index: ContentIndex | None = None,
    samples_store: SampleStore | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> IngestResult:
    """ingest_dataset signs and appends the ingest record of ``dataset``'s rows; returns it.

    The samples are the rows (``provgate-row/v1``, the ids of
    :func:`~prov_hf.add_prov_ids`). For a dataset read from the Hub
    (:func:`~prov_hf.hub_origin`), the record's source is
    ``hf://datasets/REPO@COMMIT`` with ``source.revision`` the commit,
    ``source.title`` the repository and ``dataFormat`` the builder (parquet,
    json, ...); its license is ``license``, else the dataset card's
    (``info.license``, checked as an SPDX expression). Its Arrow cache files
    are the record's files: their manifest is signed and, with ``index``,
    their BLAKE3 indexed, so a later snapshot of those bytes finds this record.

    ``request`` overrides any of that (``source``, ``license``, ...), and is
    required for a dataset that is not from the Hub; a Hub dataset's revision
    is filled in when the request has none. Raises
    :class:`~prov_core.errors.InputError` when neither names a source or a
    license, and :class:`~prov_core.errors.LicenseError` for a license that
    is not an SPDX expression.
    """
    origin = hub_origin(dataset, repo_id=repo_id)
    if request is None:
        if origin is None:
            raise InputError(
                "the dataset was not read from the Hugging Face Hub (no cache file in the Hub "
                "layout), so its source is unknown: pass request=IngestRequest(source=..., "
                "license=...)"
            )
        chosen = license or dataset.info.license or ""
        if not chosen.strip():
            raise InputError(
                f"no license for {origin.repo_id}: its dataset card names none; pass "
                "license='<SPDX expression>' (e.g. 'CC-BY-4.0')"
            )
        request = IngestRequest(
            source=origin.uri,
            license=chosen,
            method="download",
            issuer=origin.repo_id.partition("/")[0],
            title=origin.repo_id,
            revision=origin.revision,
            data_format=dataset.info.builder_name or None,
        )
    elif origin is not None and request.revision is None:
        request = dataclasses.replace(request, revision=origin.revision)
    if license is not None and request.license != license:
        request = dataclasses.replace(request, license=license)
    files = [digest_path(Path(f["filename"])).files[0] for f in dataset.cache_files]
    label = name or (origin.name if origin is not None else None) or _default_name(dataset)
    return ingest_samples(
        recorder,
        label,
        sample_set(dataset, batch_size=batch_size),
        request,
        files=files,
        index=index,
        samples_store=samples_store,
    )


def _default_name(dataset: datasets.Dataset) -> str:
    info = dataset.info
    base = info.dataset_name or info.builder_name or "dataset"
    return base + (f"/{dataset.split}" if dataset.split is not None else "")
