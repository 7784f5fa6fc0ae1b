"""The events provgate emits to Prefect (the Events page of open-source Prefect).

- :data:`EVENT_RECORDED` per recorded try of a task run (and per cached run, naming the
  original record): resource ``provgate.attestation.<origin>.<log index>``;
- :data:`EVENT_REFUSED` per refusal of the training gate: resource
  ``provgate.gate.<task name>``.

Both are related to the task run and its flow run (:func:`related`).
"""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import TaskRun
from prefect.events import emit_event

__all__ = ["EVENT_RECORDED", "EVENT_REFUSED", "emit", "related"]

EVENT_RECORDED = "provgate.attestation.recorded"
EVENT_REFUSED = "provgate.gate.refused"


def related(run: TaskRun | None) -> list[dict[str, str]]:
    """related names a task run and its flow run as an event's related resources."""
    if run is None:
        return []
    out = [
        {
            "prefect.resource.id": f"prefect.task-run.{run.id}",
            "prefect.resource.role": "task-run",
            "prefect.resource.name": run.name,
        }
    ]
    if run.flow_run_id is not None:
        out.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{run.flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        )
    return out


def emit(
    event: str, *, resource: dict[str, str], run: TaskRun | None, payload: dict[str, Any]
) -> None:
    """emit sends one event related to ``run`` (queued; Prefect's worker delivers it)."""
    emit_event(event, resource=resource, related=related(run), payload=payload)
