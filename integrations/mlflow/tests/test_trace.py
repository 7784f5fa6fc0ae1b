"""``provgate trace`` and ``verify --artifact`` from a registered MLflow model version.

The ``models:`` resolver is the installed one (entry point ``provgate.resolvers`` of
this distribution); MLflow reads its stores from the session's environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _world import MODEL_NAME, Trained, World
from mlflow import MlflowClient

from prov_core.cli import main
from prov_core.resolvers import installed_resolvers


def _cli(capsys: pytest.CaptureFixture[str], world: World, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = 0
    try:
        main(["--home", str(world.home.path), *args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    out, err = capsys.readouterr()
    return code, out, err


def _trace(capsys: pytest.CaptureFixture[str], world: World, target: str) -> dict[str, Any]:
    code, out, err = _cli(capsys, world, "trace", target, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_the_models_resolver_is_installed() -> None:
    assert "models" in installed_resolvers()


def test_trace_from_a_model_version_reaches_the_ingest_records(
    trained: Trained, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = _trace(capsys, world, f"models:/{MODEL_NAME}/1")
    att = trained.run.attestation
    assert graph["target"] == f"models:/{MODEL_NAME}/1"
    assert graph["roots"] == [att.log_index]
    kinds = {n["log_index"]: n["kind"] for n in graph["nodes"]}
    assert kinds[att.log_index] == "training"
    assert kinds[trained.run.gated.vsa.log_index] == "gate"
    assert kinds[world.snapshot] == "snapshot"
    assert {i for i, k in kinds.items() if k == "ingest"} == set(world.ingests.values())


def test_an_alias_and_the_model_id_resolve_to_the_same_record(
    trained: Trained, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", "1")
    by_alias = _trace(capsys, world, f"models:/{MODEL_NAME}@champion")
    by_id = _trace(capsys, world, f"models:/{trained.model_info.model_id}")
    assert by_alias["roots"] == by_id["roots"] == [trained.run.attestation.log_index]


def test_verify_artifact_checks_the_chain_of_a_model_version(
    trained: Trained, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(
        capsys, world, "verify", "--artifact", f"models:/{MODEL_NAME}/1", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"]
    assert report["target"] == f"models:/{MODEL_NAME}/1"
    assert set(world.ingests.values()) <= {r["log_index"] for r in report["records"]}


def test_a_changed_model_file_traces_to_nothing(
    trained: Trained, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = Path(MlflowClient().get_logged_model(trained.model_info.model_id).artifact_location)
    pkl = stored / "model.pkl"
    original = pkl.read_bytes()
    pkl.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        code, _, err = _cli(capsys, world, "trace", f"models:/{MODEL_NAME}/1")
    finally:
        pkl.write_bytes(original)
    assert code == 2
    assert f"models:/{MODEL_NAME}/1 resolves to sha256:" in err
    assert "no record in the ledger names" in err
    assert _trace(capsys, world, f"models:/{MODEL_NAME}/1")["roots"] == [
        trained.run.attestation.log_index
    ]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (f"models:/{MODEL_NAME}/99", "MLflow has no such model"),
        ("models:/no-such-model/1", "MLflow has no such model"),
    ],
)
def test_an_unknown_model_is_a_clear_error(
    trained: Trained, world: World, capsys: pytest.CaptureFixture[str], target: str, message: str
) -> None:
    code, _, err = _cli(capsys, world, "trace", target)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_the_provgate_command_traces_a_model_version_in_a_fresh_process(
    trained: Trained, world: World
) -> None:
    """As a user runs it: the console script, MLflow imported by the resolver, no warning
    (MLflow loads our dataset source while the resolver's package is being imported)."""
    provgate = Path(sys.executable).with_name("provgate")
    done = subprocess.run(
        [
            provgate,
            "--home",
            str(world.home.path),
            "trace",
            f"models:/{MODEL_NAME}/1",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Failure attempting to register" not in done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout)["roots"] == [trained.run.attestation.log_index]
