"""provenance: give any Prefect task provgate hooks; each completed run becomes a signed node.

The one-line change per task is to put ``@provenance`` above ``@task`` (or call
``provenance(my_task)``): it returns ``my_task.with_options(...)`` with an ``on_completion``
and an ``on_failure`` hook added after the task's own. On completion the hook:

1. takes the run's inputs: the nodes of the upstream task runs Prefect tracked in
   ``task_run.task_inputs`` (read back from their table artifacts), plus every
   :class:`~prov_core.step.Attestation` passed to the task as an argument (or carried
   in an argument's ``.attestation``);
2. if the run is *Cached*, records nothing: its node is the node of the run that computed
   the cached result (found by the result's storage key), shown with cache state
   ``cached``;
3. if the task returned an ``Attestation``, or a value carrying one in ``.attestation``
   (``IngestResult``, ``SnapshotResult``: an ingest or snapshot it recorded itself with
   prov_core), that is its node;
4. otherwise it records a step (``prov_core.step.record_step``) whose outputs are what the
   task returned: a ``Path`` (or a sequence or name -> ``Path`` mapping: the files it
   wrote, digested now), ``bytes``, or a JSON value (its RFC 8785 bytes); with flow run,
   task run, task key, attempt and cache key in the record;
5. re-verifies the node (``prov_core.nodes.verify_node``) and writes the task run's table
   and link artifacts (:mod:`prov_prefect.artifacts`) and a
   ``provgate.attestation.recorded`` event.

``training=True`` also puts the training gate (``prov_core.gate.evaluate_gate``) in front
of the task's function: its inputs are the snapshot URIs among the call's arguments
(``provgate://`` or ``lakefs://``, or the parameters named in ``gate_inputs``); a refusal
fails the task run with every reason (:class:`~prov_prefect.errors.ProvenanceRefused`),
emits ``provgate.gate.refused``, and a run the gate allowed records a training step with
the gate's decision among its inputs.

Prefect logs, but does not raise, an error in a hook: a run whose node could not be
recorded stays Completed and has no provgate table artifact, and a downstream node names
it under ``untracked_upstream``; the training gate, which runs inside the task, fails closed.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from uuid import UUID

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun, TaskRunResult
from prefect.context import TaskRunContext
from prefect.events import emit_event

from prov_prefect import artifacts
from prov_prefect.config import ProvenanceConfig
from prov_prefect.errors import ProvenanceError, ProvenanceRefused

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.step import Artifact, Attestation

__all__ = ["provenance"]

T = TypeVar("T", bound=Task[Any, Any])

logger = logging.getLogger("prov_prefect")

EVENT_RECORDED = "provgate.attestation.recorded"
EVENT_REFUSED = "provgate.gate.refused"

# The gate's decision, from the task body (which runs it) to the hook (which records the
# step), keyed by task run id: both run in the task engine's process.
_gate_vsa: dict[UUID, Attestation] = {}
_gate_lock = threading.Lock()

# The upstream task runs whose results the task was actually called with, keyed by task
# run id, from the task body to the hook. Prefect's own ``task_inputs`` also match the
# *components* of an argument by ``id()``, so a shared immutable inside one run's result
# (an interned string such as ``"rows"``, the empty tuple) links unrelated runs; only
# the arguments themselves (and the items of a list, tuple or dict argument) count here.
_called_with: dict[UUID, list[UUID]] = {}


def provenance(
    task: T | None = None,
    *,
    config: ProvenanceConfig | None = None,
    training: bool = False,
    gate_inputs: Sequence[str] | None = None,
) -> Any:
    """Return ``task`` with provgate's hooks (see the module docstring); usable as a decorator.

    ``config`` says where to record (default :class:`ProvenanceConfig` ()); ``training``
    gates the task; ``gate_inputs`` names the parameters holding its snapshot URIs.
    """

    def decorate(t: T) -> T:
        if not isinstance(t, Task):
            raise TypeError(f"@provenance goes above @task; got {type(t).__name__}")
        cfg = config or ProvenanceConfig()
        hook = functools.partial(_on_final_state, cfg, training)
        hook.__name__ = "provgate"  # type: ignore[attr-defined]  # Prefect logs hook names
        new = t.with_options(
            on_completion=[*t.on_completion_hooks, hook],
            on_failure=[*t.on_failure_hooks, hook],
        )
        fn = _gated(t.fn, t.name, cfg, gate_inputs) if training else t.fn
        new.fn = _noting_inputs(fn)
        return new  # type: ignore[return-value]

    return decorate if task is None else decorate(task)


# ---------------------------------------------------------------------------
# The training gate, inside the task


def _argument_runs(arguments: Mapping[str, Any]) -> list[UUID]:
    """The task runs whose results are the arguments, or the items of list/tuple/dict ones."""
    from prefect.utilities.engine import get_state_for_result

    ids: list[UUID] = []

    def note(value: Any) -> None:
        found = get_state_for_result(value)
        run_id = found[0].state_details.task_run_id if found else None
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


def _noting_inputs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """_noting_inputs wraps the task's function to note the runs its arguments came from."""
    sig = inspect.signature(fn)

    def note(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ctx = TaskRunContext.get()
        if ctx is None:
            return
        runs = _argument_runs(sig.bind(*args, **kwargs).arguments)
        with _gate_lock:
            _called_with[ctx.task_run.id] = runs

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def anoted(*args: Any, **kwargs: Any) -> Any:
            note(args, kwargs)
            return await fn(*args, **kwargs)

        return anoted

    @functools.wraps(fn)
    def noted(*args: Any, **kwargs: Any) -> Any:
        note(args, kwargs)
        return fn(*args, **kwargs)

    return noted


def _snapshot_uris(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.startswith(("provgate://", "lakefs://")) else []
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [u for v in value for u in _snapshot_uris(v)]
    return []


def _gated(
    fn: Callable[..., Any], name: str, cfg: ProvenanceConfig, names: Sequence[str] | None
) -> Callable[..., Any]:
    sig = inspect.signature(fn)

    def gate(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        from prov_core.gate import evaluate_gate

        bound = sig.bind(*args, **kwargs)
        values = bound.arguments
        wanted = names if names is not None else list(values)
        uris = [u for n in wanted for u in _snapshot_uris(values.get(n))]
        ctx = TaskRunContext.get()
        run = ctx.task_run if ctx else None
        if not uris:
            _refused(run, name, ["no snapshot URI among the task's arguments"], None, uris)
        try:
            decision = evaluate_gate(uris, home=cfg.open_home(), policy=cfg.load_policy())
        except Exception as exc:  # a malformed URI or policy: refuse, naming it
            _refused(run, name, [f"{type(exc).__name__}: {exc}"], None, uris)
        vsa = decision.vsa
        if not decision.allowed or vsa is None:
            reasons = [str(r) for r in decision.reasons] or ["the decision was not recorded"]
            _refused(run, name, reasons, None if vsa is None else vsa.log_index, uris)
        if run is not None:
            with _gate_lock:
                _gate_vsa[run.id] = vsa

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def agated(*args: Any, **kwargs: Any) -> Any:
            gate(args, kwargs)
            return await fn(*args, **kwargs)

        return agated

    @functools.wraps(fn)
    def gated(*args: Any, **kwargs: Any) -> Any:
        gate(args, kwargs)
        return fn(*args, **kwargs)

    return gated


def _refused(
    run: TaskRun | None,
    name: str,
    reasons: list[str],
    vsa_log_index: int | None,
    uris: list[str],
) -> NoReturn:
    related = _related(run)
    emit_event(
        EVENT_REFUSED,
        resource={"prefect.resource.id": f"provgate.gate.{name}", "prefect.resource.name": name},
        related=related,
        payload={"reasons": reasons, "inputs": uris, "vsa_log_index": vsa_log_index},
    )
    raise ProvenanceRefused(name, reasons, vsa_log_index=vsa_log_index, inputs=uris)


def _related(run: TaskRun | None) -> list[dict[str, str]]:
    if run is None:
        return []
    related = [
        {
            "prefect.resource.id": f"prefect.task-run.{run.id}",
            "prefect.resource.role": "task-run",
            "prefect.resource.name": run.name,
        }
    ]
    if run.flow_run_id is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{run.flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        )
    return related


# ---------------------------------------------------------------------------
# The hook


def _on_final_state(
    cfg: ProvenanceConfig, training: bool, task: Task[Any, Any], run: TaskRun, state: State
) -> None:
    with _gate_lock:
        vsa = _gate_vsa.pop(run.id, None)
    if not state.is_completed():
        with _gate_lock:
            _called_with.pop(run.id, None)
        return  # a failure records nothing; a refusal was recorded (a VSA) by the gate
    try:
        _record_completed(cfg, task, run, state, training=training, vsa=vsa)
    except Exception:
        logger.exception("provgate could not record task run %s (%s)", run.name, task.task_key)
        raise


def _storage_key(state: State) -> str | None:
    meta = getattr(state.data, "metadata", None)
    key = getattr(meta, "storage_key", None)
    return key if isinstance(key, str) and key else None


def _upstream(run: TaskRun) -> tuple[list[artifacts.NodeRef], list[str]]:
    with _gate_lock:
        called_with = _called_with.pop(run.id, None)
    ids: list[UUID] = []
    for key, inputs in (run.task_inputs or {}).items():
        for i in inputs:
            if not isinstance(i, TaskRunResult) or i.id in ids:
                continue
            # Arguments: only the runs the task was really called with (see _called_with);
            # wait_for and parents as Prefect tracked them.
            by_argument = key not in ("wait_for", "__parents__")
            if by_argument and called_with is not None and i.id not in called_with:
                continue
            ids.append(i.id)
    found = artifacts.read_task_run_nodes(ids)
    return [found[i] for i in ids if i in found], [str(i) for i in ids if i not in found]


def _passed_attestations(parameters: Mapping[str, Any]) -> list[Attestation]:
    from prov_core.step import Attestation

    out: list[Attestation] = []

    def walk(v: Any) -> None:
        own = v if isinstance(v, Attestation) else getattr(v, "attestation", None)
        if isinstance(own, Attestation):
            out.append(own)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    for v in parameters.values():
        walk(v)
    return out


def _outputs(value: Any, name: str) -> tuple[list[Artifact], dict[str, str]]:
    """The task's return value as output artifacts, and where files are stored."""
    from prov_core.canonical import canonical_json
    from prov_core.step import Artifact

    files: dict[str, Path] | None = None
    if isinstance(value, str | os.PathLike) and not isinstance(value, str):
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
        return [Artifact.from_path(p, name=n) for n, p in files.items()], {
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


def _record_completed(
    cfg: ProvenanceConfig,
    task: Task[Any, Any],
    run: TaskRun,
    state: State,
    *,
    training: bool,
    vsa: Attestation | None,
) -> None:
    from prov_core.step import (
        STEP_BUILD_TYPE,
        TRAINING_BUILD_TYPE,
        Attestation,
        CodeIdentity,
        Recorder,
        record_step,
    )

    storage_key = _storage_key(state)
    cached = state.name == "Cached"
    rows: list[dict[str, str]] = [
        {"field": "task run", "value": run.name},
        {"field": "task key", "value": task.task_key},
        {"field": "flow run", "value": str(run.flow_run_id)},
    ]
    home = cfg.open_home()
    if cached:
        original = artifacts.read_cached_node(storage_key) if storage_key else None
        if original is None:
            logger.warning(
                "provgate: cached task run %s has no node of the run that computed its result; "
                "nothing recorded",
                run.name,
            )
            return
        rows.append({"field": "cache", "value": f"cached: node of {original.task_run_name}"})
        _publish(
            cfg,
            run,
            task,
            original.attestation,
            rows=rows,
            files={},
            cache="cached",
            key=None,
            original=original,
            home=home,
        )
        return

    value = state.result(raise_on_failure=False)
    ctx = TaskRunContext.get()
    parameters = dict(ctx.parameters) if ctx and ctx.parameters else {}
    own = value if isinstance(value, Attestation) else getattr(value, "attestation", None)
    if isinstance(own, Attestation):  # the task recorded its own node (ingest, snapshot)
        rows.append({"field": "cache", "value": "computed"})
        _publish(
            cfg,
            run,
            task,
            own,
            rows=rows,
            files={},
            cache="computed",
            key=artifacts.cache_artifact_key(storage_key) if storage_key else None,
            original=None,
            home=home,
        )
        return

    upstream, untracked = _upstream(run)
    attestations = [] if vsa is None else [vsa]
    attestations += [u.attestation for u in upstream]
    seen = {(a.log_index, a.envelope_sha256) for a in attestations}
    for a in _passed_attestations(parameters):  # those Prefect could not track
        if (a.log_index, a.envelope_sha256) not in seen:
            seen.add((a.log_index, a.envelope_sha256))
            attestations.append(a)
    inputs: list[Artifact | Attestation] = list(attestations)
    outputs, files = _outputs(value, task.name)
    orchestrator: dict[str, Any] = {
        "name": "prefect",
        "run_id": str(run.flow_run_id),
        "task_run_id": str(run.id),
        "task_run_name": run.name,
        "task_key": task.task_key,
        "dynamic_key": run.dynamic_key,
        "attempt": run.run_count,
        "cache": "computed",
    }
    if storage_key:
        orchestrator["cache_key"] = storage_key
    if untracked:
        orchestrator["untracked_upstream"] = untracked
    started = run.start_time
    with Recorder.from_home(home) as recorder:
        attestation = record_step(
            recorder,
            task.name,
            inputs=inputs,
            outputs=outputs,
            code=CodeIdentity.of(task.fn, version=task.version),
            parameters=_json_parameters(parameters),
            orchestrator=orchestrator,
            started_on=started if isinstance(started, datetime) else None,
            finished_on=datetime.now(UTC),
            build_type=TRAINING_BUILD_TYPE if training else STEP_BUILD_TYPE,
        )
    rows.append({"field": "cache", "value": "computed"})
    for i in inputs:
        d = i.descriptor()
        label = d["name"]
        for u in upstream:
            if u.attestation.envelope_sha256 == d["digest"]["sha256"]:
                label += f" (task run {u.task_run_name})"
        if vsa is not None and i == vsa:
            label += " (training gate decision)"
        rows.append({"field": "input", "value": f"{label} sha256:{d['digest']['sha256']}"})
    for o in outputs:
        rows.append({"field": f"output {o.name}", "value": f"blake3:{o.blake3} sha256:{o.sha256}"})
    _publish(
        cfg,
        run,
        task,
        attestation,
        rows=rows,
        files=files,
        cache="computed",
        key=artifacts.cache_artifact_key(storage_key) if storage_key else None,
        original=None,
        home=home,
    )


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


def _publish(
    cfg: ProvenanceConfig,
    run: TaskRun,
    task: Task[Any, Any],
    attestation: Attestation,
    *,
    rows: list[dict[str, str]],
    files: Mapping[str, str],
    cache: str,
    key: str | None,
    original: artifacts.NodeRef | None,
    home: Home,
) -> None:
    """Re-verify the node, then show it: table and link artifacts, and an event."""
    from prov_core.nodes import verify_node

    report = verify_node(attestation, home=home, outputs=files or None)
    verified = "ok" if report.ok else "failed"
    rows += [
        {"field": "log index", "value": str(attestation.log_index)},
        {"field": "envelope sha256", "value": attestation.envelope_sha256},
        {"field": "predicate type", "value": attestation.predicate_type},
        {"field": "verification", "value": verified + "".join(f"; {p}" for p in report.problems)},
    ]
    link = cfg.lineage_link(attestation.log_index)
    meta = {
        artifacts.META["cache"]: cache,
        artifacts.META["task_key"]: task.task_key,
        artifacts.META["task_run_name"]: run.name,
        artifacts.META["verified"]: verified,
    }
    if original is not None and original.task_run_id is not None:
        meta[artifacts.META["original_task_run"]] = str(original.task_run_id)
    artifacts.create_node_artifacts(
        attestation=attestation,
        rows=rows,
        meta=meta,
        task_run_id=run.id,
        flow_run_id=run.flow_run_id,
        key=key,
        link=link,
        description=(
            f"provgate node of {run.name}: record {attestation.log_index} ({cache}, {verified})"
        ),
    )
    emit_event(
        EVENT_RECORDED,
        resource={
            "prefect.resource.id": (
                f"provgate.attestation.{attestation.origin}.{attestation.log_index}"
            ),
            "prefect.resource.name": f"record {attestation.log_index}",
        },
        related=_related(run),
        payload={
            "log_index": attestation.log_index,
            "envelope_sha256": attestation.envelope_sha256,
            "cache": cache,
            "verified": verified,
            "task_key": task.task_key,
        },
    )
