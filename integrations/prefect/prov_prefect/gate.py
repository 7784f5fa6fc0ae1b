"""The training gate in front of a ``@provenance(training=True)`` task's function.

:func:`check_gate` judges the snapshot URIs among the call's arguments
(``prov_core.gate.evaluate_gate``) and returns the recorded decision (a signed SLSA
VSA), which the training step then names as its first input. A refusal, a call
with no snapshot URI, or a gate that cannot run raises
:class:`~prov_prefect.errors.ProvenanceRefused` with every reason, after emitting
``provgate.gate.refused``: the task run fails and its function never runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from prefect.client.schemas.objects import TaskRun

from prov_prefect import events
from prov_prefect.config import ProvenanceConfig
from prov_prefect.errors import ProvenanceRefused

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.step import Attestation

__all__ = ["check_gate", "snapshot_uris"]


def snapshot_uris(value: Any) -> list[str]:
    """snapshot_uris are the ``provgate://`` / ``lakefs://`` strings in a value or a list."""
    if isinstance(value, str):
        return [value] if value.startswith(("provgate://", "lakefs://")) else []
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [u for v in value for u in snapshot_uris(v)]
    return []


def check_gate(
    cfg: ProvenanceConfig,
    name: str,
    run: TaskRun | None,
    arguments: Mapping[str, Any],
    names: Sequence[str] | None,
    *,
    home: Home | None = None,
) -> Attestation:
    """check_gate returns the gate's recorded decision to allow, or raises ProvenanceRefused.

    ``names`` are the parameters holding the snapshot URIs (None: every parameter).
    ``run`` is None for a call outside its own task run (judged all the same);
    ``home`` is the one the try already opened (None: open the configured one).
    """
    from prov_core.gate import evaluate_gate

    wanted = names if names is not None else list(arguments)
    uris = [u for n in wanted for u in snapshot_uris(arguments.get(n))]
    if not uris:
        _refused(run, name, ["no snapshot URI among the task's arguments"], None, uris)
    try:
        if home is None:
            home = cfg.open_home()
        decision = evaluate_gate(uris, home=home, policy=cfg.load_policy())
    except Exception as exc:  # a malformed URI or policy, an unusable home: refuse, naming it
        _refused(run, name, [f"{type(exc).__name__}: {exc}"], None, uris)
    vsa = decision.vsa
    if not decision.allowed or vsa is None:
        reasons = [str(r) for r in decision.reasons] or ["the decision was not recorded"]
        _refused(run, name, reasons, None if vsa is None else vsa.log_index, uris)
    return vsa


def _refused(
    run: TaskRun | None,
    name: str,
    reasons: list[str],
    vsa_log_index: int | None,
    uris: list[str],
) -> NoReturn:
    events.emit(
        events.EVENT_REFUSED,
        resource={"prefect.resource.id": f"provgate.gate.{name}", "prefect.resource.name": name},
        run=run,
        payload={"reasons": reasons, "inputs": uris, "vsa_log_index": vsa_log_index},
    )
    raise ProvenanceRefused(name, reasons, vsa_log_index=vsa_log_index, inputs=uris)
