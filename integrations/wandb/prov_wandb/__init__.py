"""provgate for Weights & Biases: a gated training run whose artifacts carry provgate's digests.

::

    import wandb
    from prov_wandb import training_run

    with wandb.init(project="support") as wb, training_run(["provgate://corpus/<c>"]) as run:
        path = fit(...)                       # the gate passed: train
        run.log_model(path, name="support-clf")
    # recorded: run.attestation (training record naming wb.id and the model's digest)

- :func:`training_run` / :class:`TrainingRun`: the gate before the training code, a
  dataset artifact per pinned snapshot as the run's input, the training record after
  it, and the model artifacts with provgate's digests and both records in their
  metadata.
"""

from prov_wandb.run import DATASET_PREFIX, KEY, TRACKER, StagedModel, TrainingRun, training_run

__version__ = "0.1.0"
__all__ = [
    "DATASET_PREFIX",
    "KEY",
    "TRACKER",
    "StagedModel",
    "TrainingRun",
    "__version__",
    "training_run",
]
