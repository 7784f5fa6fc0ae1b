"""What the experiment-tracker integrations share: a gated training run and its record.

An experiment tracker (MLflow, Weights & Biases) keeps runs, the datasets a
run used and the models it logged. Its integration (``prov_mlflow``,
``prov_wandb``) links them to provgate's records in three steps; the tracker
side is the integration's, everything else is here:

1. :func:`open_gate` runs the training gate on the snapshot URIs the training
   code declares (:func:`prov_core.gate.require`: the decision is recorded
   either way; a refusal raises :class:`~prov_core.errors.GateRefused`) and
   describes each pinned input from the signed decision itself
   (:class:`PinnedInput`): what the tracker shows as the run's datasets.
2. The training code runs and logs its models to the tracker.
3. :func:`record_training` records the training step: SLSA Provenance with
   ``buildType`` :data:`~prov_core.step.TRAINING_BUILD_TYPE`, the gate's
   decision as its input (and through it the snapshot, step and ingest
   records), each model as an output named by the digest of its bytes *as
   the tracker stores them*, and the tracker's run in
   ``internalParameters.orchestrator``::

       {"name": "mlflow", "run_id": "<the tracker's run id>", ...}

   The run id is also ``runDetails.metadata.invocationId``. The integration
   then writes :func:`link_fields` (the training record's log index and
   envelope SHA-256, and the gate decision's) back to the tracker.

A model in the tracker is traced by the digest of its stored bytes (a
resolver, :mod:`prov_core.resolvers`), never by the fields written back:
those are for people reading the tracker's UI.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from prov_core.errors import FormatError, InputError, IntegrityError

if TYPE_CHECKING:
    from prov_core.gate import GateDecision
    from prov_core.home import Home
    from prov_core.policy import Policy
    from prov_core.step import Artifact, Attestation, CodeIdentity

__all__ = [
    "LINK_PREFIX",
    "GatedInputs",
    "PinnedInput",
    "link_fields",
    "open_gate",
    "record_training",
]

LINK_PREFIX: Final = "provgate."
"""LINK_PREFIX starts every field :func:`link_fields` returns (tracker tags and metadata)."""


@dataclass(frozen=True)
class PinnedInput:
    """PinnedInput is one snapshot a gated run trains on, as its signed gate decision names it.

    ``uri`` is pinned (``SCHEME://REPO/COMMIT[/PATH]``); ``manifest_sha256`` is
    the snapshot record's subject (SHA-256 of the snapshot's manifest);
    ``record`` and ``record_sha256`` are that record's log index and envelope
    SHA-256.
    """

    uri: str
    repository: str
    commit: str
    manifest_sha256: str
    record: int
    record_sha256: str

    def to_dict(self) -> dict[str, Any]:
        """``{"uri", "repository", "commit", "manifest_sha256", "record", "record_sha256"}``."""
        return {
            "uri": self.uri,
            "repository": self.repository,
            "commit": self.commit,
            "manifest_sha256": self.manifest_sha256,
            "record": self.record,
            "record_sha256": self.record_sha256,
        }


@dataclass(frozen=True)
class GatedInputs:
    """GatedInputs is a passed gate decision, its record (``vsa``) and the pinned inputs
    it judged, in order."""

    decision: GateDecision
    vsa: Attestation
    inputs: tuple[PinnedInput, ...]


def open_gate(inputs: Sequence[str], *, home: Home, policy: Policy | None = None) -> GatedInputs:
    """open_gate judges ``inputs`` (snapshot URIs) and describes them, or raises GateRefused.

    The decision is recorded in ``home``'s ledger whatever it is. The pinned
    inputs are read back from the recorded decision (its subjects,
    ``provgateInputs`` and ``inputAttestations``), after checking that the
    ledger entry is the one just appended.
    """
    from prov_core.gate import require

    decision = require(inputs, home=home, policy=policy)
    vsa = decision.vsa
    if vsa is None:  # pragma: no cover - require never allows an unrecorded decision
        raise IntegrityError("the gate allowed without recording its decision")
    return GatedInputs(decision, vsa, _pinned_inputs(home, vsa))


def _pinned_inputs(home: Home, vsa: Attestation) -> tuple[PinnedInput, ...]:
    from prov_core.records import decode_entry
    from prov_core.snapshots.base import SnapshotURI

    with home.open_ledger() as ledger:
        leaf = ledger.entry(vsa.log_index)
    if hashlib.sha256(leaf).hexdigest() != vsa.envelope_sha256:
        raise IntegrityError(
            f"log entry {vsa.log_index} is not the gate decision just recorded "
            f"(envelope sha256 {vsa.envelope_sha256})"
        )
    _, statement = decode_entry(leaf)
    try:
        predicate = statement["predicate"]
        shas = {
            a["annotations"]["logIndex"]: a["digest"]["sha256"]
            for a in predicate["inputAttestations"]
        }
        pinned = []
        for subject, judged in zip(statement["subject"], predicate["provgateInputs"], strict=True):
            record = judged["snapshotRecord"]
            uri = SnapshotURI.parse(subject["name"])
            pinned.append(
                PinnedInput(
                    uri=subject["name"],
                    repository=uri.repository,
                    commit=judged["commit"],
                    manifest_sha256=subject["digest"]["sha256"],
                    record=record,
                    record_sha256=shas[record],
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(
            f"gate decision {vsa.log_index} does not describe its inputs as expected: {exc!r}"
        ) from exc
    return tuple(pinned)


def record_training(
    home: Home,
    gated: GatedInputs,
    models: Sequence[Artifact],
    *,
    tracker: Mapping[str, Any],
    name: str = "train",
    parameters: Mapping[str, Any] | None = None,
    code: CodeIdentity | None = None,
    started_on: datetime | None = None,
) -> Attestation:
    """record_training signs the training step of a gated tracker run (module docstring, 3.).

    ``models`` are the models as the tracker stores them (at least one);
    ``tracker`` names the tracker and its run (``name`` and ``run_id`` are
    required, further JSON fields are the integration's). ``parameters``
    (the run's hyperparameters) are recorded with the pinned inputs' URIs
    under ``inputs``.
    """
    from prov_core.step import TRAINING_BUILD_TYPE, Recorder, record_step

    if not models:
        raise InputError(f"training run {name!r}: no model to record; log the trained model first")
    missing = [k for k in ("name", "run_id") if not tracker.get(k)]
    if missing:
        raise InputError(f"training run {name!r}: the tracker identity lacks {', '.join(missing)}")
    recorded_parameters = {**(parameters or {}), "inputs": [p.uri for p in gated.inputs]}
    with Recorder.from_home(home) as recorder:
        return record_step(
            recorder,
            name,
            inputs=[gated.vsa],
            outputs=list(models),
            code=code,
            parameters=recorded_parameters,
            orchestrator=dict(tracker),
            started_on=started_on,
            build_type=TRAINING_BUILD_TYPE,
        )


def link_fields(
    *, training: Attestation | None = None, gate: Attestation | None = None
) -> dict[str, str]:
    """link_fields are the fields a tracker run (or model) gets back: tags, metadata.

    ``provgate.training.log_index``, ``.envelope_sha256`` and ``.uri`` for the
    training record; ``provgate.gate.log_index``, ``.envelope_sha256`` and
    ``.uri`` for the gate decision. Values are strings (MLflow tags are).
    """
    out: dict[str, str] = {}
    for kind, att in (("training", training), ("gate", gate)):
        if att is not None:
            out[f"{LINK_PREFIX}{kind}.log_index"] = str(att.log_index)
            out[f"{LINK_PREFIX}{kind}.envelope_sha256"] = att.envelope_sha256
            out[f"{LINK_PREFIX}{kind}.uri"] = att.uri
    return out
