"""Ingest and snapshot from inside a Prefect task: the record *is* the task run's node.

A task that brings data into the pipeline, or pins it as a snapshot, calls :func:`ingest`
or :func:`snapshot` and returns the result; ``@provenance`` takes the result's
``attestation`` as the task run's node instead of recording a step, and downstream tasks
receive the result itself (``SnapshotResult.commit_id`` pins the training inputs).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect.context import TaskRunContext

from prov_prefect.config import ProvenanceConfig

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.ingest import IngestRequest, IngestResult
    from prov_core.snapshot_record import SnapshotResult
    from prov_core.step import Attestation

__all__ = ["ingest", "pinned_uri", "snapshot"]


def _run_identity(home: Home) -> dict[str, Any] | None:
    """The run identity of the task run calling (None outside one): see ``run_identity``."""
    from prov_prefect.tries import run_identity

    ctx = TaskRunContext.get()
    if ctx is None or ctx.task_run is None:
        return None
    return run_identity(ctx.task, ctx.task_run, home)


def ingest(
    path: str | os.PathLike[str], request: IngestRequest, *, config: ProvenanceConfig | None = None
) -> IngestResult:
    """Digest ``path`` per sample and record where it came from (``prov_core.ingest``).

    Inside a task run the record carries the try's run identity (unless ``request``
    has one), so a retry's record is linked to the failed try before it.
    """
    from prov_core.ingest import ingest_path
    from prov_core.step import Recorder

    home = (config or ProvenanceConfig()).open_home()
    if request.orchestrator is None:
        request = replace(request, orchestrator=_run_identity(home))
    with Recorder.from_home(home) as recorder, home.open_index() as index:
        return ingest_path(
            recorder, Path(path), request, index=index, samples_store=home.open_samples()
        )


def _upstream_attestations() -> list[Attestation]:
    from prefect.client.schemas.objects import TaskRunResult

    from prov_prefect.artifacts import read_task_run_nodes

    ctx = TaskRunContext.get()
    if ctx is None or ctx.task_run is None:
        return []
    ids = [
        i.id
        for inputs in (ctx.task_run.task_inputs or {}).values()
        for i in inputs
        if isinstance(i, TaskRunResult)
    ]
    found = read_task_run_nodes(ids)
    return [found[i].attestation for i in dict.fromkeys(ids) if i in found]


def snapshot(
    path: str | os.PathLike[str],
    repo: str,
    *,
    branch: str = "main",
    prefix: str = "",
    message: str = "",
    scheme: str = "provgate",
    config: ProvenanceConfig | None = None,
) -> SnapshotResult:
    """Commit ``path`` to ``SCHEME://repo/branch[/prefix]`` and record the snapshot.

    The snapshot derives from the nodes of the upstream task runs; each object is linked
    to the records that cover its bytes, as ``provgate snapshot commit`` does. Inside a
    task run the record carries the try's run identity, as :func:`ingest`'s does.
    """
    from prov_core.nodes import ensure_branch
    from prov_core.snapshot_record import commit_snapshot, open_store_for
    from prov_core.snapshots.base import SnapshotURI
    from prov_core.step import Recorder

    home = (config or ProvenanceConfig()).open_home()
    store = open_store_for(SnapshotURI.parse(f"{scheme}://{repo}/{branch}"), home)
    ctx = TaskRunContext.get()
    run = ctx.task_run.name if ctx and ctx.task_run else "prefect"
    try:
        ensure_branch(store, repo, branch)
        identity = _run_identity(home)  # before the ledger is reserved
        with Recorder.from_home(home) as recorder, home.open_index() as index:
            return commit_snapshot(
                recorder,
                store,
                repo,
                branch,
                path,
                prefix=prefix,
                message=message or f"{run} (prefect)",
                derived_from=_upstream_attestations(),
                index=index,
                orchestrator=identity,
            )
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()


def pinned_uri(result: SnapshotResult, repo: str, path: str = "", scheme: str = "provgate") -> str:
    """The pinned URI ``SCHEME://repo/COMMIT[/path]`` of a snapshot result."""
    base = f"{scheme}://{repo}/{result.commit_id}"
    return f"{base}/{path.strip('/')}" if path.strip("/") else base
