"""The reference flow (example_pipelines/prefect_pipeline.py), run for real under Prefect."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prov_prefect import NodeRef, read_flow_nodes

from prov_core.home import Home
from prov_core.lineage import upstream, verify_chain
from prov_core.lineage_index import parse_record
from prov_core.nodes import verify_node
from prov_core.step import TRAINING_BUILD_TYPE

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:  # example_pipelines lives at the repository root
    sys.path.insert(0, str(REPO))

from example_pipelines import prefect_pipeline as example  # noqa: E402
from example_pipelines.shared import QUESTIONS  # noqa: E402

pytestmark = pytest.mark.usefixtures("prefect_server")

SOURCES = ("handbook", "forum", "books")


@dataclass
class Run:
    """One run of the example flow: its result, nodes (by task run name) and home."""

    result: dict[str, str]
    nodes: dict[str, NodeRef]
    home: Home
    workdir: Path

    def statement(self, log_index: int) -> dict[str, Any]:
        with self.home.open_ledger() as ledger:
            return dict(parse_record(log_index, ledger.entry(log_index)).statement)

    def inputs(self, name: str) -> list[int]:
        """Log indices of the records a node names as its inputs (steps and snapshots)."""
        with self.home.open_ledger() as ledger:
            i = self.nodes[name].attestation.log_index
            return sorted(r.parent for r in parse_record(i, ledger.entry(i)).refs)

    def index(self, name: str) -> int:
        return self.nodes[name].attestation.log_index


@pytest.fixture(scope="module")
def run(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    del prefect_server
    tmp = tmp_path_factory.mktemp("example")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROVGATE_HOME", str(tmp / "provgate"))
        result = example.pipeline(workdir=str(tmp / "work"))
        nodes = {n.task_run_name: n for n in read_flow_nodes(UUID(result["flow_run"]))}
        yield Run(result, nodes, example.CONFIG.open_home(), tmp / "work")


def test_every_task_run_is_a_verified_node(run: Run) -> None:
    assert set(run.nodes) == {
        *(f"raw_documents[{s}]" for s in SOURCES),
        *(f"clean_corpus[{s}]" for s in SOURCES),
        "corpus_snapshot",
        "model",
        "retrieval_index",
        "answers",
    }
    for name, node in run.nodes.items():
        assert node.verified == "ok", name
        assert node.cache == "computed", name
        assert verify_node(node.attestation, home=run.home).ok, name
        report = verify_chain(node.attestation.log_index, home=run.home)
        assert report.ok, (name, report.problems)
    # the files the steps returned are the ones their records sign
    model = run.nodes["model"].attestation
    assert verify_node(model, home=run.home, outputs={"model.pkl": Path(run.result["model"])}).ok
    answers = run.nodes["answers"].attestation
    assert verify_node(
        answers, home=run.home, outputs={"answers.json": Path(run.result["answers"])}
    ).ok


def test_records_link_each_task_to_its_upstream(run: Run) -> None:
    for s in SOURCES:  # each clean run read its own source's ingest record, and only that
        assert run.inputs(f"clean_corpus[{s}]") == [run.index(f"raw_documents[{s}]")]
    assert run.inputs("corpus_snapshot") == sorted(run.index(f"clean_corpus[{s}]") for s in SOURCES)
    training = run.statement(run.index("model"))["predicate"]["buildDefinition"]
    assert training["buildType"] == TRAINING_BUILD_TYPE
    gate = training["resolvedDependencies"][0]["annotations"]["logIndex"]
    vsa = run.statement(gate)["predicate"]
    assert vsa["verificationResult"] == "PASSED"
    assert run.inputs("model") == sorted([gate, run.index("corpus_snapshot")])
    assert run.inputs("retrieval_index") == [run.index("corpus_snapshot")]
    assert run.inputs("answers") == sorted([run.index("model"), run.index("retrieval_index")])
    assert run.result["model_record"] == str(run.index("model"))
    orch = run.statement(run.index("clean_corpus[forum]"))["predicate"]["buildDefinition"][
        "internalParameters"
    ]
    assert orch["orchestrator"]["name"] == "prefect"
    assert orch["orchestrator"]["run_id"] == run.result["flow_run"]
    assert orch["code"]["function"] == "example_pipelines.prefect_pipeline.clean_corpus"
    assert orch["code"]["version"] == "1"


def test_the_model_descends_from_exactly_the_three_ingest_records(run: Run) -> None:
    graph = upstream(run.index("model"), home=run.home)
    ingests = {n.log_index for n in graph.of_kind("ingest")}
    assert ingests == {run.index(f"raw_documents[{s}]") for s in SOURCES}
    with run.home.open_ledger() as ledger:
        sources = {parse_record(i, ledger.entry(i)).name for i in ingests}
    assert any("books3.example" in s for s in sources), sources


def test_answers_block_the_banned_source_and_record_the_block(run: Run) -> None:
    answers = {a["question"]: a for a in json.loads(Path(run.result["answers"]).read_text())}
    assert set(answers) == set(QUESTIONS)
    banned = answers["Does the warranty cover water damage?"]
    assert not banned["allowed"]
    assert banned["answer"] is None
    assert banned["sources"]
    assert all(p == "clean/books.csv" for p in banned["sources"])
    assert any("banned-sources" in r for r in banned["reasons"]), banned["reasons"]
    allowed = [a for q, a in answers.items() if q != banned["question"]]
    for a in allowed:
        assert a["allowed"], a
        assert a["answer"]
        assert "clean/books.csv" not in a["sources"]
    assert answers["How do I reset my router?"]["answer"].startswith("[technical] To reset")
    # every decision, the block among them, is a signed inference record that verifies
    for a, decision in [(banned, "block"), *((a, "allow") for a in allowed)]:
        assert isinstance(a["record"], int)
        assert run.statement(a["record"])["predicate"]["policy"]["decision"] == decision
        assert verify_chain(a["record"], home=run.home).ok
