"""prov_wandb.training_run with the real wandb in offline mode, read back from what the
offline run wrote (its transaction log) and from the provgate ledger.

The shared training run is ``_train.py`` run as its own process (the ``trained``
fixture); the refusal and failure cases run in this process. A run's log is read once
W&B has written all of it: after the training process ended, or after
``finished_records`` (``_txlog``) for a run of this process.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import wandb
from _txlog import finished_records, of_type, read_finished
from _world import Trained
from prov_wandb import DATASET_PREFIX, training_run

from prov_core.digest import digest_path
from prov_core.errors import GateRefused, InputError
from prov_core.lineage import open_lineage
from prov_core.step import TRAINING_BUILD_TYPE
from tests.tracker_world import World


def _artifacts(trained: Trained) -> dict[str, Any]:
    return {a.name: a for a in of_type(read_finished(trained.sync_file), "artifact")}


def _summary(records: list[Any]) -> dict[str, Any]:
    """The run's summary as the log holds it (updates applied in order)."""
    summary: dict[str, Any] = {}
    for record in of_type(records, "summary"):
        for item in record.update:
            if item.key:
                summary[item.key] = json.loads(item.value_json)
    return summary


def test_the_offline_run_reached_nothing_beyond_loopback(trained: Trained) -> None:
    if trained.network_calls is None:
        pytest.skip("strace is not installed: only this process's audit hook checked the network")
    inet = [c for c in trained.network_calls if "AF_INET" in c]
    beyond = [c for c in inet if not ('inet_addr("127.' in c or 'inet_pton(AF_INET6, "::1"' in c)]
    assert beyond == [], beyond
    assert any("connect(" in c for c in trained.network_calls)  # the trace did see the process


def test_each_pinned_snapshot_is_an_input_dataset_artifact_with_our_digests(
    trained: Trained, world: World
) -> None:
    dataset = _artifacts(trained)[f"{DATASET_PREFIX}corpus"]
    assert dataset.type == "dataset"
    assert dataset.use_after_commit  # an input of the run once synced
    (entry,) = dataset.manifest.contents
    assert (entry.path, entry.ref) == ("snapshot", world.pinned)
    meta = json.loads(dataset.metadata)["provgate"]
    leaf, snapshot = world.entry(world.snapshot)
    assert meta == {
        "uri": world.pinned,
        "repository": "corpus",
        "commit": world.commit,
        "manifest_sha256": snapshot["subject"][0]["digest"]["sha256"],
        "record": world.snapshot,
        "record_sha256": hashlib.sha256(leaf).hexdigest(),
    }


def test_the_training_record_names_the_run_and_the_model_digest(
    trained: Trained, world: World
) -> None:
    r = trained.result
    leaf, statement = world.entry(r["training"]["log_index"])
    assert hashlib.sha256(leaf).hexdigest() == r["training"]["envelope_sha256"]
    build = statement["predicate"]["buildDefinition"]
    assert build["buildType"] == TRAINING_BUILD_TYPE
    tracker = build["internalParameters"]["orchestrator"]
    assert tracker["name"] == "wandb"
    assert tracker["run_id"] == r["run_id"]
    assert tracker["project"] == "provgate-tests"
    model = _artifacts(trained)["support-clf"]
    assert tracker["models"] == [{"name": "support-clf", "wandb_digest": model.digest}]
    assert statement["predicate"]["runDetails"]["metadata"]["invocationId"] == r["run_id"]
    assert build["externalParameters"]["parameters"] == {"epochs": 3, "inputs": [world.pinned]}
    (dep,) = build["resolvedDependencies"]
    assert dep["digest"]["sha256"] == r["gate"]["envelope_sha256"]
    # the model's digest, computed here from the files the script wrote
    tree = digest_path(world.root / "model")
    (out,) = statement["predicate"]["runDetails"]["byproducts"]
    assert out["annotations"]["blake3"] == tree.blake3
    assert statement["subject"] == [
        {"name": "support-clf", "digest": {"sha256": tree.sha256_subject}}
    ]


def test_the_model_artifact_carries_our_digests_and_both_records(
    trained: Trained, world: World
) -> None:
    r = trained.result
    model = _artifacts(trained)["support-clf"]
    assert model.type == "model"
    assert not model.use_after_commit  # an output of the run
    assert sorted(e.path for e in model.manifest.contents) == ["labels.json", "model.json"]
    meta = json.loads(model.metadata)
    assert meta["framework"] == "baseline"
    tree = digest_path(world.root / "model")
    assert meta["provgate"] == {
        "sha256": tree.sha256_subject,
        "blake3": tree.blake3,
        "training": {k: r["training"][k] for k in ("log_index", "envelope_sha256")}
        | {"uri": f"provgate+log://{r['training']['origin']}/{r['training']['log_index']}"},
        "gate": {k: r["gate"][k] for k in ("log_index", "envelope_sha256")}
        | {"uri": f"provgate+log://{r['gate']['origin']}/{r['gate']['log_index']}"},
    }
    # the digest in the metadata leads to the ingest records
    with open_lineage(world.home) as lineage:
        up = lineage.upstream(f"sha256:{meta['provgate']['sha256']}")
        assert up.roots == (r["training"]["log_index"],)
        assert {n.log_index for n in up.of_kind("ingest")} == set(world.ingests.values())


def test_config_and_summary_name_the_inputs_and_records(trained: Trained, world: World) -> None:
    r = trained.result
    config = {}
    records = read_finished(trained.sync_file)
    for record in of_type(records, "config"):
        for item in record.update:
            config[item.key] = json.loads(item.value_json)
    assert config["provgate"] == {"inputs": [world.pinned]}
    summary = _summary(records)["provgate"]
    assert summary["gate"]["result"] == "passed"
    assert summary["gate"]["log_index"] == r["gate"]["log_index"]
    assert summary["training"]["result"] == "recorded"
    assert summary["training"]["envelope_sha256"] == r["training"]["envelope_sha256"]


# -- refusals and failures, in this process ----------------------------------------------


def _offline_run(name: str) -> Any:
    return wandb.init(project="provgate-tests", name=name)


def test_a_refused_gate_runs_no_training_code_and_says_so_in_the_summary(world: World) -> None:
    before = world.ledger_size()
    ran = []
    with (
        _offline_run("refused") as wb,
        pytest.raises(GateRefused, match="unpinned") as refused,
        training_run(["provgate://corpus/main"], home=world.home),
    ):
        ran.append(True)
    assert ran == []
    vsa = refused.value.decision.vsa  # type: ignore[attr-defined]
    assert world.ledger_size() == before + 1 == vsa.log_index + 1  # the refusal only
    records = finished_records(wb)
    assert _summary(records)["provgate"]["gate"]["result"] == "refused"
    assert _summary(records)["provgate"]["gate"]["log_index"] == vsa.log_index
    assert of_type(records, "artifact") == []


def test_training_code_that_raises_or_logs_no_model_records_no_training(world: World) -> None:
    before = world.ledger_size()
    with _offline_run("failures") as wb:
        with (
            pytest.raises(ValueError, match="diverged"),
            training_run([world.pinned], home=world.home),
        ):
            raise ValueError("training diverged")
        with (
            pytest.raises(InputError, match=r"logged no model.*run\.log_model\(path\)"),
            training_run([world.pinned], home=world.home),
        ):
            pass
    assert world.ledger_size() == before + 2  # two gate decisions, no training record
    records = finished_records(wb)
    assert _summary(records)["provgate"]["training"]["result"] == "not-recorded"
    assert {a.type for a in of_type(records, "artifact")} == {"dataset"}


def test_bad_input_is_refused_before_anything_is_recorded(world: World, tmp_path: Path) -> None:
    before = world.ledger_size()
    with pytest.raises(InputError, match="a list of snapshot URIs"):
        training_run(world.pinned, home=world.home)  # type: ignore[arg-type]
    assert wandb.run is None
    with pytest.raises(InputError, match=r"no active W&B run.*wandb\.init"):
        training_run([world.pinned], home=world.home).__enter__()
    with _offline_run("bad-models"), training_run([world.pinned], home=world.home) as run:
        with pytest.raises(InputError, match="does-not-exist"):
            run.log_model(tmp_path / "does-not-exist")
        with pytest.raises(InputError, match="provgate"):
            run.log_model(world.root / "corpus", metadata={"provgate": "mine"})
        run.log_model(world.root / "corpus", name="m")
        with pytest.raises(InputError, match="already logged"):
            run.log_model(world.root / "corpus", name="m")
    assert world.ledger_size() == before + 2  # the gate decision and the training record
