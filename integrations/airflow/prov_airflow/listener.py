"""The listener: every task instance a signed lineage node, with no change to the DAG.

Registered by :class:`prov_airflow.plugin.ProvgatePlugin` (so installing the provider is
enough); off with ``[provgate] listener = False``. Each try of a task instance becomes a
step whose inputs are the attestations the upstream task instances pushed; it pushes its
own for downstream tasks, and a retry's record links to the record of the try before.
A task's output is the digest of its return value when it has a JSON one (canonical
JSON, ``return_value.json``); a task with neither inputs nor a return value is named by
its identity (``airflow-task:`` plus dag, task, run, map index and try). provgate
operators and ``@task.provenance`` tasks record themselves and are left alone.

When the success record is made: the task runner sends a task's asset events to the API
server *before* it calls ``on_task_instance_success`` (``task_runner.py``: ``run()``
sends ``SucceedTask(outlet_events=...)``, then ``finalize()`` calls the listeners), so a
record made there could not be named in them. Instead ``on_task_instance_running``,
which fires in the task runner before ``execute`` and after the task was copied for this
try (``_prepare``: ``ti.task = ti.task.prepare_for_execution()``), chains a post-execute
hook to that copy (``_post_execute_hook``, where ``BaseOperator(post_execute=...)`` is
kept). It runs right after ``execute`` returned, with the return value and the context,
while the outlet events are still open: the success is recorded there and every outlet
asset's event gets ``extra["provgate"]`` (see :func:`prov_airflow._node.annotate_outlets`).
``on_task_instance_success`` records only a try the hook did not (it was not installed).
A failure is recorded in ``on_task_instance_failed``. The hooks run before other
listeners' (``tryfirst``), so the OpenLineage listener finds the record of the try.

A listener cannot fail its task: a recording error is logged on the task's log.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

from prov_airflow import _node
from prov_airflow.config import Settings

__all__ = ["ProvgateListener", "record_task_instance"]

log = logging.getLogger("prov_airflow")

_NO_RESULT = object()


def _return_artifact(ti: Any, result: Any = _NO_RESULT) -> Any:
    """The return value (given, or read back from XCom) as canonical JSON bytes, or None."""
    from prov_core.canonical import canonical_json
    from prov_core.step import Artifact

    if result is _NO_RESULT:
        try:
            result = ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
        except Exception:  # no value, or one Airflow cannot give back here
            return None
    elif not getattr(ti.task, "do_xcom_push", True):
        return None
    if result is None:
        return None
    try:
        data = canonical_json(result)
    except Exception:  # not JSON: a custom-serialized object; not digested
        return None
    return Artifact.from_bytes("return_value.json", data)


def record_task_instance(
    ti: Any,
    state: str,
    error: Any = None,
    *,
    result: Any = _NO_RESULT,
    context: Any = None,
) -> Any:
    """Record one try of a task instance; return its attestation (None when skipped).

    ``result`` is the return value of ``execute`` (read back from XCom when not given);
    with ``context``, the try's outlet asset events are annotated.
    """
    from prov_core.nodes import outputs_digest

    settings = Settings.load()
    if not settings.listener or getattr(ti.task, "provgate_records", False):
        return None
    up = _node.upstream(ti)
    outputs = []
    if state == "success":
        artifact = _return_artifact(ti, result)
        if artifact is not None:
            outputs.append(artifact)
    extra: dict[str, Any] = {"operator": type(ti.task).__name__}
    if error is not None:
        extra["error"] = str(error)
    if up.missing:
        extra["unrecorded_upstream"] = list(up.missing)
    attestation = _node.record_try(
        ti,
        settings.open_home(),
        state=state,
        inputs=up.attestations,
        outputs=outputs,
        fn=getattr(ti.task, "python_callable", None),
        started=getattr(ti, "start_date", None),
        **extra,
    )
    _node.publish(ti, attestation, settings)
    if context is not None:
        _node.annotate_outlets(context, attestation, outputs_digest(outputs) if outputs else None)
    return attestation


def _chain_post_execute(ti: Any) -> None:
    """Chain the success record to this try's post-execute hook (see the module docstring)."""
    task = ti.task
    previous = task._post_execute_hook
    if getattr(previous, "provgate_listener", False):
        return  # chained already (this copy of the task ran before: a resumed deferral)

    def post_execute(context: Any, result: Any = None) -> None:
        if previous is not None:  # the DAG author's own hook, run as the task runner would
            from airflow.sdk.execution_time.callback_runner import create_executable_runner
            from airflow.sdk.execution_time.context import context_get_outlet_events

            outlets = context_get_outlet_events(context)
            create_executable_runner(previous, outlets, logger=log).run(context, result)
        try:
            record_task_instance(ti, "success", result=result, context=context)
        except Exception as exc:
            log.error("provgate: could not record %s: %s: %s", ti.task_id, type(exc).__name__, exc)

    post_execute.provgate_listener = True  # type: ignore[attr-defined]
    task._post_execute_hook = post_execute


def _runtime(ti: Any) -> bool:
    """True in a task runner (a ``RuntimeTaskInstance``), not for a scheduler-side call."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    return isinstance(ti, RuntimeTaskInstance)


class ProvgateListener:
    """Airflow listener hooks (``on_task_instance_running`` / ``_success`` / ``_failed``)."""

    @hookimpl(tryfirst=True)
    def on_task_instance_running(self, task_instance: Any) -> None:  # pluggy: a subset
        ti = task_instance
        if not _runtime(ti) or getattr(ti.task, "provgate_records", False):
            return
        try:
            if Settings.load().listener:
                _chain_post_execute(ti)
        except Exception as exc:
            log.error("provgate: could not watch %s: %s: %s", ti.task_id, type(exc).__name__, exc)

    @hookimpl(tryfirst=True)
    def on_task_instance_success(self, task_instance: Any) -> None:
        if _runtime(task_instance) and _node.recorded(task_instance) is None:
            self._record(task_instance, "success", None)

    @hookimpl(tryfirst=True)
    def on_task_instance_failed(self, task_instance: Any, error: Any) -> None:
        if _runtime(task_instance):
            self._record(task_instance, "failed", error)

    @staticmethod
    def _record(ti: Any, state: str, error: Any) -> None:
        try:
            record_task_instance(ti, state, error)
        except Exception as exc:
            log.error("provgate: could not record %s: %s: %s", ti.task_id, type(exc).__name__, exc)
