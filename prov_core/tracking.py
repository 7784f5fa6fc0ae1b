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

An integration's ``training_run`` context manager subclasses :class:`GatedRun`,
which runs these steps in order around the training code (the gate before it,
nothing recorded if it raises or logs no model, the record after it) and
leaves the tracker side to a few hooks.

A model in the tracker is traced by the digest of its stored bytes (a
resolver, :mod:`prov_core.resolvers`), never by the fields written back:
those are for people reading the tracker's UI.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Self

from prov_core.errors import FormatError, GateRefused, InputError, IntegrityError

if TYPE_CHECKING:
    from prov_core.gate import GateDecision
    from prov_core.home import Home
    from prov_core.policy import Policy
    from prov_core.step import Artifact, Attestation, CodeIdentity

__all__ = [
    "LINK_PREFIX",
    "GatedInputs",
    "GatedRun",
    "PinnedInput",
    "TrackerRun",
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


@dataclass(frozen=True)
class TrackerRun:
    """TrackerRun is what the tracker holds once the training code is done.

    ``models`` are the models it logged, as artifacts of the bytes the tracker
    stores; ``identity`` names the tracker and its run (``name``, ``run_id``,
    further JSON fields: the record's ``orchestrator``); ``parameters`` are the
    run's hyperparameters (JSON values).
    """

    models: Sequence[Artifact]
    identity: Mapping[str, Any]
    parameters: Mapping[str, Any]


class GatedRun(ABC):
    """GatedRun is the tracker-neutral part of a gated training run's context manager.

    Entering: the provgate home (``home``, else ``$PROVGATE_HOME``), then
    :meth:`_attach` (the tracker's run), then :func:`open_gate`. A refusal is
    reported (``_report("gate", "refused", decision record)``) and
    :class:`~prov_core.errors.GateRefused` raised before any training code runs;
    a pass goes to :meth:`_gate_passed` (the pinned inputs as the tracker's
    datasets).

    Leaving after the training code raised: ``_report("training",
    "not-recorded")`` (if even that fails it is logged: the training code's
    error is the one raised). Leaving normally: :meth:`_collect`; no model
    reports ``not-recorded`` and raises :class:`~prov_core.errors.InputError`
    ending with :attr:`LOG_MODEL_HINT`; otherwise :func:`record_training`
    (``attestation``), then :meth:`_link` writes the records back. Whatever
    happens after :meth:`_attach`, :meth:`_detach` is called once, with
    ``failed`` true unless the training was recorded and linked.
    """

    LOG_MODEL_HINT: ClassVar[str]
    """LOG_MODEL_HINT ends the error for a run that logged no model: how to log one."""

    def __init__(
        self,
        inputs: Sequence[str],
        *,
        home: Home | None = None,
        policy: Policy | None = None,
        name: str = "train",
    ) -> None:
        if isinstance(inputs, str):
            raise InputError("inputs must be a list of snapshot URIs, not a single one")
        self.inputs = list(inputs)
        self.name = name
        self._home = home
        self._policy = policy
        self._started_on: datetime | None = None
        self.gated: GatedInputs | None = None
        self.attestation: Attestation | None = None

    # -- the tracker side ----------------------------------------------------------------

    @abstractmethod
    def _attach(self) -> None:
        """Find (or start) the tracker's run; raise InputError when there is none to use."""

    @abstractmethod
    def _run_label(self) -> str:
        """The run as messages name it, e.g. ``MLflow run <id>``."""

    @abstractmethod
    def _report(
        self,
        step: Literal["gate", "training"],
        result: str,
        record: Attestation | None = None,
    ) -> None:
        """Show a step's result (and its record, if any) in the tracker's run."""

    @abstractmethod
    def _gate_passed(self, gated: GatedInputs) -> None:
        """Show the passed gate and its pinned inputs (the run's datasets) in the tracker."""

    @abstractmethod
    def _collect(self) -> TrackerRun:
        """The models the run logged, its identity and its parameters."""

    @abstractmethod
    def _link(self, training: Attestation, gate: Attestation) -> None:
        """Write both records back to the tracker (:func:`link_fields`); on failure raise
        a ProvgateError saying the training is recorded but not linked."""

    def _detach(self, *, failed: bool) -> None:  # noqa: B027 (a hook; nothing by default)
        """End what :meth:`_attach` started (nothing, unless it started a run)."""

    # -- the lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Self:
        from prov_core.home import open_home

        home = self._home = self._home or open_home()
        self._attach()
        try:
            try:
                gated = open_gate(self.inputs, home=home, policy=self._policy)
            except GateRefused as refused:
                self._report("gate", "refused", getattr(refused.decision, "vsa", None))
                raise
            self._gate_passed(gated)
        except BaseException:
            self._detach(failed=True)
            raise
        self.gated = gated
        self._started_on = datetime.now(UTC)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:  # the training code raised: its error is the one to see
            try:
                self._report("training", "not-recorded")
            except Exception as error:
                logging.getLogger(type(self).__module__).warning(
                    "provgate: could not mark %s as not recorded: %s", self._run_label(), error
                )
            finally:
                self._detach(failed=True)
            return
        try:
            self._record()
        except BaseException:
            self._detach(failed=True)
            raise
        self._detach(failed=False)

    def _record(self) -> None:
        home, gated = self._home, self.gated
        if gated is None or home is None:
            raise InputError("training_run was left without having been entered")
        run = self._collect()
        if not run.models:
            self._report("training", "not-recorded")
            raise InputError(
                f"{self._run_label()} logged no model, so there is nothing to record: "
                f"{self.LOG_MODEL_HINT}"
            )
        self.attestation = record_training(
            home,
            gated,
            run.models,
            tracker=run.identity,
            name=self.name,
            parameters=run.parameters,
            started_on=self._started_on,
        )
        self._link(self.attestation, gated.vsa)
