"""What the MLflow integration's tests share: the provgate side (``World``, shared with
the W&B tests: tests/tracker_world.py) and one model's helpers.

(Imported by the tests as ``_world``; the fixtures are in conftest.py.)
"""

from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:  # tests.tracker_world and example_pipelines live at the root
    sys.path.insert(0, str(REPO))

from tests.tracker_world import World  # noqa: E402

MODEL_NAME = "support-clf"


def fit(world: World, uri: str) -> Any:
    """fit trains the reference pipeline's classifier on the snapshot ``uri``."""
    from example_pipelines.shared import train
    from prov_core.snapshot_record import read_snapshot

    return pickle.loads(train(read_snapshot(uri, world.home)))


def log_model(model: Any, registered: str | None = MODEL_NAME) -> Any:
    """log_model logs (and registers) a scikit-learn model; requirements given, so MLflow
    does not start a subprocess to infer them."""
    import mlflow.sklearn

    return mlflow.sklearn.log_model(
        model,
        name="model",
        registered_model_name=registered,
        serialization_format="pickle",
        pip_requirements=["scikit-learn"],
    )


@dataclass
class Trained:
    """Trained is the shared gated training run and the model it logged."""

    run: Any
    outer_run_id: str
    outer_active_after: bool
    model_info: Any
    before: int
