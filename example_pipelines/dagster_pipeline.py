"""The reference pipeline in Dagster: every asset a signed lineage node, training gated.

Run it from the repository root::

    pip install -e . -e "integrations/dagster[example]" dagster-webserver
    PROVGATE_HOME=.provgate-demo dagster dev -f example_pipelines/dagster_pipeline.py

Materialize ``raw_documents`` and ``clean_corpus`` for every partition (one per source,
a backfill), then the rest; each asset's page shows the provgate metadata (log index,
statement, digest, parents, a link to the lineage page) and the ``provenance_verified``
check. ``provgate ui`` (same ``PROVGATE_HOME``) serves the lineage page the links open.

The only provgate-specific lines are ``@provenance_asset`` (instead of ``@asset``), the
``Ingest``/``Snapshot`` return values, ``training=True`` on the model, and the resource
and checks in ``Definitions``; the data and model code is in ``example_pipelines.shared``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    Definitions,
    StaticPartitionsDefinition,
)
from prov_dagster import (
    Ingest,
    ProvenanceResource,
    Snapshot,
    provenance_asset,
    provenance_checks,
)

from example_pipelines.shared import (
    BANNED_POLICY,
    SOURCES,
    answer_all,
    build_index,
    clean,
    train,
)
from prov_core.ingest import IngestRequest
from prov_core.policy import AllOf, Policy

GROUP = "provgate_example"


class Workdir(ConfigurableResource):  # type: ignore[misc]
    """Where the pipeline writes its files (raw copies, cleaned data, model, index, answers)."""

    path: str = os.environ.get("PROVGATE_EXAMPLE_WORKDIR", ".provgate-example")

    def dir(self, name: str) -> Path:
        d = Path(self.path) / name
        d.mkdir(parents=True, exist_ok=True)
        return d


sources = StaticPartitionsDefinition([s.name for s in SOURCES])
"""One partition per source: each cleaned file descends from its own source only."""
_SOURCE = {s.name: s for s in SOURCES}


@provenance_asset(partitions_def=sources, group_name=GROUP, code_version="1")
def raw_documents(context: AssetExecutionContext, workdir: Workdir) -> Ingest:
    """One bundled source, copied into the work directory and ingested row by row."""
    source = _SOURCE[context.partition_key]
    copy = workdir.dir("raw") / source.path.name
    shutil.copyfile(source.path, copy)
    return Ingest(
        copy, IngestRequest(source=source.uri, license=source.license, method=source.method)
    )


@provenance_asset(deps=[raw_documents], partitions_def=sources, group_name=GROUP, code_version="1")
def clean_corpus(context: AssetExecutionContext, workdir: Workdir) -> Path:
    """The source's passages, normalized and deduplicated."""
    source = _SOURCE[context.partition_key]
    return clean(
        workdir.dir("raw") / source.path.name,
        workdir.dir("clean") / source.path.name,
        prefix=f"{source.name}:",
    )


@provenance_asset(deps=[clean_corpus], group_name=GROUP)
def corpus_snapshot(workdir: Workdir) -> Snapshot:
    """The cleaned corpus, committed to the embedded store: pinned by its commit id."""
    return Snapshot(workdir.dir("clean"), repo="corpus", branch="main", prefix="clean")


@provenance_asset(deps=[corpus_snapshot], group_name=GROUP, code_version="1", training=True)
def model(pinned: list[str], workdir: Workdir, provenance: ProvenanceResource) -> Path:
    """The classifier, trained only on the pinned snapshot the gate allowed."""
    corpus: dict[str, bytes] = {}
    for uri in pinned:
        corpus.update(provenance.read_snapshot(uri))
    out = workdir.dir("model") / "model.pkl"
    out.write_bytes(train(corpus))
    return out


@provenance_asset(deps=[corpus_snapshot], group_name=GROUP, code_version="1")
def retrieval_index(
    context: AssetExecutionContext, workdir: Workdir, provenance: ProvenanceResource
) -> Path:
    """Every passage of the pinned snapshot, with the object it came from."""
    uri = provenance.snapshot_uri(context, corpus_snapshot.key)
    out = workdir.dir("index") / "index.json"
    out.write_bytes(build_index(provenance.read_snapshot(uri)))
    return out


@provenance_asset(deps=[model, retrieval_index], group_name=GROUP, code_version="1")
def answers(
    context: AssetExecutionContext, workdir: Workdir, provenance: ProvenanceResource
) -> Path:
    """Each question answered with inference provenance; answers leaning on a banned source
    are blocked (the source was banned after the model was trained)."""
    commit_uri = provenance.snapshot_uri(context, corpus_snapshot.key)
    model_ref = provenance.model(context, model.key, name="support-classifier")
    model_bytes = (workdir.dir("model") / "model.pkl").read_bytes()
    index = (workdir.dir("index") / "index.json").read_bytes()
    policy = AllOf([Policy.default_inference(), Policy.load(BANNED_POLICY)])
    with provenance.tracer(policy=policy) as tracer:
        results = answer_all(
            tracer, model_ref, commit_uri, index, model_bytes, warn=context.log.warning
        )
    out = workdir.dir("answers") / "answers.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return out


all_assets = [raw_documents, clean_corpus, corpus_snapshot, model, retrieval_index, answers]

defs = Definitions(
    assets=all_assets,
    asset_checks=provenance_checks(all_assets),
    resources={
        "provenance": ProvenanceResource(home=os.environ.get("PROVGATE_HOME")),
        "workdir": Workdir(),
    },
)
