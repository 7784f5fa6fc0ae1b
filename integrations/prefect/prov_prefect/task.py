"""provenance: make every try of a Prefect task run a signed node, recorded inside the run.

The one-line change per task is to put ``@provenance`` above ``@task`` (or call
``provenance(my_task)``). It returns ``my_task.with_options(...)`` whose function is
wrapped, plus an ``on_completion`` hook for cached runs. Each time Prefect calls the
function (the first try and every retry), the wrapper, inside the task run:

1. finds the try's inputs: the nodes of the upstream task runs its arguments came from
   (read back from their table artifacts), ``wait_for`` runs, and every
   :class:`~prov_core.step.Attestation` passed as an argument (or in an argument's
   ``.attestation``);
2. with ``training=True``, runs the training gate (:mod:`prov_prefect.gate`) first: a
   refusal fails the try with every reason, and the function does not run;
3. calls the function, then records the try before returning its value to Prefect
   (:mod:`prov_prefect.tries`): the value's own attestation (``ingest(...)``,
   ``snapshot(...)``), or a step whose outputs are what it returned; if the function
   raised, a step recording the failed try, and the error is raised on. A retry's
   record is linked to the try before it (a signed ``retry-of`` edge);
4. re-verifies the node and shows it: table and link artifacts, a
   ``provgate.attestation.recorded`` event, and the asset metadata of a ``@materialize``
   task (written before Prefect emits the asset's materialization event).

Fail closed: if a try cannot be recorded or shown (the ledger unreachable, the Prefect
API failing), the wrapper raises :class:`~prov_prefect.errors.ProvenanceError` naming
the task run and the cause, so the try fails (and is retried if the task has retries
left) instead of completing without a node.

A *cached* run does not call the function and records nothing: the hook shows the node
of the run that computed the cached result, found by the result's storage key
(:func:`~prov_prefect.show.show_cached`). An error there is only logged by Prefect; no
record is at stake.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext

from prov_prefect import show, tries
from prov_prefect.config import ProvenanceConfig
from prov_prefect.errors import ProvenanceError
from prov_prefect.events import EVENT_RECORDED, EVENT_REFUSED
from prov_prefect.gate import check_gate

__all__ = ["EVENT_RECORDED", "EVENT_REFUSED", "provenance"]

T = TypeVar("T", bound=Task[Any, Any])

logger = logging.getLogger("prov_prefect")


def provenance(
    task: T | None = None,
    *,
    config: ProvenanceConfig | None = None,
    training: bool = False,
    gate_inputs: Sequence[str] | None = None,
) -> Any:
    """Return ``task`` recording each try (see the module docstring); usable as a decorator.

    ``config`` says where to record (default :class:`ProvenanceConfig` ()); ``training``
    gates the task; ``gate_inputs`` names the parameters holding its snapshot URIs.
    """

    def decorate(t: T) -> T:
        if not isinstance(t, Task):
            raise TypeError(f"@provenance goes above @task; got {type(t).__name__}")
        if inspect.isgeneratorfunction(t.fn) or inspect.isasyncgenfunction(t.fn):
            raise TypeError(
                f"@provenance cannot record generator task {t.name!r}: its value is not "
                "known when the function returns; return the value instead of yielding it"
            )
        cfg = config or ProvenanceConfig()
        hook = functools.partial(_on_completion, cfg)
        hook.__name__ = "provgate"  # type: ignore[attr-defined]  # Prefect logs hook names
        new = t.with_options(on_completion=[*t.on_completion_hooks, hook])
        new.fn = _recording(t.fn, t.name, cfg, training, gate_inputs)
        return new  # type: ignore[return-value]

    return decorate if task is None else decorate(task)


# ---------------------------------------------------------------------------
# The wrapper: every try, inside the task run


class _Recording:
    """_Recording holds what a wrapper needs; ``begin``, ``done`` and ``failed`` a try."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        cfg: ProvenanceConfig,
        training: bool,
        gate_inputs: Sequence[str] | None,
    ) -> None:
        self.fn = fn
        self.name = name
        self.cfg = cfg
        self.training = training
        self.gate_inputs = gate_inputs
        self.signature = inspect.signature(fn)
        self.wrapper: Callable[..., Any] | None = None

    def begin(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tries.TaskTry | None:
        """The try of the task run calling this function (None outside one: not recorded).

        A training function is gated either way: called directly (``task.fn(...)``)
        or from inside another task it is not recorded, but it runs only if the
        gate allows its inputs.
        """
        ctx = TaskRunContext.get()
        arguments = dict(self.signature.bind(*args, **kwargs).arguments)
        if ctx is None or ctx.task_run is None or ctx.task.fn is not self.wrapper:
            if self.training:
                check_gate(self.cfg, self.name, None, arguments, self.gate_inputs)
            return None  # called directly (task.fn(...)), or from inside another task
        run = ctx.task_run
        try:
            t = tries.begin_try(self.cfg, ctx.task, run, self.fn, arguments, training=self.training)
        except Exception as exc:
            raise self._error(run, "could not be recorded", exc) from exc
        if self.training:
            t.vsa = check_gate(self.cfg, self.name, run, arguments, self.gate_inputs, home=t.home)
        return t

    def done(self, t: tries.TaskTry, value: Any) -> Any:
        """Record a try whose function returned ``value``; return the value."""
        try:
            if isinstance(value, State) and value.is_failed():  # returned, not raised
                tries.record_failed(t, value.message or "returned a Failed state")
            else:
                tries.record_completed(t, value.data if isinstance(value, State) else value)
        except Exception as exc:
            raise self._error(t.run, "could not be recorded", exc) from exc
        return value

    def failed(self, t: tries.TaskTry, error: Exception) -> None:
        """Record a try whose function raised ``error``; ProvenanceError if that failed."""
        try:
            tries.record_failed(t, error)
        except Exception as exc:
            raise self._error(
                t.run, f"failed ({type(error).__name__}: {error}) and could not be recorded", exc
            ) from exc

    def _error(self, run: TaskRun, what: str, exc: Exception) -> ProvenanceError:
        return ProvenanceError(
            f"provgate: task run {run.name!r} (try {run.run_count}) {what}: "
            f"{type(exc).__name__}: {exc}"
        )


def _recording(
    fn: Callable[..., Any],
    name: str,
    cfg: ProvenanceConfig,
    training: bool,
    gate_inputs: Sequence[str] | None,
) -> Callable[..., Any]:
    """_recording wraps the task's function so that each call inside a task run is recorded."""
    rec = _Recording(fn, name, cfg, training, gate_inputs)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def arecorded(*args: Any, **kwargs: Any) -> Any:
            t = rec.begin(args, kwargs)
            if t is None:
                return await fn(*args, **kwargs)
            try:
                value = await fn(*args, **kwargs)
            except Exception as exc:
                rec.failed(t, exc)  # raises ProvenanceError if the try could not be recorded
                raise
            return rec.done(t, value)

        rec.wrapper = arecorded
        return arecorded

    @functools.wraps(fn)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        t = rec.begin(args, kwargs)
        if t is None:
            return fn(*args, **kwargs)
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:
            rec.failed(t, exc)  # raises ProvenanceError if the try could not be recorded
            raise
        return rec.done(t, value)

    rec.wrapper = recorded
    return recorded


# ---------------------------------------------------------------------------
# The hook: cached runs


def _on_completion(cfg: ProvenanceConfig, task: Task[Any, Any], run: TaskRun, state: State) -> None:
    if state.name != "Cached":
        return  # the wrapper recorded the try that completed
    try:
        show.show_cached(cfg, task, run, state)
    except Exception:
        logger.exception("provgate could not show cached task run %s (%s)", run.name, task.task_key)
        raise
