"""How a node is shown in Prefect: artifacts, an event, asset metadata.

:func:`show_node` re-verifies a node (``prov_core.nodes.verify_node``) and writes its
table and link artifacts (:mod:`prov_prefect.artifacts`) and a
``provgate.attestation.recorded`` event; :func:`add_asset_metadata` adds it to the
materialization metadata of a ``@materialize`` task's assets; :func:`show_cached`
shows a cached run as the node of the run that computed its result (recording
nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun

from prov_prefect import artifacts, events
from prov_prefect.config import ProvenanceConfig

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.step import Artifact, Attestation

__all__ = ["add_asset_metadata", "run_rows", "show_cached", "show_node"]

logger = logging.getLogger("prov_prefect")

_MAX_DIGESTS = 100  # digests listed in an asset's materialization metadata


def run_rows(run: TaskRun, task: Task[Any, Any]) -> list[dict[str, str]]:
    """run_rows are the node table's first rows: the task run, its task key and flow run."""
    return [
        {"field": "task run", "value": run.name},
        {"field": "task key", "value": task.task_key},
        {"field": "flow run", "value": str(run.flow_run_id)},
    ]


def add_asset_metadata(
    cfg: ProvenanceConfig,
    run: TaskRun,
    attestation: Attestation,
    outputs: Sequence[Artifact],
    *,
    attempt: int,
    state: str,
) -> None:
    """add_asset_metadata puts the node under ``provgate`` in each asset ``run`` materializes.

    Only inside the task run's own ``AssetContext`` of a ``@materialize`` task; Prefect
    sends the metadata in the materialization event it emits when the try ends.
    """
    from prefect.context import AssetContext

    ctx = AssetContext.get()
    if ctx is None or not ctx.downstream_assets or ctx.task_run_id != run.id:
        return
    digests = [{"name": o.name, "sha256": o.sha256, "blake3": o.blake3} for o in outputs] or [
        s.to_dict() for s in attestation.subjects
    ]
    node = {
        "log_index": attestation.log_index,
        "envelope_sha256": attestation.envelope_sha256,
        "predicate_type": attestation.predicate_type,
        "origin": attestation.origin,
        "uri": attestation.uri,
        "attempt": attempt,
        "state": state,
        "digests": digests[:_MAX_DIGESTS],
        "digests_total": len(digests),
    }
    link = cfg.lineage_link(attestation.log_index)
    if link:
        node["link"] = link
    for asset in ctx.downstream_assets:
        ctx.add_asset_metadata(asset.key, {"provgate": node})


def show_cached(cfg: ProvenanceConfig, task: Task[Any, Any], run: TaskRun, state: State) -> None:
    """show_cached shows a cached run's node: the node of the run that computed it.

    Nothing is recorded. With no such node (the result was computed without
    provgate), a warning is logged and the run has no node.
    """
    meta = getattr(state.data, "metadata", None)
    storage_key = getattr(meta, "storage_key", None)
    original = artifacts.read_cached_node(storage_key) if isinstance(storage_key, str) else None
    if original is None:
        logger.warning(
            "provgate: cached task run %s has no node of the run that computed its result; "
            "nothing recorded",
            run.name,
        )
        return
    rows = run_rows(run, task)
    rows.append({"field": "cache", "value": f"cached: node of {original.task_run_name}"})
    show_node(
        cfg,
        run,
        task,
        original.attestation,
        cfg.open_home(),
        rows=rows,
        files={},
        cache="cached",
        key=None,
        original=original,
        attempt=None,
        state="completed",
    )


def show_node(
    cfg: ProvenanceConfig,
    run: TaskRun,
    task: Task[Any, Any],
    attestation: Attestation,
    home: Home,
    *,
    rows: list[dict[str, str]],
    files: Mapping[str, str],
    cache: str,
    key: str | None,
    original: artifacts.NodeRef | None,
    attempt: int | None,
    state: str,
) -> None:
    """show_node re-verifies a node, then shows it: table and link artifacts, an event.

    ``rows`` open the table (the run, its inputs and outputs); ``key`` is the table's
    artifact key (:func:`~prov_prefect.artifacts.cache_artifact_key` for a node computed
    under a cache key); ``original`` the node a cached run shows.
    """
    from prov_core.nodes import verify_node

    report = verify_node(attestation, home=home, outputs=files or None)
    verified = "ok" if report.ok else "failed"
    rows += [
        {"field": "log index", "value": str(attestation.log_index)},
        {"field": "envelope sha256", "value": attestation.envelope_sha256},
        {"field": "predicate type", "value": attestation.predicate_type},
        {"field": "verification", "value": verified + "".join(f"; {p}" for p in report.problems)},
    ]
    meta = {
        artifacts.META["cache"]: cache,
        artifacts.META["task_key"]: task.task_key,
        artifacts.META["task_run_name"]: run.name,
        artifacts.META["verified"]: verified,
        artifacts.META["state"]: state,
    }
    if attempt is not None:
        meta[artifacts.META["attempt"]] = str(attempt)
    if original is not None and original.task_run_id is not None:
        meta[artifacts.META["original_task_run"]] = str(original.task_run_id)
    what = cache if state == "completed" else f"try {attempt} {state}"
    artifacts.create_node_artifacts(
        attestation=attestation,
        rows=rows,
        meta=meta,
        task_run_id=run.id,
        flow_run_id=run.flow_run_id,
        key=key,
        link=cfg.lineage_link(attestation.log_index),
        description=(
            f"provgate node of {run.name}: record {attestation.log_index} ({what}, {verified})"
        ),
    )
    events.emit(
        events.EVENT_RECORDED,
        resource={
            "prefect.resource.id": (
                f"provgate.attestation.{attestation.origin}.{attestation.log_index}"
            ),
            "prefect.resource.name": f"record {attestation.log_index}",
        },
        run=run,
        payload={
            "log_index": attestation.log_index,
            "envelope_sha256": attestation.envelope_sha256,
            "cache": cache,
            "verified": verified,
            "task_key": task.task_key,
            "attempt": attempt,
            "state": state,
        },
    )
