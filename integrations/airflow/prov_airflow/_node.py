"""Airflow context in, prov_core calls out: what every provgate task shares.

A task instance that records pushes two XComs (keys :data:`XCOM_ATTESTATION` and, for a
snapshot, :data:`XCOM_SNAPSHOT`); a later task's record names the attestations its
upstream tasks pushed (every map index of a mapped upstream) as its inputs. A step
record's ``orchestrator`` carries ``dag_id``, ``task_id``, ``run_id``, ``try_number``
and ``map_index``, and, for the core, ``instance`` (``[dag_id, task_id, run_id,
map_index]``), ``attempt`` (the try number) and, from the second try on,
``previous_attempt``: the record of the try before, found in the lineage index (Airflow
clears a task's XComs when a retry starts), which the core turns into a signed
``retry-of`` link. Each try is its own record, linked to the one before.

What this process recorded for a try is also kept in memory (:func:`recorded`), so code
that must not call back into Airflow (the OpenLineage facet, run in a forked process)
can find it.
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
    from datetime import datetime

    from prov_airflow.config import Settings
    from prov_core.home import Home
    from prov_core.step import Artifact, Attestation

__all__ = [
    "ASSET_EXTRA_KEY",
    "SYSTEM",
    "XCOM_ATTESTATION",
    "XCOM_SNAPSHOT",
    "Upstream",
    "annotate_outlets",
    "as_outputs",
    "identity_artifact",
    "instance",
    "orchestrator",
    "publish",
    "record_failed_try",
    "record_of",
    "record_try",
    "recorded",
    "task_name",
    "upstream",
]

log = logging.getLogger("prov_airflow")

XCOM_ATTESTATION = "provgate_attestation"
"""XCOM_ATTESTATION is the XCom key of a task instance's attestation (``Attestation.to_dict``)."""
XCOM_SNAPSHOT = "provgate_snapshot"
"""XCOM_SNAPSHOT is the XCom key of the pinned snapshot URI a task instance committed."""
SYSTEM = "airflow"
"""SYSTEM is ``orchestrator["name"]``: the lineage index files tries under it."""

_MAX_ERROR = 2000

# What this process recorded, by (dag_id, task_id, run_id, map_index, try_number).
_RECORDED: dict[tuple[str, str, str, int, int], Attestation] = {}


def _map_index(ti: Any) -> int:
    map_index = getattr(ti, "map_index", -1)
    return -1 if map_index is None else int(map_index)


def task_name(ti: Any) -> str:
    """``dag_id.task_id`` plus ``[map_index]`` for a mapped instance: the step's name."""
    name = f"{ti.dag_id}.{ti.task_id}"
    map_index = _map_index(ti)
    return name if map_index < 0 else f"{name}[{map_index}]"


def instance(ti: Any) -> list[str | int]:
    """The parts naming a task instance across its tries: dag, task, run, map index."""
    return [ti.dag_id, ti.task_id, ti.run_id, _map_index(ti)]


def orchestrator(ti: Any, home: Home, **extra: Any) -> dict[str, Any]:
    """The run identity of a task instance, as ``record_step``'s ``orchestrator``.

    From the second try on it names the record of the try before (``previous_attempt``,
    checked against the ledger by :func:`prov_core.nodes.previous_attempt`).
    """
    from prov_core.nodes import try_identity

    attempt = int(ti.try_number)  # only grows (a cleared task gets the next one)
    o = try_identity(
        home,
        SYSTEM,
        instance(ti),
        attempt,
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        try_number=attempt,
        map_index=_map_index(ti),
    )
    o.update({k: v for k, v in extra.items() if v is not None})
    return o


def identity_artifact(ti: Any) -> Artifact:
    """A try known only by its identity: ``airflow-task:DAG/TASK/RUN/MAP_INDEX/TRY``."""
    from prov_core.step import Artifact

    return Artifact.identity(
        f"airflow-task:{ti.dag_id}/{ti.task_id}/{ti.run_id}/{_map_index(ti)}/{ti.try_number}"
    )


def record_try(
    ti: Any,
    home: Home,
    *,
    state: str,
    inputs: Sequence[Attestation] = (),
    outputs: Sequence[Artifact] = (),
    fn: Any = None,
    parameters: Mapping[str, Any] | None = None,
    started: datetime | None = None,
    build_type: str | None = None,
    **extra: Any,
) -> Attestation:
    """Record one try of a task instance as a signed step (state ``success`` or ``failed``).

    A try with neither inputs nor outputs is named by :func:`identity_artifact`.
    ``extra`` goes into the orchestrator block (``operator``, ``error``, ...); an
    ``error`` is cut to its first 2,000 characters.
    """
    from prov_core.step import STEP_BUILD_TYPE, CodeIdentity, Recorder, record_step

    if extra.get("error") is not None:
        extra["error"] = str(extra["error"])[:_MAX_ERROR]

    if not inputs and not outputs:
        outputs = [identity_artifact(ti)]
    with Recorder.from_home(home) as recorder:
        return record_step(
            recorder,
            task_name(ti),
            inputs=list(inputs),
            outputs=list(outputs),
            code=CodeIdentity.of(fn) if callable(fn) else CodeIdentity(),
            parameters=dict(parameters or {}),
            orchestrator=orchestrator(ti, home, state=state, **extra),
            started_on=started,
            build_type=build_type or STEP_BUILD_TYPE,
        )


def record_failed_try(
    ti: Any, settings: Settings, inputs: Sequence[Attestation], error: BaseException, fn: Any
) -> Attestation | None:
    """Record a failed try of a provgate task and push it; log (never raise) if that fails."""
    try:
        attestation = record_try(
            ti,
            settings.open_home(),
            state="failed",
            inputs=inputs,
            fn=fn,
            operator=type(ti.task).__name__,
            error=f"{type(error).__name__}: {error}",
        )
        publish(ti, attestation, settings)
    except Exception as exc:
        log.error(
            "provgate: could not record the failed try of %s: %s: %s",
            task_name(ti),
            type(exc).__name__,
            exc,
        )
        return None
    return attestation


def _key(ti: Any) -> tuple[str, str, str, int, int]:
    return (ti.dag_id, ti.task_id, ti.run_id, _map_index(ti), int(ti.try_number))


def recorded(ti: Any) -> Attestation | None:
    """The record this process made for this try of ``ti``, if any."""
    return _RECORDED.get(_key(ti))


def record_of(home: Home, ti: Any) -> dict[str, Any] | None:
    """``{log_index, envelope_sha256, attempt}`` of the step filed for this try of ``ti``.

    Read from the lineage index by instance (any process may have recorded it) and
    checked against the ledger; None when this try has no step record.
    """
    from prov_core.nodes import previous_attempt

    attempt = int(ti.try_number)
    found = previous_attempt(home, SYSTEM, instance(ti), attempt + 1)
    return found if found is not None and found.get("attempt") == attempt else None


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
    _RECORDED[_key(ti)] = attestation
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


def annotate_outlets(context: Any, attestation: Attestation, content: str | None) -> None:
    """Put the attestation and content digest in the extra of every outlet asset's event.

    ``AssetEvent.extra["provgate"]`` is ``{"attestation": Attestation.to_dict(),
    "content_digest": content}`` (no ``content_digest`` when the record names no content):
    an asset consumer finds the signed record of what it reads. Must run before the task
    runner sends the outlet events (in ``execute`` or a post-execute hook).
    """
    from airflow.sdk import Asset

    task = context["task"]
    events = context.get("outlet_events")
    if events is None:
        return
    for outlet in getattr(task, "outlets", None) or ():
        if isinstance(outlet, Asset):
            entry: dict[str, Any] = {"attestation": attestation.to_dict()}
            if content is not None:
                entry["content_digest"] = content
            events[outlet].extra[ASSET_EXTRA_KEY] = entry
