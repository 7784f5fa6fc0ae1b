"""The reference example DAG (``example_pipelines/airflow_dag.py``) in a real ``dag.test()``:
every task's record verifies and is linked to its upstream tasks, the model's lineage
reaches exactly the three ingest records, the answer leaning on the banned source is
blocked (and the block recorded) while the others pass."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from _records import input_indices, open_home, orchestrator, statement
from conftest import _DAGS, DagRunResult

from prov_core.lineage import upstream, verify_chain
from prov_core.nodes import attestation_from_dict, verify_node
from prov_core.step import TRAINING_BUILD_TYPE

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:  # example_pipelines lives at the repository root
    sys.path.insert(0, str(REPO))

DAG_FILE = REPO / "example_pipelines" / "airflow_dag.py"
SOURCES = {
    "handbook": "https://docs.example.org/router-handbook",
    "forum": "https://forum.example.net/export/2026-01",
    "books": "https://books3.example/support-excerpts",
}
TASKS = (
    *(f"ingest_{s}" for s in SOURCES),
    *(f"clean_{s}" for s in SOURCES),
    "corpus_snapshot",
    "model",
    "retrieval_index",
    "answers",
)


def _run(root: Path, **config: str) -> tuple[DagRunResult, Any, Path]:
    """Run the example DAG with ``[provgate]`` ``config``; the result, home and workdir."""
    from airflow.dag_processing.dagbag import DagBag

    home, workdir = root / "provgate", root / "work"
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__PROVGATE__HOME", str(home))
    mp.setenv("AIRFLOW__PROVGATE__LISTENER", "True")
    for key, value in config.items():
        mp.setenv(f"AIRFLOW__PROVGATE__{key.upper()}", value)
    # Deployed as Airflow expects a DAG file: in the dags folder (the dags-folder bundle);
    # removed afterwards, so the other tests' dags folder stays theirs.
    deployed = _DAGS / DAG_FILE.name
    try:
        shutil.copyfile(DAG_FILE, deployed)
        bag = DagBag(dag_folder=str(deployed))
        assert not bag.import_errors, bag.import_errors
        dag = bag.get_dag("provgate_example")
        dr = dag.test(run_conf={"workdir": str(workdir)})
        return DagRunResult(dag, dr), open_home(home), workdir
    finally:
        deployed.unlink(missing_ok=True)
        mp.undo()


@pytest.fixture(scope="module")
def example(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The example DAG run once: its result, the provgate home and the work directory."""
    return _run(tmp_path_factory.mktemp("example"))


def _inputs(st: dict[str, Any]) -> set[int]:
    """The log indices of the records a step or snapshot names as its inputs."""
    p = st["predicate"]
    if "derivedFrom" in p:
        return {d["annotations"]["logIndex"] for d in p["derivedFrom"]}
    return set(input_indices(st))


def test_every_task_succeeds_and_its_record_verifies(example: Any) -> None:
    res, home, _ = example
    assert res.state == "success", res.states
    assert res.states == {(t, -1): "success" for t in TASKS}
    for task_id in TASKS:
        a = res.attestation(task_id)
        node = verify_node(attestation_from_dict(a), home=home)
        assert node.ok, (task_id, node.to_dict())
        chain = verify_chain(a["log_index"], home=home)
        assert chain.ok, (task_id, chain.problems)
        if task_id.startswith("ingest_") or task_id == "corpus_snapshot":
            continue  # ingest and snapshot records are not steps: no orchestrator block
        o = orchestrator(statement(home, a["log_index"]))
        assert (o["name"], o["dag_id"], o["task_id"], o["run_id"]) == (
            "airflow",
            "provgate_example",
            task_id,
            res.run_id,
        )


def test_records_are_linked_to_their_upstream_tasks(example: Any) -> None:
    res, home, _ = example
    idx = {t: res.attestation(t)["log_index"] for t in TASKS}
    for s in SOURCES:  # each cleaned file descends from its own source only
        assert _inputs(statement(home, idx[f"clean_{s}"])) == {idx[f"ingest_{s}"]}
    assert _inputs(statement(home, idx["corpus_snapshot"])) == {idx[f"clean_{s}"] for s in SOURCES}
    training = statement(home, idx["model"])
    assert training["predicate"]["buildDefinition"]["buildType"] == TRAINING_BUILD_TYPE
    (vsa,) = _inputs(training) - {idx["corpus_snapshot"]}
    assert statement(home, vsa)["predicate"]["verificationResult"] == "PASSED"
    assert _inputs(statement(home, idx["retrieval_index"])) == {idx["corpus_snapshot"]}
    assert _inputs(statement(home, idx["answers"])) == {idx["model"], idx["retrieval_index"]}


def test_the_models_lineage_reaches_exactly_the_three_ingest_records(example: Any) -> None:
    res, home, _ = example
    graph = upstream(res.attestation("model")["log_index"], home=home)
    ingests = {n.log_index: n.source_uri for n in graph.of_kind("ingest")}
    assert ingests == {
        res.attestation(f"ingest_{s}")["log_index"]: uri for s, uri in SOURCES.items()
    }


def test_the_answer_leaning_on_the_banned_source_is_blocked(example: Any) -> None:
    res, home, workdir = example
    path = Path(res.xcoms[("answers", -1, "return_value")]["answers.json"])
    assert path == workdir / "answers" / "answers.json"
    answers = {a["question"]: a for a in json.loads(path.read_text())}
    assert len(answers) == 3
    banned = answers.pop("Does the warranty cover water damage?")
    assert not banned["allowed"]
    assert banned["answer"] is None
    assert banned["sources"] == ["clean/books.csv", "clean/books.csv"]
    assert any("banned-sources" in r for r in banned["reasons"])
    for entry in answers.values():
        assert entry["allowed"], entry
    assert answers["How do I reset my router?"]["answer"].startswith(
        "[technical] To reset the router"
    )
    # Every decision is a signed inference record, the block among them, and its lineage
    # goes back through the model's training record.
    model = res.attestation("model")["log_index"]
    for entry, decision in [(banned, "block"), *((a, "allow") for a in answers.values())]:
        st = statement(home, entry["record"])
        assert st["predicate"]["policy"]["decision"] == decision
        assert verify_chain(entry["record"], home=home).ok
        assert model in upstream(entry["record"], home=home).nodes


def test_the_gate_refuses_training_once_the_source_is_banned(airflow_db: Path, tmp_path: Path):
    """With the banned-sources policy as the gate's, the model task fails with the reason,
    its function never runs, and the refusal is a signed FAILED decision."""
    from example_pipelines.shared import BANNED_POLICY

    res, home, workdir = _run(tmp_path, policy=str(BANNED_POLICY))
    assert res.states[("model", -1)] == "failed"
    assert res.states[("answers", -1)] == "upstream_failed"
    assert res.states[("corpus_snapshot", -1)] == "success"
    assert res.states[("retrieval_index", -1)] == "success"
    assert not (workdir / "model" / "model.pkl").exists()
    with home.open_ledger() as ledger:
        size = ledger.size()
    vsas = {
        i: st["predicate"]
        for i, st in ((i, statement(home, i)) for i in range(size))
        if st["predicateType"] == "https://slsa.dev/verification_summary/v1"
    }
    ((vsa_index, vsa),) = vsas.items()
    assert vsa["verificationResult"] == "FAILED"
    assert any("banned-sources" in json.dumps(r) for r in vsa["provgateReasons"]), vsa
    # The refused try is a failed step naming the refusal; no training record was made.
    failed = statement(home, res.attestation("model")["log_index"])
    assert failed["predicate"]["buildDefinition"]["buildType"] != TRAINING_BUILD_TYPE
    assert orchestrator(failed)["state"] == "failed"
    assert "policy [banned-sources]" in orchestrator(failed)["error"]
    assert vsa_index in input_indices(failed)
