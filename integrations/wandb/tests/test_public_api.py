"""prov_wandb's public surface."""

import prov_wandb


def test_all_is_the_public_surface() -> None:
    assert set(prov_wandb.__all__) == {
        "DATASET_PREFIX",
        "KEY",
        "TRACKER",
        "StagedModel",
        "TrainingRun",
        "__version__",
        "training_run",
    }
    for name in prov_wandb.__all__:
        assert getattr(prov_wandb, name) is not None
