"""The reference pipeline on Dagster's multiprocess executor, against a PostgreSQL home.

Ledger, content and lineage index and the store's refs all live in one
PostgreSQL database (PROVGATE_LEDGER_URL). One run per source partition,
then one for the rest, where model and retrieval_index run at once; every
asset runs in a process of its own (``multiprocess_pipeline``), on a
persistent DagsterInstance in a temporary DAGSTER_HOME as the executor
requires (telemetry off). The runs are sequential: three at once measured
slower on two cores (each starts its own interpreters), and ``execute_job``
is not thread-safe. Every node must be recorded exactly once: one ledger
record per asset and partition, none duplicated, none missing, the log
gap-free and verified, every materialization's provenance verified and
every ``provenance_verified`` check passed. The same again with every
append through a sequencer (``provgate log serve``, served by the test).
"""

from __future__ import annotations

import multiprocessing.forkserver
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, SOURCES, example
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    DagsterInstance,
    materialize,
)
from prov_dagster import ProvenanceResource, provenance_checks

from prov_core.lineage_index import parse_record
from tests.conftest import fresh_postgres_database

STEP_ASSETS = ("clean_corpus", "model", "retrieval_index", "answers")
ASSETS = ("raw_documents", "clean_corpus", "corpus_snapshot", *STEP_ASSETS[1:])
PARTITIONED = ("raw_documents", "clean_corpus")


@pytest.fixture
def postgres_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with fresh_postgres_database() as url:
        monkeypatch.setenv("PROVGATE_LEDGER_URL", url)
        monkeypatch.delenv("PROVGATE_SIGNING_KEY", raising=False)
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        (tmp_path / "dagster").mkdir()
        (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        # Each step process imports the job's module by its dotted name from the working
        # directory (reconstructable), and the module imports the example from there.
        monkeypatch.chdir(REPO)
        yield tmp_path
    # The executor forks its steps from a forkserver, which keeps the environment it
    # started with: the next test's must start one of its own (Python's own test hook).
    multiprocessing.forkserver._forkserver._stop()


def _materializations(instance: DagsterInstance, asset: str) -> list[Any]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset)), limit=100
    ).records
    return [r.asset_materialization for r in records]


@pytest.fixture(params=["group append", "sequencer"])
def appends_through(
    request: pytest.FixtureRequest, postgres_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """How the steps append: by themselves (group append), or through a sequencer.

    For the sequencer, the home is made first (its key signs the checkpoints)
    and this process serves it; every step process finds it through
    PROVGATE_LEDGER_SEQUENCER. Yields the server, or None.
    """
    if request.param == "group append":
        yield None
        return
    from prov_core.home import init_home
    from prov_core.ledger import PostgresLedger, SequencerServer

    home, _ = init_home(postgres_home / "home")
    assert home.ledger_url is not None
    ledger = PostgresLedger(home.ledger_url, home.origin, home.note_signer())
    with SequencerServer(ledger, port=0) as server:
        host, port = server.address
        monkeypatch.setenv("PROVGATE_LEDGER_SEQUENCER", f"{host}:{port}")
        yield server


def test_every_node_is_recorded_once_by_a_multiprocess_run(
    postgres_home: Path, appends_through: Any
) -> None:
    from integrations.dagster.tests import multiprocess_pipeline as pipeline
    from prov_core.home import open_home
    from prov_core.nodes import attestation_from_dict, verify_node

    home = postgres_home / "home"
    config = pipeline.run_config(str(home), str(postgres_home / "work"))
    runs = [(pipeline.INGEST, {"dagster/partition": s}) for s in SOURCES]
    runs.append((pipeline.DOWNSTREAM, {}))
    pids = set().union(*(pipeline.run(job, config, tags) for job, tags in runs))
    with DagsterInstance.get() as instance:
        materialized = {a: _materializations(instance, a) for a in ASSETS}
        checks = materialize(
            [*example.all_assets, *provenance_checks(example.all_assets)],
            selection=AssetSelection.checks_for_assets(*example.all_assets),
            resources={
                "provenance": ProvenanceResource(home=str(home)),
                "workdir": example.Workdir(path=str(postgres_home / "work")),
            },
            instance=instance,
        ).get_asset_check_evaluations()

    assert len(pids) >= 2 * len(SOURCES) + 4  # every asset ran in a process of its own
    # One materialization per asset and partition, each naming its own record, verified.
    opened = open_home(home)
    by_materialization = {}
    for asset, events in materialized.items():
        assert len(events) == (len(SOURCES) if asset in PARTITIONED else 1), asset
        for m in events:
            attestation = attestation_from_dict(m.metadata["provgate/attestation"].value)
            outputs = m.metadata.get("provgate/outputs")
            snapshot = m.metadata.get("provgate/snapshot_uri")
            report = verify_node(
                attestation,
                home=opened,
                outputs=outputs.value if outputs else {},
                snapshot=snapshot.value if snapshot else None,
            )
            assert report.ok, (asset, m.partition, report.problems)
            by_materialization[attestation.log_index] = (asset, m.partition)
    assert len(by_materialization) == len(SOURCES) * 2 + 4
    # Every asset's provenance_verified check passed.
    assert {e.asset_key.to_user_string(): e.passed for e in checks} == dict.fromkeys(ASSETS, True)

    assert opened.ledger_url is not None
    with opened.open_ledger() as ledger:
        entries = list(ledger.entries())
    assert [i for i, _ in entries] == list(range(len(entries)))  # gap-free
    records = [parse_record(i, leaf) for i, leaf in entries]
    nodes = {
        r.log_index for r in records if r.kind in ("ingest", "transform", "training", "snapshot")
    }
    assert nodes == set(by_materialization)  # no record without its materialization, none twice
    steps = Counter(
        (o["asset_key"], o.get("partition_key"))
        for r in records
        if r.kind in ("transform", "training")
        for o in [r.statement["predicate"]["buildDefinition"]["internalParameters"]["orchestrator"]]
    )
    assert steps == {
        **{("clean_corpus", s): 1 for s in SOURCES},
        **{(a, None): 1 for a in STEP_ASSETS[1:]},
    }
    sources = Counter(r.source_uri for r in records if r.kind == "ingest")
    assert sources == {s.uri: 1 for s in example.SOURCES}
    kinds = Counter(r.kind for r in records)
    assert (kinds["snapshot"], kinds["gate"]) == (1, 1)
    if appends_through is not None:  # every append but the snapshot's (reserve()) went through it
        assert appends_through.appended == len(entries) - kinds["snapshot"]
    assert not (home / "ledger.sqlite").exists()
    assert not list(home.rglob("*.sqlite"))  # indexes and store refs are in PostgreSQL too

    from prov_core.cli import main

    with pytest.raises(SystemExit) as verified:
        main(["--home", str(home), "verify"])
    assert verified.value.code == 0
