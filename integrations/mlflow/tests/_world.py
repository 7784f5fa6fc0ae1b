"""What the MLflow integration's tests share: the provgate side and one model's helpers.

(Imported by the tests as ``_world``; the fixtures are in conftest.py.)
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]

SOURCES = {
    "handbook.csv": ("https://docs.example.org/router-handbook", "CC-BY-4.0"),
    "forum.csv": ("https://forum.example.net/export/2026-01", "CC-BY-NC-4.0"),
}


@dataclass
class World:
    """World is the provgate side every test starts from."""

    root: Path
    home: Any
    ingests: dict[str, int]
    commit: str
    snapshot: int

    @property
    def pinned(self) -> str:
        return f"provgate://corpus/{self.commit}"

    def ledger_size(self) -> int:
        with self.home.open_ledger() as ledger:
            return int(ledger.size())

    def entry(self, log_index: int) -> tuple[bytes, dict[str, Any]]:
        from prov_core.records import decode_entry

        with self.home.open_ledger() as ledger:
            leaf = ledger.entry(log_index)
        return leaf, decode_entry(leaf)[1]


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
