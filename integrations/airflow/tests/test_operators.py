"""The operators and ``@task.provenance`` in a real ``dag.test()``: ingest -> clean ->
snapshot -> gated training -> a plain task, every record verifying and linked to its
upstream tasks; the gate refusing a branch ref with its reasons; a tampered ledger
failing ``provgate verify``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _records import (
    assert_retry_of,
    input_indices,
    node_report,
    open_home,
    orchestrator,
    statement,
    tamper,
    tries,
)

PIPELINE = """
import pendulum
from pathlib import Path
from airflow.sdk import Asset, dag, task
from prov_airflow import (
    ProvenanceIngestOperator, ProvenanceSnapshotOperator, ProvenanceTrainingOperator,
)

WORK = Path("{work}")

def fit(pinned=None):
    model = WORK / "model.bin"
    model.write_text("weights trained on " + ",".join(pinned))
    return model

@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def pipeline():
    ingest = ProvenanceIngestOperator(
        task_id="ingest", path=str(WORK / "raw.csv"),
        source="https://example.org/reviews", license="CC0-1.0",
        request_fields={"method": "synthetic"},
    )

    @task.provenance(outlets=[Asset(name="clean_reviews", uri="file:///clean/reviews.csv")])
    def clean():
        out = WORK / "clean" / "reviews.csv"
        out.parent.mkdir(exist_ok=True)
        rows = (WORK / "raw.csv").read_text().splitlines()
        out.write_text("\\n".join(r.lower() for r in rows) + "\\n")
        return out

    snapshot = ProvenanceSnapshotOperator(
        task_id="snapshot", path=str(WORK / "clean"), repo="reviews",
    )
    train = ProvenanceTrainingOperator(task_id="train", python_callable=fit, inputs={inputs})

    @task
    def report(paths):
        return sorted(paths)

    c = clean()
    ingest >> c >> snapshot >> train
    report(train.output)

pipeline()
"""


def _data(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "raw.csv").write_text("id,text\n1,Good Product\n2,BAD service\n3,Fine\n")
    return work


def test_pipeline_records_every_task_linked_to_its_upstream(run_dag, prov_home, tmp_path):
    work = _data(tmp_path)
    res = run_dag("prov_pipeline", PIPELINE, work=work, inputs="None")
    assert res.state == "success", res.states
    assert set(res.states.values()) == {"success"}
    home = open_home(prov_home)

    att = {t: res.attestation(t) for t in ("ingest", "clean", "snapshot", "train", "report")}
    # Every task's record is in the ledger, links to the XCom reference, and verifies.
    for task_id, a in att.items():
        report = node_report(home, a)
        for check in ("link", "signature", "trust", "inclusion"):
            assert report.checks[check] == "ok", (task_id, report.to_dict())
        assert report.ok, (task_id, report.to_dict())

    def ref(task_id: str) -> dict[int, str]:
        return {att[task_id]["log_index"]: att[task_id]["envelope_sha256"]}

    # Inputs are exactly the upstream tasks' attestations.
    clean = statement(home, att["clean"]["log_index"])
    assert input_indices(clean) == ref("ingest")
    snap = statement(home, att["snapshot"]["log_index"])
    derived = {
        d["annotations"]["logIndex"]: d["digest"]["sha256"]
        for d in snap["predicate"]["derivedFrom"]
        if "logIndex" in d.get("annotations", {})
    }
    assert ref("clean").items() <= derived.items()
    train = statement(home, att["train"]["log_index"])
    assert train["predicate"]["buildDefinition"]["buildType"] == "https://provgate.dev/training/v1"
    train_inputs = input_indices(train)
    assert ref("snapshot").items() <= train_inputs.items()
    (vsa_index,) = set(train_inputs) - set(ref("snapshot"))
    vsa = statement(home, vsa_index)
    assert vsa["predicate"]["verificationResult"] == "PASSED"
    pinned = res.xcoms[("snapshot", -1, "provgate_snapshot")]
    assert vsa["predicate"]["provgateInputs"][0]["uri"] == pinned
    assert (work / "model.bin").read_text() == f"weights trained on {pinned}"
    # The plain downstream task is recorded by the listener, linked to the training step.
    report_st = statement(home, att["report"]["log_index"])
    assert input_indices(report_st) == ref("train")

    # The asset event of the clean task carries the attestation and the content digest.
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.settings import Session

    session = Session()
    (event,) = (
        session.query(AssetEvent)
        .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        .filter(AssetModel.name == "clean_reviews", AssetEvent.source_run_id == res.run_id)
        .all()
    )
    extra = event.extra["provgate"]
    session.close()
    assert extra["attestation"] == att["clean"]
    outputs = clean["predicate"]["runDetails"]["byproducts"]
    assert [extra["content_digest"]] == [o["annotations"]["blake3"] for o in outputs]

    # Each provgate task links to its Provenance view (operator extra link, pushed by Airflow).
    link = res.xcoms[("clean", -1, "_link_ProvenanceLink")]
    assert link.startswith("/provgate/ti/prov_pipeline/")
    assert link.endswith("/clean/-1")

    # The orchestrator identity of each record.
    for task_id in ("clean", "train", "report"):
        o = orchestrator(statement(home, att[task_id]["log_index"]))
        assert o["name"] == "airflow"
        assert (o["dag_id"], o["task_id"], o["run_id"]) == ("prov_pipeline", task_id, res.run_id)
        assert (o["try_number"], o["map_index"]) == (1, -1)

    # Tamper: change the clean step's record in the ledger; `provgate verify` names it.
    cli = [sys.executable, "-m", "prov_core.cli", "verify"]
    env = {"PROVGATE_HOME": str(prov_home), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(cli, env=env, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr + ok.stdout
    index = att["clean"]["log_index"]

    def rename(st: dict) -> None:
        st["predicate"]["buildDefinition"]["internalParameters"]["orchestrator"]["task_id"] = "x"

    tamper(home, index, rename)
    bad = subprocess.run(cli, env=env, capture_output=True, text=True, check=False)
    assert bad.returncode == 1, bad.stderr + bad.stdout
    assert str(index) in bad.stderr + bad.stdout


VSA = "https://slsa.dev/verification_summary/v1"
RULE = "no input may come from a banned source (shadow libraries, local files, plain HTTP)"


def _refused(home, res, task_id: str) -> tuple[dict, dict]:
    """The failed try's record of a refused training task and the refusal (VSA) it names."""
    st = statement(home, res.attestation(task_id)["log_index"])
    o = orchestrator(st)
    assert o["state"] == "failed"
    assert (o["task_id"], o["attempt"]) == (task_id, 1)
    assert "ProvenanceRefused" in o["error"]
    assert node_report(home, res.attestation(task_id)).ok
    snapshot = res.attestation("snapshot")
    inputs = input_indices(st)
    assert inputs[snapshot["log_index"]] == snapshot["envelope_sha256"]
    (vsa_index,) = set(inputs) - {snapshot["log_index"]}
    vsa = statement(home, vsa_index)
    assert vsa["predicateType"] == VSA
    assert vsa["predicate"]["verificationResult"] == "FAILED"
    return o, vsa["predicate"]


def test_gate_refuses_a_branch_ref_with_every_reason(run_dag, prov_home, tmp_path):
    work = _data(tmp_path)
    res = run_dag(
        "prov_refused",
        PIPELINE,
        work=work,
        inputs='["provgate://reviews/main"]',
    )
    assert res.states[("train", -1)] == "failed"
    assert res.states[("snapshot", -1)] == "success"
    assert not (work / "model.bin").exists()  # the training callable never ran
    # The refused try is a failed step whose inputs are the refusal (a signed VSA naming
    # every reason) and the snapshot; its error is the refusal message.
    o, vsa = _refused(open_home(prov_home), res, "train")
    codes = [r["code"] for r in vsa["provgateReasons"]]
    assert "unpinned" in codes
    assert any("main" in r["message"] for r in vsa["provgateReasons"])
    assert "- unpinned: provgate://reviews/main: ref 'main' is a branch" in o["error"]
    assert "the refusal is recorded at log index" in o["error"]


def test_gate_refuses_a_banned_source_operator_and_decorator(
    run_dag, prov_home, tmp_path, monkeypatch
):
    """A source the gate's policy bans: both gated training tasks (operator and
    ``@task.provenance(training=True)``) fail with every reason, naming the rule; each
    refusal is a signed FAILED decision and the failed try's record names it."""
    policy = Path(__file__).resolve().parents[3] / "examples" / "policies" / "banned-sources.toml"
    monkeypatch.setenv("AIRFLOW__PROVGATE__POLICY", str(policy))
    work = _data(tmp_path)
    banned = "https://books3.example/support-excerpts"
    source = PIPELINE.replace("https://example.org/reviews", banned).replace(
        "    c = clean()\n",
        "    c = clean()\n"
        '    snapshot >> task.provenance(training=True, task_id="train_taskflow")(fit)()\n',
    )
    assert banned in source
    assert "train_taskflow" in source
    res = run_dag("prov_banned", source, work=work, inputs="None")
    assert res.states[("snapshot", -1)] == "success"
    assert res.states[("train", -1)] == "failed"
    assert res.states[("train_taskflow", -1)] == "failed"
    assert res.states[("report", -1)] == "upstream_failed"
    assert not (work / "model.bin").exists()  # neither training function ran
    home = open_home(prov_home)
    pinned = res.xcoms[("snapshot", -1, "provgate_snapshot")]
    for task_id in ("train", "train_taskflow"):
        o, vsa = _refused(home, res, task_id)
        assert vsa["provgateInputs"][0]["uri"] == pinned
        # Every reason: here the one policy rule the banned source breaks.
        assert [(r["code"], r["rule"]) for r in vsa["provgateReasons"]] == [
            ("policy", "banned-sources")
        ]
        # The rule and its message, after the input it judged where the core names it.
        (line,) = [x for x in o["error"].splitlines() if x.startswith("- policy")]
        assert line.startswith("- policy [banned-sources]: ")
        assert line.removeprefix("- policy [banned-sources]: ") in (RULE, f"{pinned}: {RULE}")
        assert f"the training gate refused the inputs of prov_banned.{task_id}" in o["error"]
    # The ingest record the policy judged is the banned source's.
    assert (
        statement(home, res.attestation("ingest")["log_index"])["predicate"]["source"]["uri"]
        == banned
    )


RETRIES = """
import pendulum
import shutil
from datetime import timedelta
from pathlib import Path
from airflow.sdk import dag, get_current_context, task
from prov_airflow import (
    ProvenanceIngestOperator, ProvenanceSnapshotOperator, ProvenanceTrainingOperator,
)

WORK = Path("{work}")
AGAIN = {"retries": 1, "retry_delay": timedelta(seconds=0)}

def first_try_fails():
    if get_current_context()["ti"].try_number == 1:
        raise RuntimeError("first try fails")

def arrive_late(source, target):  # a pre_execute hook: target exists from the second try
    def hook(context):
        if context["ti"].try_number > 1 and not target.exists():
            shutil.copytree(source, target) if source.is_dir() else shutil.copy(source, target)
    return hook

def fit(pinned=None):
    first_try_fails()
    model = WORK / "model.bin"
    model.write_text("weights trained on " + ",".join(pinned))
    return model

@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def retries():
    ingest = ProvenanceIngestOperator(
        task_id="ingest", path=str(WORK / "late.csv"),
        source="https://example.org/reviews", license="CC0-1.0",
        pre_execute=arrive_late(WORK / "raw.csv", WORK / "late.csv"), **AGAIN,
    )

    @task.provenance(**AGAIN)
    def clean():
        first_try_fails()
        out = WORK / "clean" / "reviews.csv"
        out.parent.mkdir(exist_ok=True)
        out.write_text((WORK / "raw.csv").read_text().lower())
        return out

    snapshot = ProvenanceSnapshotOperator(
        task_id="snapshot", path=str(WORK / "staged"), repo="reviews",
        pre_execute=arrive_late(WORK / "clean", WORK / "staged"), **AGAIN,
    )
    train = ProvenanceTrainingOperator(task_id="train", python_callable=fit, **AGAIN)
    ingest >> clean() >> snapshot >> train

retries()
"""


def test_retries_are_distinct_records_each_linked_to_the_one_before(run_dag, prov_home, tmp_path):
    """The ingest and snapshot operators, ``@task.provenance`` and the gated training
    operator, each failing its first try: two records per task instance, the second
    ``retry-of`` the first, both verifying, although Airflow cleared the first try's XComs
    when the retry started. An ingest's or snapshot's retry is an ingest or snapshot
    record whose predicate carries the run identity."""
    work = _data(tmp_path)
    res = run_dag("prov_retries", RETRIES, work=work)
    assert res.state == "success", res.states
    home = open_home(prov_home)
    for task_id in ("ingest", "clean", "snapshot", "train"):
        first, second = tries(home, ["prov_retries", task_id, res.run_id, -1])
        assert (first.attempt, second.attempt) == (1, 2)
        assert res.attestation(task_id)["log_index"] == second.log_index
        failed = orchestrator(statement(home, first.log_index))
        assert failed["state"] == "failed"
        if task_id in ("clean", "train"):
            assert "RuntimeError: first try fails" in failed["error"]
            assert orchestrator(statement(home, second.log_index))["state"] == "success"
        else:  # the path arrived only for the second try
            assert "late.csv" in failed["error"] or "staged" in failed["error"]
            predicate = statement(home, second.log_index)["predicate"]
            assert predicate["orchestrator"]["attempt"] == 2
        # The failed try of an ingest task read nothing: its chain has no ingest record.
        assert_retry_of(home, first, second, custody=task_id != "ingest")
    # Each try of the training task passed the gate: its own decision among its inputs.
    train = tries(home, ["prov_retries", "train", res.run_id, -1])
    decisions = [set(input_indices(statement(home, t.log_index))) for t in train]
    snapshot = res.attestation("snapshot")["log_index"]
    assert all(snapshot in d and len(d) == 2 for d in decisions)
    assert decisions[0] != decisions[1]
    assert (work / "model.bin").read_text().startswith("weights trained on provgate://reviews/")

    # An edited earlier try breaks the retry's chain, and the report names it.
    from prov_core.lineage import verify_chain

    first, second = tries(home, ["prov_retries", "clean", res.run_id, -1])

    def edit(st: dict) -> None:
        st["predicate"]["buildDefinition"]["internalParameters"]["orchestrator"]["error"] = "-"

    tamper(home, first.log_index, edit)
    report = verify_chain(second.log_index, home=home)
    assert first.log_index in report.broken


def test_refusal_error_lists_every_reason():
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
    from prov_airflow import ProvenanceRefused

    err = ProvenanceRefused("d.train", ["unpinned: main", "uncovered: a.csv"], vsa_log_index=7)
    assert isinstance(err, AirflowException)
    assert isinstance(err, AirflowFailException)
    assert err.reasons == ("unpinned: main", "uncovered: a.csv")
    assert "- unpinned: main\n- uncovered: a.csv" in str(err)
    assert "log index 7" in str(err)


def test_taskflow_training_task_is_gated(run_dag, prov_home, tmp_path):
    """``@task.provenance(training=True)``: the gate, ``pinned``, the training record."""
    work = _data(tmp_path)
    source = PIPELINE.replace(
        'train = ProvenanceTrainingOperator(task_id="train", python_callable=fit, inputs={inputs})',
        'train = task.provenance(training=True, task_id="train")(fit)().operator',
    )
    assert source != PIPELINE
    res = run_dag("prov_taskflow_train", source, work=work)
    assert res.state == "success", res.states
    home = open_home(prov_home)
    pinned = res.xcoms[("snapshot", -1, "provgate_snapshot")]
    assert (work / "model.bin").read_text() == f"weights trained on {pinned}"
    train = statement(home, res.attestation("train")["log_index"])
    assert train["predicate"]["buildDefinition"]["buildType"] == "https://provgate.dev/training/v1"
    inputs = input_indices(train)
    snapshot = res.attestation("snapshot")
    assert inputs[snapshot["log_index"]] == snapshot["envelope_sha256"]
    (vsa_index,) = set(inputs) - {snapshot["log_index"]}
    assert statement(home, vsa_index)["predicate"]["verificationResult"] == "PASSED"
    assert node_report(home, res.attestation("train")).ok
