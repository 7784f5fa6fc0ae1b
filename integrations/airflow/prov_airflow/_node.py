"""Airflow context in, prov_core calls out: what every provgate task shares.

A task instance that records pushes two XComs (keys :data:`XCOM_ATTESTATION` and, for a
snapshot, :data:`XCOM_SNAPSHOT`); a later task's record names the attestations its
upstream tasks pushed (every map index of a mapped upstream) as its inputs. The record's
``orchestrator`` carries ``dag_id``, ``task_id``, ``run_id``, ``try_number`` and
``map_index``, so retries and mapped instances are distinct, identifiable nodes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prov_airflow.errors import ProvenanceError

if TYPE_CHECKING:
    from prov_airflow.config import Settings
    from prov_core.step import Attestation

__all__ = [
    "ASSET_EXTRA_KEY",
    "XCOM_ATTESTATION",
    "XCOM_SNAPSHOT",
    "Upstream",
    "annotate_outlets",
    "as_outputs",
    "orchestrator",
    "publish",
    "task_name",
    "upstream",
]

log = logging.getLogger("prov_airflow")

XCOM_ATTESTATION = "provgate_attestation"
"""XCOM_ATTESTATION is the XCom key of a task instance's attestation (``Attestation.to_dict``)."""
XCOM_SNAPSHOT = "provgate_snapshot"
"""XCOM_SNAPSHOT is the XCom key of the pinned snapshot URI a task instance committed."""


def task_name(ti: Any) -> str:
    """``dag_id.task_id`` plus ``[map_index]`` for a mapped instance: the step's name."""
    name = f"{ti.dag_id}.{ti.task_id}"
    map_index = getattr(ti, "map_index", -1)
    return name if map_index is None or map_index < 0 else f"{name}[{map_index}]"


def orchestrator(ti: Any, **extra: Any) -> dict[str, Any]:
    """The run identity of a task instance, as ``record_step``'s ``orchestrator``."""
    map_index = getattr(ti, "map_index", -1)
    o: dict[str, Any] = {
        "name": "airflow",
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "try_number": int(ti.try_number),
        "map_index": -1 if map_index is None else int(map_index),
    }
    o.update({k: v for k, v in extra.items() if v is not None})
    return o


@dataclass(frozen=True)
class Upstream:
    """Upstream is what the direct upstream tasks of a task instance recorded."""

    attestations: tuple[Attestation, ...]
    snapshots: tuple[str, ...]
    missing: tuple[str, ...]  # upstream task ids that pushed no attestation


def upstream(ti: Any) -> Upstream:
    """The attestations (and pinned snapshots) the upstream task instances pushed to XCom."""
    from prov_core.errors import InputError
    from prov_core.nodes import attestation_from_dict

    attestations: list[Attestation] = []
    snapshots: list[str] = []
    missing: list[str] = []
    for task_id in sorted(ti.task.upstream_task_ids):
        # A list of task ids pulls every map index of each (XCom.get_all).
        found = [v for v in ti.xcom_pull(task_ids=[task_id], key=XCOM_ATTESTATION) if v]
        if not found:
            missing.append(task_id)
        for raw in found:
            try:
                attestations.append(attestation_from_dict(raw))
            except InputError as exc:
                raise ProvenanceError(f"upstream task {task_id}: {exc}") from exc
        snapshots.extend(str(v) for v in ti.xcom_pull(task_ids=[task_id], key=XCOM_SNAPSHOT) if v)
    return Upstream(tuple(attestations), tuple(snapshots), tuple(missing))


def publish(
    ti: Any, attestation: Attestation, settings: Settings, snapshot: str | None = None
) -> None:
    """Push the attestation (and pinned snapshot) for downstream tasks; log where it is."""
    ti.xcom_push(XCOM_ATTESTATION, attestation.to_dict())
    if snapshot is not None:
        ti.xcom_push(XCOM_SNAPSHOT, snapshot)
    link = settings.lineage_link(attestation.log_index)
    log.info(
        "provgate: recorded %s at log index %d (envelope sha256 %s)%s",
        task_name(ti),
        attestation.log_index,
        attestation.envelope_sha256,
        f"; lineage: {link}" if link else "",
    )


def as_outputs(value: Any, task: str) -> dict[str, Path]:
    """The files a task says it wrote: a path, a sequence of paths, or a mapping name -> path."""
    if isinstance(value, str | os.PathLike):
        p = Path(value)
        return {p.name: p}
    if isinstance(value, Mapping) and value:
        return {str(k): Path(v) for k, v in value.items()}
    if (
        isinstance(value, Sequence)
        and value
        and all(isinstance(v, str | os.PathLike) for v in value)
    ):
        out = {Path(v).name: Path(v) for v in value}
        if len(out) == len(value):
            return out
        raise ProvenanceError(
            f"{task}: output file names must be unique; return a mapping name -> path"
        )
    raise ProvenanceError(
        f"{task} returned {type(value).__name__}; a provenance task returns the path(s) it "
        "wrote (or a mapping name -> path)"
    )


ASSET_EXTRA_KEY = "provgate"
"""ASSET_EXTRA_KEY is the key of provgate's entry in the ``extra`` of the task's asset events."""


def annotate_outlets(context: Any, attestation: Attestation, content: str) -> None:
    """Put the attestation and content digest in the extra of every outlet asset's event.

    ``AssetEvent.extra["provgate"]`` is ``{"attestation": Attestation.to_dict(),
    "content_digest": content}``: an asset consumer finds the signed record of what it reads.
    """
    from airflow.sdk import Asset

    task = context["task"]
    events = context.get("outlet_events")
    if events is None:
        return
    for outlet in getattr(task, "outlets", None) or ():
        if isinstance(outlet, Asset):
            events[outlet].extra[ASSET_EXTRA_KEY] = {
                "attestation": attestation.to_dict(),
                "content_digest": content,
            }
