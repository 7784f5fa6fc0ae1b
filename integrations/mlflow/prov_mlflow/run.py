"""A gated MLflow training run: the gate before the training code, the record after it.

::

    with training_run(["provgate://corpus/<commit>"]) as run:   # the one added line
        model = fit(...)
        mlflow.sklearn.log_model(model, name="model", registered_model_name="clf")

On entering, in the active MLflow run (one is started if none is active):

1. the training gate judges the inputs (:func:`prov_core.tracking.open_gate`);
   a refusal tags the run ``provgate.gate=refused`` with the refusal's log
   index and raises :class:`~prov_core.errors.GateRefused` with every reason,
   before any training code runs;
2. each pinned input is logged with ``mlflow.log_input`` as a
   :class:`~prov_mlflow.dataset.SnapshotDataset` (context ``training``): our
   digest as the dataset digest, the snapshot URI as its source;
3. the run is tagged ``provgate.gate=passed`` and ``provgate.gate.*``.

On leaving without an exception:

4. every model the run logged (MLflow ``LoggedModel`` whose source run is
   this run) is downloaded as stored and digested;
5. the training step is recorded (:func:`prov_core.tracking.record_training`):
   the gate decision as input, the models as outputs, the run as
   ``{"name": "mlflow", "run_id", "experiment_id", "run_name", "models":
   [{"model_id", "name"}]}`` and the run's params as parameters;
6. the run, each model, and each registered version of those models get the
   tags ``provgate.training.log_index`` / ``.envelope_sha256`` / ``.uri``
   (and the models ``provgate.model.sha256`` / ``.blake3``); the run is
   tagged ``provgate.training=recorded``.

If the training code raises, nothing is recorded and the run is tagged
``provgate.training=not-recorded``. A run this context started is ended
(``FINISHED``, or ``FAILED`` on any error); a run that was already active is
left to its owner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prov_core.errors import InputError, ProvgateError
from prov_core.tracking import LINK_PREFIX, GatedRun, TrackerRun, link_fields

if TYPE_CHECKING:
    from mlflow.entities import LoggedModel

    from prov_core.home import Home
    from prov_core.policy import Policy
    from prov_core.step import Artifact, Attestation
    from prov_core.tracking import GatedInputs

__all__ = ["LoggedModelDigest", "TrainingRun", "training_run"]

TRACKER = "mlflow"
"""TRACKER is the ``orchestrator.name`` of the training records this module makes."""

_TRAINING = f"{LINK_PREFIX}training"


@dataclass(frozen=True)
class LoggedModelDigest:
    """LoggedModelDigest is one model the run logged and the digest of its stored files."""

    model_id: str
    name: str
    artifact: Artifact

    @property
    def uri(self) -> str:
        """uri is the model's MLflow URI, ``models:/<model_id>``."""
        return f"models:/{self.model_id}"


class TrainingRun(GatedRun):
    """TrainingRun is the context manager :func:`training_run` returns (module docstring).

    After entering: ``run_id`` and ``gated`` (the decision and the pinned
    inputs). After leaving: ``attestation`` (the training record) and
    ``models``. The order of the steps is :class:`prov_core.tracking.GatedRun`'s;
    this class is the MLflow side.
    """

    LOG_MODEL_HINT = (
        "log the trained model inside the training_run block, e.g. "
        "mlflow.sklearn.log_model(model, name='model')"
    )

    def __init__(
        self,
        inputs: Sequence[str],
        *,
        home: Home | None = None,
        policy: Policy | None = None,
        name: str = "train",
        **start_run: Any,
    ) -> None:
        super().__init__(inputs, home=home, policy=policy, name=name)
        self._start_run = start_run
        self._started_here = False
        self._client: Any = None
        self.run_id: str = ""
        self.models: tuple[LoggedModelDigest, ...] = ()

    # -- entering: the run, the gate and the dataset inputs -----------------------------

    def _attach(self) -> None:
        import mlflow

        active = mlflow.active_run()
        if active is None:
            active = mlflow.start_run(**self._start_run)
            self._started_here = True
        elif self._start_run:
            raise InputError(
                f"an MLflow run ({active.info.run_id}) is already active: start_run arguments "
                f"({', '.join(sorted(self._start_run))}) apply only when training_run starts one"
            )
        self.run_id = active.info.run_id

    def _run_label(self) -> str:
        return f"MLflow run {self.run_id}"

    def _report(self, step: str, result: str, record: Attestation | None = None) -> None:
        links = link_fields(gate=record) if step == "gate" else link_fields(training=record)
        _tag_run({f"{LINK_PREFIX}{step}": result, **links})

    def _gate_passed(self, gated: GatedInputs) -> None:
        import mlflow

        from prov_mlflow.dataset import SnapshotDataset

        self._report("gate", "passed", gated.vsa)
        for pinned in gated.inputs:
            mlflow.log_input(SnapshotDataset(pinned), context="training")

    # -- leaving: the models, the training record, the tags -----------------------------

    def _collect(self) -> TrackerRun:
        import mlflow
        from mlflow.exceptions import MlflowException

        from prov_mlflow._models import mapped

        client = self._client = mlflow.MlflowClient()
        try:
            run = client.get_run(self.run_id)
            self.models = tuple(_digest(m) for m in _logged_models(client, run))
        except MlflowException as exc:
            raise mapped(exc, f"MLflow run {self.run_id}") from exc
        identity = {
            "name": TRACKER,
            "run_id": self.run_id,
            "experiment_id": run.info.experiment_id,
            "run_name": run.info.run_name,
            "models": [{"model_id": m.model_id, "name": m.name} for m in self.models],
        }
        return TrackerRun([m.artifact for m in self.models], identity, dict(run.data.params))

    def _link(self, training: Attestation, gate: Attestation) -> None:
        """Step 6: the record's log index and envelope on the run, the models and versions."""
        from mlflow.exceptions import MlflowException

        client = self._client
        fields = link_fields(training=training, gate=gate)
        try:
            _tag_run({_TRAINING: "recorded", **fields})
            by_id = {m.model_id: m for m in self.models}
            for m in self.models:
                client.set_logged_model_tags(m.model_id, {**fields, **_model_fields(m)})
            for version in client.search_model_versions(f"run_id = '{self.run_id}'"):
                model = by_id.get(_version_model_id(version))
                if model is None:
                    continue
                for key, value in {**fields, **_model_fields(model)}.items():
                    client.set_model_version_tag(version.name, version.version, key, value)
        except MlflowException as exc:
            raise ProvgateError(
                f"the training of MLflow run {self.run_id} is recorded at log index "
                f"{training.log_index}, but MLflow could not be tagged with it: {exc}"
            ) from exc

    def _detach(self, *, failed: bool) -> None:
        if self._started_here:
            import mlflow

            self._started_here = False
            mlflow.end_run(status="FAILED" if failed else "FINISHED")


def training_run(
    inputs: Sequence[str],
    *,
    home: Home | None = None,
    policy: Policy | None = None,
    name: str = "train",
    **start_run: Any,
) -> TrainingRun:
    """training_run gates an MLflow run on ``inputs`` and records its training (module doc).

    ``inputs`` are snapshot URIs (pinned: ``provgate://REPO/COMMIT[/PATH]``);
    ``home`` defaults to ``$PROVGATE_HOME``; ``policy`` to the gate's default;
    ``name`` is the training step's name in the record. Further keyword
    arguments go to ``mlflow.start_run`` when no run is active.
    """
    return TrainingRun(inputs, home=home, policy=policy, name=name, **start_run)


def _tag_run(tags: Mapping[str, str]) -> None:
    import mlflow

    mlflow.set_tags(dict(tags))


def _logged_models(client: Any, run: Any) -> list[LoggedModel]:
    """Every finalized model whose source run is ``run``, oldest first."""
    from mlflow.entities import LoggedModelStatus

    found: list[LoggedModel] = []
    token: str | None = None
    while True:
        page = client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
            page_token=token,
        )
        found.extend(page)
        token = page.token
        if not token:
            break
    pending = [m.model_id for m in found if m.status != LoggedModelStatus.READY]
    if pending:
        raise InputError(
            f"MLflow run {run.info.run_id}: model(s) {', '.join(pending)} are not finalized; "
            "finish logging them (mlflow.finalize_logged_model) before the block ends"
        )
    return sorted(found, key=lambda m: (m.creation_timestamp, m.model_id))


def _digest(model: LoggedModel) -> LoggedModelDigest:
    from prov_core.step import Artifact
    from prov_mlflow._models import model_digest

    uri = f"models:/{model.model_id}"
    tree = model_digest(uri)
    artifact = Artifact(name=model.name, sha256=tree.sha256_subject, blake3=tree.blake3, uri=uri)
    return LoggedModelDigest(model.model_id, model.name, artifact)


def _model_fields(model: LoggedModelDigest) -> dict[str, str]:
    return {
        f"{LINK_PREFIX}model.sha256": model.artifact.sha256,
        f"{LINK_PREFIX}model.blake3": model.artifact.blake3 or "",
    }


def _version_model_id(version: Any) -> str:
    """The logged model a registry version holds: its ``model_id``, which registries may
    leave empty, else the model id of a ``models:/<model_id>`` source."""
    model_id = getattr(version, "model_id", None)
    if model_id:
        return str(model_id)
    source = str(getattr(version, "source", "") or "")
    return source.removeprefix("models:/") if source.startswith("models:/m-") else ""
