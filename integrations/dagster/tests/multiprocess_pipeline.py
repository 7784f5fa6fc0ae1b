"""The reference pipeline as two jobs on Dagster's multiprocess executor (reconstructable).

Every asset runs in a process of its own, so records are appended and the
indexes caught up from several processes at once. The home and the work
directory come from the run config (:func:`run_config`). The
``provenance_verified`` checks are in ``defs`` but not in the jobs: the test
runs them afterwards, in-process (a process per check costs seconds each).
"""

from __future__ import annotations

from typing import Any

from dagster import (
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    JobDefinition,
    define_asset_job,
    execute_job,
    multiprocess_executor,
    reconstructable,
)
from prov_dagster import ProvenanceResource, provenance_checks

from example_pipelines import dagster_pipeline as example

INGEST = "ingest_sources"
"""INGEST materializes one source partition: raw_documents, then clean_corpus."""
DOWNSTREAM = "snapshot_train_answer"
"""DOWNSTREAM: the snapshot, then model and retrieval_index at once, then answers."""

defs = Definitions(
    assets=example.all_assets,
    asset_checks=provenance_checks(example.all_assets),
    jobs=[
        define_asset_job(
            INGEST,
            selection=AssetSelection.assets(
                example.raw_documents, example.clean_corpus
            ).without_checks(),
        ),
        define_asset_job(
            DOWNSTREAM,
            selection=AssetSelection.assets(
                example.corpus_snapshot, example.model, example.retrieval_index, example.answers
            ).without_checks(),
        ),
    ],
    resources={
        "provenance": ProvenanceResource.configure_at_launch(),
        "workdir": example.Workdir.configure_at_launch(),
    },
    # Each step a process of its own, forked from a server that imported this module once
    # (spawning a fresh interpreter per step costs seconds of imports).
    executor=multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": [__name__]}}}
    ),
)


def run_config(home: str, workdir: str) -> dict[str, Any]:
    """run_config points the resources at a provgate home and a work directory."""
    return {
        "resources": {
            "provenance": {"config": {"home": home, "lineage_url": None}},
            "workdir": {"config": {"path": workdir}},
        }
    }


def ingest_job() -> JobDefinition:
    """ingest_job is the partitioned job (one run per source)."""
    return defs.resolve_job_def(INGEST)


def downstream_job() -> JobDefinition:
    """downstream_job is the unpartitioned rest of the pipeline."""
    return defs.resolve_job_def(DOWNSTREAM)


def run(job: str, config: dict[str, Any], tags: dict[str, str]) -> list[int]:
    """run executes ``job`` on the instance of ``$DAGSTER_HOME``, each step out of process.

    Returns the pids its steps ran in.
    """
    jobs = {INGEST: ingest_job, DOWNSTREAM: downstream_job}
    with (
        DagsterInstance.get() as instance,
        execute_job(reconstructable(jobs[job]), instance, run_config=config, tags=tags) as result,
    ):
        if not result.success:
            raise RuntimeError(f"run {result.run_id} of {job} {tags} failed")
        return sorted(
            {
                e.pid
                for e in result.all_events
                if e.event_type == DagsterEventType.STEP_START and e.pid is not None
            }
        )
