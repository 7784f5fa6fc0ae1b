"""The reference pipeline in Prefect: every task run a signed lineage node, training gated.

Run it from the repository root (a temporary Prefect server starts unless
``PREFECT_API_URL`` names one)::

    pip install -e . -e "integrations/prefect[example]"
    PROVGATE_HOME=.provgate-demo python -m example_pipelines.prefect_pipeline

Each task run's Artifacts tab shows its provgate node (log index, inputs, outputs,
verification, a link to the lineage page) and the flow run shows the run's lineage
(a Mermaid diagram); ``provgate ui`` (same ``PROVGATE_HOME``) serves the lineage pages.

The only provgate-specific lines are ``@provenance`` above each ``@task`` (with
``training=True`` on the model), ``@provenance_flow`` above the ``@flow``, the
``ingest``/``snapshot``/``pinned_uri`` helpers, and the inference tracer around the
answers; the data and model code is in ``example_pipelines.shared``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.context import get_run_context
from prov_prefect import (
    ProvenanceConfig,
    ingest,
    pinned_uri,
    provenance,
    provenance_flow,
    read_task_run_nodes,
    snapshot,
)

from example_pipelines.shared import (
    BANNED_POLICY,
    SOURCES,
    answer_all,
    build_index,
    clean,
    train,
)
from prov_core.content_index import RecordRef
from prov_core.inference import InferenceTracer, ModelRef
from prov_core.ingest import IngestRequest, IngestResult
from prov_core.policy import AllOf, Policy
from prov_core.snapshot_record import SnapshotResult
from prov_core.snapshot_record import read_snapshot as read_pinned
from prov_core.step import Artifact

REPO = "corpus"
"""The snapshot repository the cleaned corpus is committed to."""
_SOURCE = {s.name: s for s in SOURCES}
CONFIG = ProvenanceConfig()
"""Where every task records: ``$PROVGATE_HOME`` (else ``./.provgate``), read at run time."""


def _dir(workdir: str, name: str) -> Path:
    d = Path(workdir) / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def read_snapshot(uri: str) -> dict[str, bytes]:
    """Every object under a snapshot URI (``SCHEME://REPO/REF[/PATH]``): path -> bytes."""
    return read_pinned(uri, CONFIG.open_home())


@provenance(config=CONFIG)
@task(task_run_name="raw_documents[{name}]", version="1")
def raw_documents(name: str, workdir: str) -> IngestResult:
    """One bundled source, copied into the work directory and ingested row by row."""
    source = _SOURCE[name]
    copy = _dir(workdir, "raw") / source.path.name
    shutil.copyfile(source.path, copy)
    return ingest(
        copy,
        IngestRequest(source=source.uri, license=source.license, method=source.method),
        config=CONFIG,
    )


@provenance(config=CONFIG)
@task(task_run_name="clean_corpus[{name}]", version="1")
def clean_corpus(raw: IngestResult, name: str, workdir: str) -> Path:
    """The source's passages, normalized and deduplicated (its ingest record is the input)."""
    del raw  # the upstream run (its record is this step's input); the file is in workdir
    source = _SOURCE[name]
    return clean(
        _dir(workdir, "raw") / source.path.name,
        _dir(workdir, "clean") / source.path.name,
        prefix=f"{source.name}:",
    )


@provenance(config=CONFIG)
@task(task_run_name="corpus_snapshot", version="1")
def corpus_snapshot(cleaned: list[Path], workdir: str) -> SnapshotResult:
    """The cleaned corpus, committed to the embedded store: pinned by its commit id."""
    del cleaned  # the upstream runs the snapshot derives from; the files are in workdir
    return snapshot(_dir(workdir, "clean"), REPO, branch="main", prefix="clean", config=CONFIG)


@provenance(config=CONFIG, training=True)
@task(task_run_name="model", version="1")
def model(pinned: str, workdir: str) -> Path:
    """The classifier, trained only on the pinned snapshot the gate allowed."""
    out = _dir(workdir, "model") / "model.pkl"
    out.write_bytes(train(read_snapshot(pinned)))
    return out


@provenance(config=CONFIG)
@task(task_run_name="retrieval_index", version="1")
def retrieval_index(pinned: str, workdir: str) -> Path:
    """Every passage of the pinned snapshot, with the object it came from."""
    out = _dir(workdir, "index") / "index.json"
    out.write_bytes(build_index(read_snapshot(pinned)))
    return out


@provenance(config=CONFIG)
@task(task_run_name="answers", version="1")
def answers(
    model_path: Path, index_path: Path, training: RecordRef, pinned: str, workdir: str
) -> Path:
    """Each question answered with inference provenance; answers leaning on a banned source
    are blocked (the source was banned after the model was trained)."""
    logger = get_run_logger()
    # the model by its file's digest as a record names it; the tracer checks its training
    # record does (the node Prefect remembers carries the log index, not the subjects)
    digest = Artifact.from_path(model_path).sha256
    model_ref = ModelRef(digest, training=training, name="support-classifier")
    model_bytes = model_path.read_bytes()
    index = index_path.read_bytes()
    policy = AllOf([Policy.default_inference(), Policy.load(BANNED_POLICY)])
    with InferenceTracer.from_home(CONFIG.open_home(), policy=policy) as tracer:
        results = answer_all(tracer, model_ref, pinned, index, model_bytes, warn=logger.warning)
    out = _dir(workdir, "answers") / "answers.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return out


@provenance_flow(config=CONFIG)
@flow(name="provgate-example")
def pipeline(
    workdir: str = os.environ.get("PROVGATE_EXAMPLE_WORKDIR", ".provgate-example"),
) -> dict[str, str]:
    """ingest (three sources) -> clean -> snapshot -> model (gated) + index -> answers.

    Returns the flow run id, the training record's log index and the written files.
    """
    cleaned = [clean_corpus(raw_documents(s.name, workdir), s.name, workdir) for s in SOURCES]
    snap = corpus_snapshot(cleaned, workdir)
    pinned = pinned_uri(snap, REPO)
    trained = model(pinned, workdir, wait_for=[snap], return_state=True)
    model_path = trained.result()  # raises ProvenanceRefused if the gate refused
    # The training record (the node provgate recorded), for the answers' model reference.
    # Passed as a RecordRef, not the Attestation: Prefect links a task's inputs to upstream
    # runs by the id() of result components, and an Attestation's empty ``subjects=()``
    # (a singleton) would link to any upstream result holding an empty tuple.
    run_id = trained.state_details.task_run_id
    node = read_task_run_nodes([run_id])[run_id].attestation
    training = RecordRef(node.log_index, node.envelope_sha256, node.predicate_type)
    index_path = retrieval_index(pinned, workdir, wait_for=[snap])
    out = answers(model_path, index_path, training, pinned, workdir)
    return {
        "flow_run": str(get_run_context().flow_run.id),  # type: ignore[union-attr]
        "model_record": str(training.log_index),
        "model": str(model_path),
        "answers": str(out),
    }


def main() -> None:
    """Run the flow once and print the answers, and how to see the lineage."""
    result = pipeline()
    print(json.dumps(result, indent=2))
    for a in json.loads(Path(result["answers"]).read_text()):
        verdict = a["answer"] if a["allowed"] else "BLOCKED: " + "; ".join(a["reasons"])
        print(f"{a['question']}\n  -> {verdict}  (inference record {a['record']})")
    home = os.environ.get("PROVGATE_HOME", ".provgate")
    print(f"\nlineage of the model: provgate --home {home} trace {result['model_record']}")


if __name__ == "__main__":
    main()
