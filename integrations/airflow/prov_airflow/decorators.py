"""``@task.provenance``: a TaskFlow task whose run is a signed lineage node.

::

    @task.provenance                      # or: from prov_airflow import provenance_task
    def clean(raw: str) -> str:           # returns the path(s) it wrote
        ...

    @task.provenance(training=True)       # the training gate runs first
    def train(pinned=None) -> str:        # receives the pinned inputs that passed
        ...

The function returns the file(s) it wrote — a path, a list of paths, or a mapping
name -> path; they are digested after it returned, so the record names the bytes
actually stored. The record's inputs are the attestations of the upstream tasks (XCom);
with ``training=True`` the gate judges the pinned snapshots the upstream tasks pushed
(or ``gate_inputs``), a refusal fails the task with every reason, and the training step
is recorded with the gate's decision among its inputs. The task's XCom return value is
``{name: path}`` of the outputs. A failed try is recorded as a failed step, and the next
try links to it (see :mod:`prov_airflow.operators`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk.bases.decorator import DecoratedOperator, task_decorator_factory

from prov_airflow import _node
from prov_airflow.config import Settings
from prov_airflow.links import ProvenanceLink
from prov_airflow.operators import (
    PINNED_PARAM,
    failures_recorded,
    gate,
    record_outputs,
    require_upstream,
)

if TYPE_CHECKING:
    from airflow.sdk.bases.decorator import TaskDecorator

    from prov_core.step import Attestation

__all__ = ["provenance_task"]

log = logging.getLogger("prov_airflow")


class _ProvenanceDecoratedOperator(DecoratedOperator, PythonOperator):  # type: ignore[misc]
    """The operator behind ``@task.provenance`` (a ``@task`` that records its outputs)."""

    template_fields: Sequence[str] = ("templates_dict", "op_args", "op_kwargs", "gate_inputs")
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "templates_dict": "json",
        "op_args": "py",
        "op_kwargs": "py",
    }
    custom_operator_name: str = "@task.provenance"
    provgate_records: ClassVar[bool] = True
    operator_extra_links = (ProvenanceLink(),)

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Any,
        op_kwargs: Any,
        training: bool = False,
        gate_inputs: Sequence[str] | None = None,
        require_upstream: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            kwargs_to_upstream={
                "python_callable": python_callable,
                "op_args": op_args,
                "op_kwargs": op_kwargs,
            },
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            **kwargs,
        )
        self.training = training
        self.gate_inputs = list(gate_inputs) if gate_inputs is not None else None
        self.require_upstream = require_upstream

    def execute(self, context: Any) -> Any:
        ti = context["ti"]
        settings = Settings.load()
        with failures_recorded(ti, settings, self.python_callable) as inputs:
            return self._run(context, settings, inputs)

    def _run(self, context: Any, settings: Settings, inputs: list[Attestation]) -> Any:
        import inspect

        ti = context["ti"]
        started = datetime.now(UTC)
        up = _node.upstream(ti)
        inputs.extend(up.attestations)
        if self.require_upstream:
            require_upstream(ti, up)
        uris: list[str] = []
        if self.training:
            uris = list(self.gate_inputs) if self.gate_inputs is not None else list(up.snapshots)
            inputs.insert(0, gate(ti, settings, uris))
            if PINNED_PARAM in inspect.signature(self.python_callable).parameters:
                self.op_kwargs = {**self.op_kwargs, PINNED_PARAM: uris}
        elif not inputs:
            log.info("provgate: %s has no upstream attestation (a source)", _node.task_name(ti))
        value = super().execute(context)
        _, outputs = record_outputs(
            context,
            settings,
            value,
            fn=self.python_callable,
            inputs=list(inputs),
            started=started,
            parameters={"inputs": uris} if self.training else None,
            training=self.training,
        )
        return outputs


def provenance_task(
    python_callable: Callable[..., Any] | None = None,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> TaskDecorator:
    """``@task`` that records each run as a signed lineage node (see the module docstring).

    Takes everything ``@task`` takes, plus ``training`` (gate first), ``gate_inputs``
    (the snapshot URIs the gate judges; default the upstream pinned snapshots) and
    ``require_upstream`` (default True: every upstream task must have pushed an
    attestation).
    """
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_ProvenanceDecoratedOperator,
        **kwargs,
    )
