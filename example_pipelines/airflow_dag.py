"""The reference pipeline in Airflow: every task a signed lineage node, training gated.

Put this file in (or link it from) Airflow's dags folder, with the repository root on
``PYTHONPATH`` so ``example_pipelines.shared`` imports::

    pip install -e . -e "integrations/airflow[example]"
    ln -s "$PWD/example_pipelines/airflow_dag.py" "$AIRFLOW_HOME/dags/"
    AIRFLOW__PROVGATE__HOME=$PWD/.provgate-demo PYTHONPATH=$PWD airflow standalone

and trigger ``provgate_example`` (its ``workdir`` param is where the files go; default
``$PROVGATE_EXAMPLE_WORKDIR`` or ``.provgate-example``). Each task instance then has a
Provenance tab; ``provgate ui`` (same home) serves the lineage pages.

The DAG: one ``ProvenanceIngestOperator`` per bundled source, each followed by its own
``@task.provenance`` clean task (each cleaned file descends from its source alone), a
``ProvenanceSnapshotOperator`` committing the cleaned corpus, the gated
``ProvenanceTrainingOperator`` reading only the pinned snapshot the gate allowed, a
``@task.provenance`` retrieval index over the same snapshot, and the answers task, which
answers each question with inference provenance under the banned-sources policy: the
answer leaning on the later-banned source is blocked (and the block recorded). The data
and model code is in ``example_pipelines.shared``, as for the Dagster example.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task
from prov_airflow import (
    XCOM_ATTESTATION,
    ProvenanceIngestOperator,
    ProvenanceSnapshotOperator,
    ProvenanceTrainingOperator,
    Settings,
)

from example_pipelines.shared import (
    BANNED_POLICY,
    SOURCES,
    answer_all,
    build_index,
    clean,
    train,
)

DAG_ID = "provgate_example"
WORKDIR = "{{ params.workdir }}"
"""WORKDIR is where the pipeline writes its files (cleaned data, model, index, answers)."""
_SOURCE = {s.name: s for s in SOURCES}

log = logging.getLogger(__name__)


def _dir(workdir: str, name: str) -> Path:
    d = Path(workdir) / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def read_snapshot(uri: str) -> dict[str, bytes]:
    """Every object under a pinned snapshot URI (``SCHEME://REPO/COMMIT[/PATH]``): path -> bytes."""
    from prov_core.snapshot_record import read_snapshot as read

    return read(uri, Settings.load().open_home())


@task.provenance
def clean_corpus(source: str, workdir: str) -> Path:
    """The source's passages, normalized and deduplicated."""
    s = _SOURCE[source]
    return clean(s.path, _dir(workdir, "clean") / s.path.name, prefix=f"{s.name}:")


def train_model(workdir: str, pinned: list[str] | None = None) -> Path:
    """The classifier, trained only on the pinned snapshot(s) the gate allowed."""
    corpus: dict[str, bytes] = {}
    for uri in pinned or ():
        corpus.update(read_snapshot(uri))
    out = _dir(workdir, "model") / "model.pkl"
    out.write_bytes(train(corpus))
    return out


@task.provenance
def retrieval_index(pinned: str, workdir: str) -> Path:
    """Every passage of the pinned snapshot, with the object it came from."""
    out = _dir(workdir, "index") / "index.json"
    out.write_bytes(build_index(read_snapshot(pinned)))
    return out


@task.provenance
def answers(model: dict[str, str], index: dict[str, str], workdir: str, ti: Any = None) -> Path:
    """Each question answered with inference provenance; answers leaning on a banned source
    are blocked (the source was banned after the model was trained)."""
    from prov_core.inference import InferenceTracer, ModelRef
    from prov_core.nodes import attestation_from_dict
    from prov_core.policy import AllOf, Policy
    from prov_core.snapshots.base import SnapshotURI

    pinned = SnapshotURI.parse(ti.xcom_pull(task_ids="corpus_snapshot", key="return_value"))
    commit_uri = f"{pinned.scheme}://{pinned.repository}/{pinned.ref}"
    training = attestation_from_dict(ti.xcom_pull(task_ids="model", key=XCOM_ATTESTATION))
    model_ref = ModelRef(training.subjects[0].sha256, training=training, name="support-classifier")
    model_bytes = Path(model["model.pkl"]).read_bytes()
    index_bytes = Path(index["index.json"]).read_bytes()
    policy = AllOf([Policy.default_inference(), Policy.load(BANNED_POLICY)])
    with InferenceTracer.from_home(Settings.load().open_home(), policy=policy) as tracer:
        results = answer_all(
            tracer, model_ref, commit_uri, index_bytes, model_bytes, warn=log.warning
        )
    out = _dir(workdir, "answers") / "answers.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return out


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["provgate", "example"],
    params={
        "workdir": Param(
            os.environ.get("PROVGATE_EXAMPLE_WORKDIR", ".provgate-example"),
            type="string",
            description="Where the pipeline writes its files.",
        )
    },
)
def provgate_example() -> None:
    """ingest (three sources) -> clean -> snapshot -> gated training / retrieval index -> answers"""
    cleaned = []
    for source in SOURCES:
        ingest = ProvenanceIngestOperator(
            task_id=f"ingest_{source.name}",
            path=str(source.path),
            source=source.uri,
            license=source.license,
            request_fields={"method": source.method},
        )
        cleaned_source = clean_corpus.override(task_id=f"clean_{source.name}")(source.name, WORKDIR)
        ingest >> cleaned_source
        cleaned.append(cleaned_source)
    snapshot = ProvenanceSnapshotOperator(
        task_id="corpus_snapshot", path=f"{WORKDIR}/clean", repo="corpus", prefix="clean"
    )
    model = ProvenanceTrainingOperator(
        task_id="model", python_callable=train_model, op_kwargs={"workdir": WORKDIR}
    )
    cleaned >> snapshot >> model
    index = retrieval_index(snapshot.output, WORKDIR)
    answers(model.output, index, WORKDIR)


provgate_example()
