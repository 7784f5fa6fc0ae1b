"""A gated W&B training run: dataset artifacts for the pinned snapshots, the model artifact
and the training record, linked by provgate's digests.

::

    with wandb.init(project="support") as wb, training_run(["provgate://corpus/<c>"]) as run:
        model_path = fit(...)
        run.log_model(model_path, name="support-clf")

On entering, in ``run=`` or the active W&B run (``wandb.run``):

1. the training gate judges the inputs (:func:`prov_core.tracking.open_gate`); a
   refusal is written to the run's summary (``provgate.gate``: ``result``
   ``refused`` and the refusal's log index) and raises
   :class:`~prov_core.errors.GateRefused` with every reason, before any training
   code runs;
2. each pinned snapshot becomes an input artifact of the run, type ``dataset``,
   named ``provgate-snapshot-REPO``, holding one reference (``snapshot`` ->
   the pinned URI, not uploaded) and the metadata ``{"provgate": {"uri",
   "repository", "commit", "manifest_sha256", "record", "record_sha256"}}``;
3. the run's config gets ``provgate.inputs`` (the pinned URIs) and its summary
   ``provgate.gate`` (``result`` ``passed``, ``log_index``, ``envelope_sha256``,
   ``uri``).

:meth:`TrainingRun.log_model` digests a model file or directory and stages a
W&B artifact of type ``model`` with it. On leaving without an exception:

4. the training step is recorded (:func:`prov_core.tracking.record_training`):
   the gate decision as input, each model as an output by provgate's digest,
   the run as ``{"name": "wandb", "run_id", "project", "entity", "run_name",
   "models": [{"name", "wandb_digest"}]}`` (``wandb_digest`` is the digest W&B
   gives the model artifact) and the run's config as parameters;
5. each model artifact gets the metadata ``{"provgate": {"sha256", "blake3",
   "training": {...}, "gate": {...}}}`` (log index, envelope SHA-256, URI of
   each record) and is logged as an output of the run; the summary gets
   ``provgate.training``.

If the training code raises or logs no model, nothing is recorded and the
summary says ``provgate.training.result`` ``not-recorded``.

Offline runs (``WANDB_MODE=offline``) write all of this to the run's
transaction log for a later ``wandb sync``. W&B refuses ``use_artifact`` offline,
so there the dataset artifacts are declared as inputs the way ``use_artifact``
declares a new artifact online: logged with ``use_after_commit`` set, which the
sync turns into the use (``Run._log_artifact``, W&B's own path; the tests read
the flag back from the transaction log).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prov_core.errors import InputError, ProvgateError
from prov_core.tracking import GatedRun, TrackerRun

if TYPE_CHECKING:
    import wandb

    from prov_core.digest import TreeDigest
    from prov_core.home import Home
    from prov_core.policy import Policy
    from prov_core.step import Attestation
    from prov_core.tracking import GatedInputs, PinnedInput

__all__ = ["DATASET_PREFIX", "KEY", "TRACKER", "StagedModel", "TrainingRun", "training_run"]

TRACKER = "wandb"
"""TRACKER is the ``orchestrator.name`` of the training records this module makes."""
DATASET_PREFIX = "provgate-snapshot-"
"""DATASET_PREFIX starts the name of a snapshot's dataset artifact (then the repository)."""
KEY = "provgate"
"""KEY is where provgate writes in a run's config and summary and an artifact's metadata."""


@dataclass(frozen=True)
class StagedModel:
    """StagedModel is a model :meth:`TrainingRun.log_model` digested, and its W&B artifact."""

    name: str
    path: Path
    tree: TreeDigest
    artifact: wandb.Artifact


class TrainingRun(GatedRun):
    """TrainingRun is the context manager :func:`training_run` returns (module docstring).

    After entering: ``run`` (the W&B run) and ``gated``. After leaving:
    ``attestation`` (the training record) and ``models``. The order of the
    steps is :class:`prov_core.tracking.GatedRun`'s; this class is the W&B side.
    """

    LOG_MODEL_HINT = "call run.log_model(path) inside the training_run block"

    def __init__(
        self,
        inputs: Sequence[str],
        *,
        run: wandb.Run | None = None,
        home: Home | None = None,
        policy: Policy | None = None,
        name: str = "train",
    ) -> None:
        super().__init__(inputs, home=home, policy=policy, name=name)
        self.run: Any = run
        self.models: list[StagedModel] = []

    # -- entering: the run, the gate and the dataset artifacts ------------------------------

    def _attach(self) -> None:
        import wandb

        if self.run is None:
            self.run = wandb.run
        if self.run is None:
            raise InputError(
                "no active W&B run: call wandb.init(...) before training_run, or pass run="
            )

    def _run_label(self) -> str:
        return f"W&B run {self.run.id}"

    def _report(self, step: str, result: str, record: Attestation | None = None) -> None:
        self._summary(step, {"result": result, **_record_fields(record)})

    def _gate_passed(self, gated: GatedInputs) -> None:
        self.run.config.update({KEY: {"inputs": [p.uri for p in gated.inputs]}})
        for pinned in gated.inputs:
            _use(self.run, _dataset_artifact(pinned))
        self._report("gate", "passed", gated.vsa)

    # -- during: the models ---------------------------------------------------------------

    def log_model(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> wandb.Artifact:
        """log_model digests the model file or directory at ``path`` and stages its artifact.

        ``name`` is the W&B artifact name (default: the file or directory name);
        ``metadata`` goes into the artifact beside provgate's. The artifact is
        logged when the block ends, after the training record it names;
        returns the (draft) artifact.
        """
        import wandb

        from prov_core.digest import digest_path

        if self.gated is None:
            raise InputError("log_model is called inside the training_run block")
        p = Path(path)
        if KEY in (metadata or {}):
            raise InputError(f"artifact metadata key {KEY!r} is provgate's; choose another key")
        tree = digest_path(p, reuse_written=True)  # InputError: a missing or unreadable path
        artifact_name = name or p.name
        if any(m.name == artifact_name for m in self.models):
            raise InputError(f"a model named {artifact_name!r} is already logged in this run")
        try:
            artifact = wandb.Artifact(artifact_name, type="model", metadata=dict(metadata or {}))
        except ValueError as exc:  # W&B's own name and metadata rules
            raise InputError(f"model artifact {artifact_name!r}: {exc}") from exc
        if tree.is_dir:
            artifact.add_dir(str(p))
        else:
            artifact.add_file(str(p))
        self.models.append(StagedModel(artifact_name, p, tree, artifact))
        return artifact

    # -- leaving: the training record, then the model artifacts -----------------------------

    def _collect(self) -> TrackerRun:
        from prov_core.step import Artifact

        run = self.run
        identity = {
            "name": TRACKER,
            "run_id": run.id,
            "project": run.project,
            "entity": run.entity or None,
            "run_name": run.name,
            "models": [{"name": m.name, "wandb_digest": m.artifact.digest} for m in self.models],
        }
        outputs = [
            Artifact(name=m.name, sha256=m.tree.sha256_subject, blake3=m.tree.blake3)
            for m in self.models
        ]
        config = {k: v for k, v in dict(run.config).items() if k != KEY}
        return TrackerRun(outputs, identity, _json(config))

    def _link(self, training: Attestation, gate: Attestation) -> None:
        links = {"training": _record_fields(training), "gate": _record_fields(gate)}
        try:
            for m in self.models:
                metadata = dict(m.artifact.metadata)
                metadata[KEY] = {"sha256": m.tree.sha256_subject, "blake3": m.tree.blake3, **links}
                m.artifact.metadata = metadata
                self.run.log_artifact(m.artifact)
            self._report("training", "recorded", training)
        except Exception as exc:
            raise ProvgateError(
                f"the training of W&B run {self.run.id} is recorded at log index "
                f"{training.log_index}, but W&B could not take the model artifacts: {exc}"
            ) from exc

    def _summary(self, key: str, value: Mapping[str, Any]) -> None:
        current = self.run.summary.get(KEY)
        merged = dict(current) if isinstance(current, Mapping) else {}
        merged[key] = dict(value)
        self.run.summary[KEY] = merged


def training_run(
    inputs: Sequence[str],
    *,
    run: wandb.Run | None = None,
    home: Home | None = None,
    policy: Policy | None = None,
    name: str = "train",
) -> TrainingRun:
    """training_run gates a W&B run on ``inputs`` and records its training (module doc).

    ``inputs`` are snapshot URIs (pinned: ``provgate://REPO/COMMIT[/PATH]``);
    ``run`` defaults to ``wandb.run``; ``home`` to ``$PROVGATE_HOME``;
    ``policy`` to the gate's default; ``name`` is the training step's name.
    """
    return TrainingRun(inputs, run=run, home=home, policy=policy, name=name)


def _record_fields(att: Attestation | None) -> dict[str, Any]:
    if att is None:
        return {}
    return {"log_index": att.log_index, "envelope_sha256": att.envelope_sha256, "uri": att.uri}


def _dataset_artifact(pinned: PinnedInput) -> wandb.Artifact:
    import wandb

    artifact = wandb.Artifact(
        f"{DATASET_PREFIX}{pinned.repository}",
        type="dataset",
        description=f"provgate snapshot {pinned.uri}",
        metadata={KEY: pinned.to_dict()},
    )
    artifact.add_reference(pinned.uri, name="snapshot", checksum=False)
    return artifact


def _use(run: Any, artifact: wandb.Artifact) -> None:
    """_use declares ``artifact`` an input of ``run`` (module docstring: offline runs)."""
    if not run.settings._offline:
        run.use_artifact(artifact)
        return
    log_artifact = getattr(run, "_log_artifact", None)
    if log_artifact is None:
        raise ProvgateError(
            "this wandb version cannot declare an input artifact in an offline run; "
            "install a wandb release this integration supports (see provgate-wandb's "
            "dependencies) or run online"
        )
    log_artifact(artifact, is_user_created=True, use_after_commit=True)


def _json(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run's config as recorded parameters: JSON values, anything else as its text."""
    from prov_core.canonical import canonical_json

    out: dict[str, Any] = {}
    for key, value in config.items():
        try:
            canonical_json(value)
            out[str(key)] = value
        except ProvgateError:
            out[str(key)] = str(value)
    return out
