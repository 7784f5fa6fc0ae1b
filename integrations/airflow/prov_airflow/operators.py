"""Operators that record what they do as signed provgate records.

- :class:`ProvenanceIngestOperator` digests data entering the pipeline (per sample) and
  signs where it came from (``prov_core.ingest.ingest_path``);
- :class:`ProvenanceSnapshotOperator` commits files as an immutable snapshot, derived
  from the upstream tasks' attestations (``prov_core.snapshot_record.commit_snapshot``),
  and pushes the pinned ``SCHEME://REPO/COMMIT`` URI;
- :class:`ProvenanceTrainingOperator` asks the training gate about the pinned snapshots
  of its upstream snapshot tasks (or ``inputs``), fails with every reason when refused,
  runs ``python_callable`` otherwise and records the training step with the gate's
  decision and the upstream attestations as its inputs.

Every step record carries ``dag_id``, ``task_id``, ``run_id``, ``try_number`` and
``map_index``, and links to the record of the try before (see :mod:`prov_airflow._node`);
the attestation goes to XCom for downstream tasks. A try that fails (the gate's refusal
included) is recorded too: a step with state ``failed``, the error, and the inputs known
by then (a refusal: the refused decision), so the next try links to it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from prov_airflow import _node
from prov_airflow.config import Settings
from prov_airflow.errors import ProvenanceError, ProvenanceRefused
from prov_airflow.links import ProvenanceLink

if TYPE_CHECKING:
    from prov_core.step import Attestation

__all__ = [
    "ProvenanceIngestOperator",
    "ProvenanceSnapshotOperator",
    "ProvenanceTrainingOperator",
    "failures_recorded",
    "gate",
    "record_outputs",
    "require_upstream",
]

log = logging.getLogger("prov_airflow")

#: The keyword a training callable may declare (with a default) to receive the pinned inputs.
PINNED_PARAM = "pinned"


def _core_call(task: str, what: str, fn: Callable[[], Any]) -> Any:
    """Run a prov_core call; a core error fails the task naming it (ours pass through)."""
    try:
        return fn()
    except ProvenanceError:
        raise
    except Exception as exc:
        raise ProvenanceError(
            f"provgate could not {what} {task}: {type(exc).__name__}: {exc}"
        ) from exc


def gate(ti: Any, settings: Settings, uris: Sequence[str]) -> Attestation:
    """Ask the training gate about ``uris``; the VSA if allowed, else :class:`ProvenanceRefused`."""
    from prov_core.gate import evaluate_gate

    task = _node.task_name(ti)
    if not uris:
        raise ProvenanceError(
            f"training task {task} has no pinned snapshot among its upstream tasks; put a "
            "ProvenanceSnapshotOperator upstream or pass inputs="
        )
    decision = _core_call(
        task,
        "run the training gate for",
        lambda: evaluate_gate(list(uris), home=settings.open_home(), policy=settings.load_policy()),
    )
    vsa_index = None if decision.vsa is None else decision.vsa.log_index
    if not decision.allowed or decision.vsa is None:
        reasons = [str(r) for r in decision.reasons]  # the core's wording, every one
        for reason in reasons:
            log.error("provgate gate: %s", reason)
        raise ProvenanceRefused(task, reasons, vsa_log_index=vsa_index, vsa=decision.vsa)
    log.info("provgate gate: allowed %s (decision at log index %s)", list(uris), vsa_index)
    return decision.vsa


def record_outputs(
    context: Any,
    settings: Settings,
    value: Any,
    *,
    fn: Callable[..., Any] | None,
    inputs: Sequence[Attestation],
    started: datetime,
    parameters: Mapping[str, Any] | None = None,
    training: bool = False,
) -> tuple[Attestation, dict[str, str]]:
    """Record a step whose outputs are the files ``value`` names; push and annotate it."""
    from prov_core.nodes import outputs_digest
    from prov_core.step import STEP_BUILD_TYPE, TRAINING_BUILD_TYPE, Artifact

    ti = context["ti"]
    task = _node.task_name(ti)
    files = _node.as_outputs(value, task)
    artifacts: list[Artifact] = []

    def record() -> Attestation:
        artifacts.extend(
            Artifact.from_path(p, name=n, reuse_written=True) for n, p in files.items()
        )
        return _node.record_try(
            ti,
            settings.open_home(),
            state="success",
            inputs=inputs,
            outputs=artifacts,
            fn=fn,
            parameters=parameters,
            started=started,
            build_type=TRAINING_BUILD_TYPE if training else STEP_BUILD_TYPE,
        )

    attestation: Attestation = _core_call(task, "record", record)
    _node.publish(ti, attestation, settings)
    _node.annotate_outlets(context, attestation, outputs_digest(artifacts))
    return attestation, {n: str(p) for n, p in files.items()}


def _control_flow() -> tuple[type[BaseException], ...]:
    """Exceptions that end a try without failing it (skip, reschedule, ...): not failures."""
    from airflow.sdk.exceptions import (
        AirflowRescheduleException,
        AirflowSkipException,
        DagRunTriggerException,
        DownstreamTasksSkipped,
    )

    return (
        AirflowSkipException,
        AirflowRescheduleException,
        DagRunTriggerException,
        DownstreamTasksSkipped,
    )


@contextmanager
def failures_recorded(
    ti: Any, settings: Settings, fn: Callable[..., Any] | None = None
) -> Iterator[list[Attestation]]:
    """Record the try as failed if the body raises; yields the list of its inputs so far.

    The body appends the inputs it has found (upstream attestations, the gate's decision);
    a refusal adds the refused decision. The exception is re-raised unchanged.
    """
    inputs: list[Attestation] = []
    try:
        yield inputs
    except Exception as exc:
        if not isinstance(exc, _control_flow()):
            if isinstance(exc, ProvenanceRefused) and exc.vsa is not None:
                inputs.insert(0, exc.vsa)
            _node.record_failed_try(ti, settings, inputs, exc, fn)
        raise


def require_upstream(ti: Any, up: _node.Upstream) -> None:
    """require_upstream raises ProvenanceError naming the upstream tasks that pushed no record."""
    if up.missing:
        raise ProvenanceError(
            f"{_node.task_name(ti)}: upstream task(s) {', '.join(up.missing)} pushed no provgate "
            "attestation; make them provgate tasks, or enable the listener ([provgate] "
            "listener = True), or pass require_upstream=False"
        )


class _ProvenanceOperator(BaseOperator):
    """Base of provgate operators: the listener leaves their task instances to them."""

    provgate_records: ClassVar[bool] = True
    operator_extra_links = (ProvenanceLink(),)

    def __init__(self, *, require_upstream: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.require_upstream = require_upstream


class ProvenanceIngestOperator(_ProvenanceOperator):
    """Digest ``path`` per sample and sign where it came from; push the attestation.

    ``source`` and ``license`` (SPDX) are required; the other keywords are the fields of
    :class:`prov_core.ingest.IngestRequest` (``method``, ``issuer``, ``collector``, ...).
    Returns ``{"log_index", "envelope_sha256", "root", "samples", "unit"}``.
    """

    template_fields: Sequence[str] = ("path", "source", "license")

    def __init__(
        self,
        *,
        path: str | Path,
        source: str,
        license: str,
        request_fields: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("require_upstream", False)
        super().__init__(**kwargs)
        self.path = str(path)
        self.source = source
        self.license = license
        self.request_fields = dict(request_fields or {})

    def execute(self, context: Any) -> dict[str, Any]:
        from prov_core.ingest import IngestRequest, ingest_path
        from prov_core.step import Recorder

        ti = context["ti"]
        settings = Settings.load()
        task = _node.task_name(ti)
        request = IngestRequest(source=self.source, license=self.license, **self.request_fields)

        def ingest() -> Any:
            home = settings.open_home()
            identity = replace(request, orchestrator=_node.orchestrator(ti, home))
            with Recorder.from_home(home) as recorder, home.open_index() as index:
                return ingest_path(
                    recorder,
                    Path(self.path),
                    identity,
                    index=index,
                    samples_store=home.open_samples(),
                )

        with failures_recorded(ti, settings):
            result = _core_call(task, "ingest", ingest)
            _node.publish(ti, result.attestation, settings)
            _node.annotate_outlets(context, result.attestation, result.root)
        return {
            "log_index": result.attestation.log_index,
            "envelope_sha256": result.attestation.envelope_sha256,
            "root": result.root,
            "samples": result.samples,
            "unit": result.unit,
        }


class ProvenanceSnapshotOperator(_ProvenanceOperator):
    """Commit ``path`` as an immutable snapshot ``SCHEME://REPO/BRANCH[/PREFIX]``.

    The snapshot record derives from the upstream tasks' attestations. Pushes and returns
    the pinned URI ``SCHEME://REPO/COMMIT[/PREFIX]`` (``scheme`` is ``provgate``, the
    home's embedded store, or ``lakefs``, configured as lakectl is).
    """

    template_fields: Sequence[str] = ("path", "repo", "branch", "prefix", "message")

    def __init__(
        self,
        *,
        path: str | Path,
        repo: str,
        branch: str = "main",
        prefix: str = "",
        message: str = "",
        scheme: str = "provgate",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = str(path)
        self.repo = repo
        self.branch = branch
        self.prefix = prefix
        self.message = message
        self.scheme = scheme

    def execute(self, context: Any) -> str:
        ti = context["ti"]
        settings = Settings.load()
        with failures_recorded(ti, settings) as inputs:
            return self._commit(ti, context, settings, inputs)

    def _commit(self, ti: Any, context: Any, settings: Settings, inputs: list[Attestation]) -> str:
        from prov_core.nodes import ensure_branch
        from prov_core.snapshot_record import commit_snapshot, open_store_for
        from prov_core.snapshots.base import SnapshotURI
        from prov_core.step import Recorder

        task = _node.task_name(ti)
        up = _node.upstream(ti)
        inputs.extend(up.attestations)
        if self.require_upstream:
            require_upstream(ti, up)

        def commit() -> Any:
            home = settings.open_home()
            store = open_store_for(
                SnapshotURI.parse(f"{self.scheme}://{self.repo}/{self.branch}"), home
            )
            try:
                ensure_branch(store, self.repo, self.branch)
                identity = _node.orchestrator(ti, home)  # before the ledger is reserved
                with Recorder.from_home(home) as recorder, home.open_index() as index:
                    return commit_snapshot(
                        recorder,
                        store,
                        self.repo,
                        self.branch,
                        self.path,
                        prefix=self.prefix,
                        message=self.message or f"{task} (airflow run {ti.run_id})",
                        derived_from=list(up.attestations),
                        index=index,
                        orchestrator=identity,
                    )
            finally:
                close = getattr(store, "close", None)
                if callable(close):
                    close()

        snap = _core_call(task, "commit the snapshot of", commit)
        pinned = f"{self.scheme}://{self.repo}/{snap.commit_id}"
        if self.prefix.strip("/"):
            pinned += "/" + self.prefix.strip("/")
        _node.publish(ti, snap.attestation, settings, snapshot=pinned)
        _node.annotate_outlets(context, snap.attestation, snap.commit_id)
        if snap.uncovered:
            log.warning(
                "provgate: %d object(s) of %s trace to no signed record (the gate will refuse "
                "them): %s",
                len(snap.uncovered),
                pinned,
                ", ".join(snap.uncovered[:20]),
            )
        return pinned


class ProvenanceTrainingOperator(_ProvenanceOperator):
    """The training gate in front of ``python_callable``; the training step recorded after it.

    ``inputs`` are the snapshot URIs the gate judges (templated); default: the pinned
    snapshots the upstream tasks pushed. ``python_callable(**op_kwargs)`` returns the
    path(s) it wrote (a path, a list, or a mapping name -> path); it receives the URIs
    that passed as ``pinned=`` if it declares that parameter. A refusal fails the task
    (no retry) with every reason, and the callable does not run.
    """

    template_fields: Sequence[str] = ("inputs", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        inputs: Sequence[str] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(python_callable):
            raise TypeError("python_callable must be callable")
        self.python_callable = python_callable
        self.inputs = list(inputs) if inputs is not None else None
        self.op_kwargs = dict(op_kwargs or {})
        self.parameters = dict(parameters or {})

    def execute(self, context: Any) -> dict[str, str]:
        ti = context["ti"]
        settings = Settings.load()
        started = datetime.now(UTC)
        with failures_recorded(ti, settings, self.python_callable) as inputs:
            up = _node.upstream(ti)
            inputs.extend(up.attestations)
            if self.require_upstream:
                require_upstream(ti, up)
            uris = list(self.inputs) if self.inputs is not None else list(up.snapshots)
            vsa = gate(ti, settings, uris)
            inputs.insert(0, vsa)
            kwargs = dict(self.op_kwargs)
            if PINNED_PARAM in inspect.signature(self.python_callable).parameters:
                kwargs[PINNED_PARAM] = uris
            value = self.python_callable(**kwargs)
            _, outputs = record_outputs(
                context,
                settings,
                value,
                fn=self.python_callable,
                inputs=list(inputs),
                started=started,
                parameters={**self.parameters, "inputs": uris},
                training=True,
            )
        return outputs
