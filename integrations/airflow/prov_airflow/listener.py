"""The listener: every task instance a signed lineage node, with no change to the DAG.

Registered by :class:`prov_airflow.plugin.ProvgatePlugin` (so installing the provider is
enough); off with ``[provgate] listener = False``. On success and on failure (each try,
so retries are distinct records) it records a step whose inputs are the attestations
the upstream task instances pushed, and pushes its own for downstream tasks. A task's
output is the digest of its XCom return value when it has one (canonical JSON); a task
with neither inputs nor a return value is named by its identity (``airflow-task:`` plus
dag, task, run and map index). provgate operators and ``@task.provenance`` tasks record
themselves and are left alone.

A listener cannot fail its task: a recording error is logged on the task's log.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from airflow.listeners import hookimpl

from prov_airflow import _node
from prov_airflow.config import Settings

__all__ = ["ProvgateListener", "record_task_instance"]

log = logging.getLogger("prov_airflow")

_MAX_ERROR = 2000


def _return_artifact(ti: Any) -> Any:
    """The XCom return value as an artifact (canonical JSON bytes), or None."""
    from prov_core.canonical import canonical_json
    from prov_core.step import Artifact

    try:
        value = ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
    except Exception:  # no value, or one Airflow cannot give back here
        return None
    if value is None:
        return None
    try:
        data = canonical_json(value)
    except Exception:  # not JSON: a custom-serialized object; not digested
        return None
    return Artifact.from_bytes("return_value.json", data)


def _identity_artifact(ti: Any) -> Any:
    from prov_core.step import Artifact

    ident = f"airflow-task:{ti.dag_id}/{ti.task_id}/{ti.run_id}/{ti.map_index}/{ti.try_number}"
    return Artifact(name=ident, sha256=hashlib.sha256(ident.encode()).hexdigest())


def record_task_instance(ti: Any, state: str, error: Any = None) -> Any:
    """Record one finished task instance; return its attestation (None when skipped)."""
    from prov_core.step import CodeIdentity, Recorder, record_step

    settings = Settings.load()
    if not settings.listener or getattr(ti.task, "provgate_records", False):
        return None
    up = _node.upstream(ti)
    outputs = []
    if state == "success":
        artifact = _return_artifact(ti)
        if artifact is not None:
            outputs.append(artifact)
    if not outputs and not up.attestations:
        outputs.append(_identity_artifact(ti))
    extra: dict[str, Any] = {"state": state, "operator": type(ti.task).__name__}
    if error is not None:
        extra["error"] = str(error)[:_MAX_ERROR]
    if up.missing:
        extra["unrecorded_upstream"] = list(up.missing)
    fn = getattr(ti.task, "python_callable", None)
    with Recorder.from_home(settings.open_home()) as recorder:
        attestation = record_step(
            recorder,
            _node.task_name(ti),
            inputs=list(up.attestations),
            outputs=outputs,
            code=CodeIdentity.of(fn) if callable(fn) else CodeIdentity(),
            orchestrator=_node.orchestrator(ti, **extra),
            started_on=getattr(ti, "start_date", None),
        )
    _node.publish(ti, attestation, settings)
    return attestation


class ProvgateListener:
    """Airflow listener hooks (``on_task_instance_success`` / ``_failed``) -> provgate."""

    @hookimpl
    def on_task_instance_success(self, task_instance: Any) -> None:  # pluggy: a subset
        self._record(task_instance, "success", None)

    @hookimpl
    def on_task_instance_failed(self, task_instance: Any, error: Any) -> None:
        self._record(task_instance, "failed", error)

    @staticmethod
    def _record(ti: Any, state: str, error: Any) -> None:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        if not isinstance(ti, RuntimeTaskInstance):  # a scheduler-side call: not a task runner
            return
        try:
            record_task_instance(ti, state, error)
        except Exception as exc:
            log.error("provgate: could not record %s: %s: %s", ti.task_id, type(exc).__name__, exc)
