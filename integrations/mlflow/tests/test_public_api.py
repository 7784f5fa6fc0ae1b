"""prov_mlflow's public surface, and the session's lean environment."""

from importlib.metadata import PackageNotFoundError, distribution, version

import prov_mlflow
import pytest


def test_all_is_the_public_surface() -> None:
    assert set(prov_mlflow.__all__) == {
        "SOURCE_TYPE",
        "TRACKER",
        "LoggedModelDigest",
        "SnapshotDataset",
        "SnapshotSource",
        "TrainingRun",
        "__version__",
        "resolve",
        "training_run",
    }
    for name in prov_mlflow.__all__:
        assert getattr(prov_mlflow, name) is not None


def test_the_integration_needs_the_mlflow_client_only() -> None:
    assert version("mlflow-skinny").startswith("3.")
    with pytest.raises(PackageNotFoundError):
        distribution("mlflow")  # the full server distribution is not installed
