"""A real local MLflow (SQLite tracking store and model registry, no server) and a real
provgate home with two ingested sources and a pinned snapshot of them.

MLflow is configured before anything imports it: a private database and artifact
root in a temporary directory, telemetry off. Every test is checked for network
use: an audit hook records any connection or name lookup that is not loopback
(or a Unix socket), and the test that made it fails, naming the address.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _world import Trained, World, fit, log_model  # first: the repository root on sys.path

from tests.network_audit import NetworkAudit
from tests.tracker_world import build_world

_ROOT = Path(tempfile.mkdtemp(prefix="provgate-mlflow-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
_DB = f"sqlite:///{_ROOT / 'mlflow.db'}"
os.environ.update(
    {
        "MLFLOW_TRACKING_URI": _DB,
        "MLFLOW_REGISTRY_URI": _DB,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "PROVGATE_SIGNING_WORKERS": "0",
    }
)
os.environ.pop("PROVGATE_HOME", None)
os.environ.pop("PROVGATE_SIGNING_KEY", None)

# -- no network: every connection and name lookup beyond loopback is recorded -------

_NETWORK = NetworkAudit()


@pytest.fixture(autouse=True)
def no_network() -> Iterator[None]:
    """no_network fails the test that tried to reach anything beyond loopback."""
    with _NETWORK.none_beyond_loopback():
        yield


def pytest_configure(config: pytest.Config) -> None:
    """Warnings stay errors, except MLflow's own ones about its dependencies and import-time
    type hints (not ours to fix)."""
    for line in (
        "ignore:The ``noload`` loader strategy is deprecated",  # SQLAlchemy 2.1, MLflow's store
        "ignore:.*Any type hint is inferred as AnyType:UserWarning",  # mlflow.types.responses
    ):
        config.addinivalue_line("filterwarnings", line)


@pytest.fixture(scope="session")
def world() -> World:
    return build_world(_ROOT)


@pytest.fixture(scope="session")
def experiment_id(world: World) -> str:
    """One experiment whose artifacts live in the session's temporary directory."""
    import mlflow

    experiment_id = str(
        mlflow.create_experiment("provgate-tests", artifact_location=str(world.root / "artifacts"))
    )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


# -- one gated training, logged and registered in MLflow -------------------------------


@pytest.fixture(scope="session")
def trained(world: World, experiment_id: str) -> Trained:
    """One gated training of the reference classifier, logged and registered as MODEL_NAME."""
    import mlflow
    from prov_mlflow import training_run

    before = world.ledger_size()
    with mlflow.start_run(run_name="fit") as outer:
        with training_run([world.pinned], home=world.home) as run:
            mlflow.log_param("max_iter", 1000)
            info = log_model(fit(world, world.pinned))
        still_active = mlflow.active_run() is not None
    return Trained(run, outer.info.run_id, still_active, info, before)
