"""provgate for MLflow: a gated training run whose datasets, models and records link both ways.

::

    import mlflow
    from prov_mlflow import training_run

    with training_run(["provgate://corpus/<commit>"]) as run:  # gate, then dataset inputs
        model = fit(...)
        mlflow.sklearn.log_model(model, name="model", registered_model_name="clf")
    # recorded: run.attestation (training record naming run.run_id and the model's digest)

    # later: provgate trace models:/clf/1   (reaches the ingest records)

- :func:`training_run` / :class:`TrainingRun`: the gate before the training code,
  the pinned snapshots as MLflow dataset inputs, the training record after it, and
  its log index and envelope digest as tags on the run and the models;
- :class:`SnapshotDataset` / :class:`SnapshotSource`: a pinned snapshot as an
  MLflow dataset (our digest, the snapshot URI as source);
- :func:`resolve`: the ``models:`` resolver behind ``provgate trace models:/...``.
"""

# MLflow loads its registered dataset sources (ours, prov_mlflow.dataset:SnapshotSource,
# among them) while mlflow.data is first imported. Importing it here, before our own
# modules, keeps prov_mlflow.dataset from being mid-import at that moment.
import mlflow.data  # noqa: F401

from prov_mlflow.dataset import SOURCE_TYPE, SnapshotDataset, SnapshotSource
from prov_mlflow.resolver import resolve
from prov_mlflow.run import TRACKER, LoggedModelDigest, TrainingRun, training_run

__version__ = "0.1.0"
__all__ = [
    "SOURCE_TYPE",
    "TRACKER",
    "LoggedModelDigest",
    "SnapshotDataset",
    "SnapshotSource",
    "TrainingRun",
    "__version__",
    "resolve",
    "training_run",
]
