"""One try of a task run as a signed node, recorded inside the run.

``@provenance`` wraps the task's function; each time Prefect calls it (every try:
the first run and each retry) the wrapper opens a :class:`TaskTry` and, before
Prefect sees the outcome, records it:

- the function returned: :func:`record_completed` makes the node (the
  attestation the value carries, for ``ingest(...)`` / ``snapshot(...)``; else a
  step whose outputs are the value's digests);
- the function raised: :func:`record_failed` makes a step with no outputs, the
  error and ``state: "failed"``.

A step's inputs are the training gate's decision (gated tasks), the nodes of the
upstream task runs the call's arguments came from (:func:`upstream_nodes`) and the
attestations passed as arguments. Its ``orchestrator`` names the task instance
(``instance``: ``[task run id]``, the same across retries) and the try
(``attempt``: Prefect's ``run_count``); a retry names the record of the try before
it as ``previous_attempt`` (``prov_core.nodes.previous_attempt``), a signed
``retry-of`` link.

Each node is then re-verified and shown (:mod:`prov_prefect.show`): a table and
a link artifact of the task run, a ``provgate.attestation.recorded`` event and,
for a ``@materialize`` task, the ``provgate`` key of its assets' materialization
metadata. Anything here that fails raises, so the try fails with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect import Task
from prefect.client.schemas.objects import TaskRun, TaskRunResult

from prov_prefect import artifacts, show
from prov_prefect.config import ProvenanceConfig
from prov_prefect.errors import ProvenanceError

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.step import Artifact, Attestation

__all__ = [
    "SYSTEM",
    "TaskTry",
    "argument_runs",
    "begin_try",
    "record_completed",
    "record_failed",
    "run_identity",
    "upstream_nodes",
]

SYSTEM = "prefect"
"""SYSTEM is ``orchestrator["name"]``: the lineage index files tries under it."""

_MAX_ERROR = 2000  # characters of an error message kept in a failed try's record


@dataclass
class TaskTry:
    """TaskTry is one call of a task's function in a task run, up to its record."""

    cfg: ProvenanceConfig
    task: Task[Any, Any]
    run: TaskRun
    fn: Callable[..., Any]  # the user's function (its code identity goes in the record)
    arguments: dict[str, Any]
    training: bool
    home: Home
    started: datetime
    upstream: list[artifacts.NodeRef]
    untracked: list[str]
    cache_key: str | None  # the try's transaction key (None: the task does not cache)
    storage_key: str | None  # where Prefect will store its result under that key
    vsa: Attestation | None = None  # the training gate's decision

    @property
    def attempt(self) -> int:
        """attempt is the try number: Prefect's ``run_count`` (1 for the first run)."""
        return int(self.run.run_count)


def argument_runs(arguments: Mapping[str, Any]) -> list[UUID]:
    """argument_runs are the task runs whose results are the arguments (or their items).

    Prefect's own ``task_inputs`` also match the *components* of an argument by
    ``id()``, so a shared immutable inside one run's result (an interned string such
    as ``"rows"``, the empty tuple) would link unrelated runs; only the arguments
    themselves, and the items of a list, tuple or dict argument, count here, and
    each match is checked against what that run returned (:mod:`prov_prefect.results`:
    a freed result's ``id()`` can be reused by an unrelated value).
    """
    from prov_prefect.results import came_from

    ids: list[UUID] = []

    def note(value: Any) -> None:
        run_id = came_from(value)
        if run_id is not None and run_id not in ids:
            ids.append(run_id)

    for value in arguments.values():
        note(value)
        if isinstance(value, list | tuple):
            for item in value:
                note(item)
        elif isinstance(value, dict):
            for item in value.values():
                note(item)
    return ids


def upstream_nodes(
    run: TaskRun, called_with: Sequence[UUID]
) -> tuple[list[artifacts.NodeRef], list[str]]:
    """upstream_nodes are the nodes of the upstream task runs, and the runs with none.

    Arguments count only for the runs in ``called_with`` (:func:`argument_runs`);
    ``wait_for`` and parents as Prefect tracked them in ``task_run.task_inputs``.
    """
    ids: list[UUID] = []
    for key, inputs in (run.task_inputs or {}).items():
        by_argument = key not in ("wait_for", "__parents__")
        for i in inputs:
            if not isinstance(i, TaskRunResult) or i.id in ids:
                continue
            if by_argument and i.id not in called_with:
                continue
            ids.append(i.id)
    found = artifacts.read_task_run_nodes(ids)
    return [found[i] for i in ids if i in found], [str(i) for i in ids if i not in found]


def _cache_keys() -> tuple[str | None, str | None]:
    """The running try's cache key and the storage key Prefect will give its result."""
    from prefect.transactions import get_transaction

    txn = get_transaction()
    key = getattr(txn, "key", None)
    if not isinstance(key, str) or not key:
        return None, None
    create = getattr(getattr(txn, "store", None), "create_result_record", None)
    if not callable(create):
        return key, None
    storage = getattr(getattr(create(None, key=key), "metadata", None), "storage_key", None)
    return key, storage if isinstance(storage, str) and storage else None


def begin_try(
    cfg: ProvenanceConfig,
    task: Task[Any, Any],
    run: TaskRun,
    fn: Callable[..., Any],
    arguments: Mapping[str, Any],
    *,
    training: bool,
) -> TaskTry:
    """begin_try opens the home and finds the try's upstream nodes, before the call."""
    started = datetime.now(UTC)
    home = cfg.open_home()
    upstream, untracked = upstream_nodes(run, argument_runs(arguments))
    cache_key, storage_key = _cache_keys()
    return TaskTry(
        cfg=cfg,
        task=task,
        run=run,
        fn=fn,
        arguments=dict(arguments),
        training=training,
        home=home,
        started=started,
        upstream=upstream,
        untracked=untracked,
        cache_key=cache_key,
        storage_key=storage_key,
    )


# ---------------------------------------------------------------------------
# Recording


def _passed_attestations(arguments: Mapping[str, Any]) -> list[Attestation]:
    from prov_core.step import Attestation

    out: list[Attestation] = []

    def walk(v: Any) -> None:
        own = v if isinstance(v, Attestation) else getattr(v, "attestation", None)
        if isinstance(own, Attestation):
            out.append(own)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    for v in arguments.values():
        walk(v)
    return out


def _inputs(t: TaskTry) -> list[Attestation]:
    """The try's inputs: the gate's decision, the upstream nodes, passed attestations."""
    inputs = [] if t.vsa is None else [t.vsa]
    inputs += [u.attestation for u in t.upstream]
    seen = {(a.log_index, a.envelope_sha256) for a in inputs}
    for a in _passed_attestations(t.arguments):  # those Prefect could not track
        if (a.log_index, a.envelope_sha256) not in seen:
            seen.add((a.log_index, a.envelope_sha256))
            inputs.append(a)
    return inputs


def _outputs(value: Any, name: str) -> tuple[list[Artifact], dict[str, str]]:
    """The task's return value as output artifacts, and where files are stored."""
    from prov_core.canonical import canonical_json
    from prov_core.step import Artifact

    files: dict[str, Path] | None = None
    if isinstance(value, os.PathLike):
        files = {Path(value).name: Path(value)}
    elif (
        isinstance(value, Mapping)
        and value
        and all(isinstance(v, os.PathLike) for v in value.values())
    ):
        files = {str(k): Path(v) for k, v in value.items()}
    elif (
        isinstance(value, list | tuple) and value and all(isinstance(v, os.PathLike) for v in value)
    ):
        files = {Path(v).name: Path(v) for v in value}
        if len(files) != len(value):
            raise ProvenanceError(f"{name}: output file names must be unique; return a mapping")
    if files is not None:
        return [Artifact.from_path(p, name=n, reuse_written=True) for n, p in files.items()], {
            n: str(p) for n, p in files.items()
        }
    if value is None:
        return [], {}
    if isinstance(value, bytes | bytearray):
        return [Artifact.from_bytes(f"{name}.result", bytes(value))], {}
    try:
        data = canonical_json(value)
    except Exception as exc:
        raise ProvenanceError(
            f"{name} returned {type(value).__name__}, which provgate cannot digest; return "
            "the Path(s) the task wrote, bytes, or a JSON value"
        ) from exc
    return [Artifact.from_bytes(f"{name}.result.json", data)], {}


def _json_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-representable parameters; others are named by type (never by value)."""
    from prov_core.canonical import canonical_json
    from prov_core.step import Attestation

    out: dict[str, Any] = {}
    for k, v in parameters.items():
        if isinstance(v, Attestation):
            out[k] = {"attestation": v.log_index}
            continue
        value = os.fspath(v) if isinstance(v, os.PathLike) else v
        try:
            canonical_json(value)
        except Exception:
            out[k] = {"type": type(v).__name__}
        else:
            out[k] = value
    return out


def run_identity(task: Task[Any, Any], run: TaskRun, home: Home) -> dict[str, Any]:
    """run_identity is a try's run identity, as a record's ``orchestrator``.

    It names the task instance across its tries (``instance``: ``[task run id]``),
    the try (``attempt``: ``run_count``) and, from the second try on, the record of
    the try before (``previous_attempt``, checked by
    :func:`prov_core.nodes.previous_attempt`). Steps carry it in their
    ``internalParameters``; ingest and snapshot records in their predicate.
    """
    from prov_core.nodes import try_identity

    return try_identity(
        home,
        SYSTEM,
        [str(run.id)],  # a task run id is new with each flow run: its tries share it
        int(run.run_count),
        run_id=str(run.flow_run_id),
        task_run_id=str(run.id),
        task_run_name=run.name,
        task_key=task.task_key,
        dynamic_key=run.dynamic_key,
    )


def _record_step(
    t: TaskTry,
    inputs: Sequence[Attestation],
    outputs: Sequence[Artifact],
    *,
    state: str,
    error: str | None = None,
) -> Attestation:
    from prov_core.step import (
        STEP_BUILD_TYPE,
        TRAINING_BUILD_TYPE,
        CodeIdentity,
        Recorder,
        record_step,
    )

    orchestrator = run_identity(t.task, t.run, t.home)
    orchestrator["state"] = state
    if error is not None:
        orchestrator["error"] = error[:_MAX_ERROR]
    if state == "completed":
        orchestrator["cache"] = "computed"
        if t.cache_key:
            orchestrator["cache_key"] = t.cache_key
    if t.untracked:
        orchestrator["untracked_upstream"] = t.untracked
    with Recorder.from_home(t.home) as recorder:
        return record_step(
            recorder,
            t.task.name,
            inputs=list(inputs),
            outputs=list(outputs),
            code=CodeIdentity.of(t.fn, version=t.task.version),
            parameters=_json_parameters(t.arguments),
            orchestrator=orchestrator,
            started_on=t.started,
            finished_on=datetime.now(UTC),
            build_type=TRAINING_BUILD_TYPE if t.training else STEP_BUILD_TYPE,
        )


def record_completed(t: TaskTry, value: Any) -> Attestation:
    """record_completed makes the node of a try whose function returned ``value``."""
    from prov_core.step import Attestation
    from prov_prefect.results import remember

    remember(t.run.id, value)
    own = value if isinstance(value, Attestation) else getattr(value, "attestation", None)
    if isinstance(own, Attestation):  # the task recorded its own node (ingest, snapshot)
        _publish(t, own, inputs=[], outputs=[], files={}, state="completed")
        return own
    inputs = _inputs(t)
    outputs, files = _outputs(value, t.task.name)
    attestation = _record_step(t, inputs, outputs, state="completed")
    _publish(t, attestation, inputs=inputs, outputs=outputs, files=files, state="completed")
    return attestation


def record_failed(t: TaskTry, error: BaseException | str) -> Attestation:
    """record_failed makes the node of a try whose function raised (or returned Failed)."""
    from prov_core.step import Artifact

    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    inputs = _inputs(t)
    # A try with no input (a source task) failed before it had anything: its identity.
    outputs = [] if inputs else [Artifact.identity(f"prefect-task-run:{t.run.id}/{t.attempt}")]
    attestation = _record_step(t, inputs, outputs, state="failed", error=text)
    _publish(t, attestation, inputs=inputs, outputs=outputs, files={}, state="failed")
    return attestation


# ---------------------------------------------------------------------------
# Showing a try's node


def _rows(t: TaskTry, state: str) -> list[dict[str, str]]:
    return [*show.run_rows(t.run, t.task), {"field": "try", "value": f"{t.attempt} ({state})"}]


def _publish(
    t: TaskTry,
    attestation: Attestation,
    *,
    inputs: Sequence[Attestation],
    outputs: Sequence[Artifact],
    files: Mapping[str, str],
    state: str,
) -> None:
    rows = _rows(t, state)
    rows.append({"field": "cache", "value": "computed"})
    for i in inputs:
        d = i.descriptor()
        label = d["name"]
        for u in t.upstream:
            if u.attestation.envelope_sha256 == d["digest"]["sha256"]:
                label += f" (task run {u.task_run_name})"
        if t.vsa is not None and i == t.vsa:
            label += " (training gate decision)"
        rows.append({"field": "input", "value": f"{label} sha256:{d['digest']['sha256']}"})
    for o in outputs:
        rows.append({"field": f"output {o.name}", "value": f"blake3:{o.blake3} sha256:{o.sha256}"})
    key = (
        artifacts.cache_artifact_key(t.storage_key)
        if t.storage_key and state == "completed"
        else None
    )
    show.show_node(
        t.cfg,
        t.run,
        t.task,
        attestation,
        t.home,
        rows=rows,
        files=files,
        cache="computed",
        key=key,
        original=None,
        attempt=t.attempt,
        state=state,
    )
    show.add_asset_metadata(t.cfg, t.run, attestation, outputs, attempt=t.attempt, state=state)
