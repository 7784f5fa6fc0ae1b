"""A small real lineage for the web view's tests and screenshots (every record signed).

::

    ingest reviews.csv (rows, CC0-1.0) ──┐
    ingest docs/ (3 files, CC-BY-4.0) ───┴─> clean (transform) ─> out/corpus.txt
    snapshot of out/ ──> train (training, run id "run-42") ─> model.bin
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prov_core.digest import digest_path
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.snapshot_record import commit_snapshot
from prov_core.step import TRAINING_BUILD_TYPE, Artifact, record_step
from tests.conftest import demo_home, rename_step

SOURCES = {
    "reviews": ("reviews.csv", "https://example.org/reviews.csv", "CC0-1.0"),
    "docs": ("docs", "https://docs.example.org/handbook", "CC-BY-4.0"),
}
RUN_ID = "run-42"


@dataclass
class Pipeline:
    home: Any
    ingests: dict[str, int]
    clean: int
    snapshot: int
    commit_id: str
    train: int
    model_b3: str


@contextmanager
def built(tmp_path: Path) -> Iterator[Pipeline]:
    """built yields a fresh home holding the pipeline of the module docstring."""
    with demo_home(tmp_path) as (home, recorder, store, index, data):
        atts = {}
        for key, (name, source, lic) in SOURCES.items():
            request = IngestRequest(source=source, license=lic, method="download")
            atts[key] = ingest_path(recorder, data / name, request, index=index).attestation
        work = tmp_path / "work"
        (work / "out").mkdir(parents=True)
        corpus = work / "out" / "corpus.txt"
        corpus.write_text("cleaned reviews and handbook text\n")
        clean = record_step(
            recorder,
            "clean",
            inputs=list(atts.values()),
            outputs=[Artifact.from_path(corpus)],
            orchestrator={"name": "python", "run_id": "run-41"},
        )
        snap = commit_snapshot(recorder, store, "demo", "main", work / "out", index=index)
        model = work / "model.bin"
        model.write_bytes(b"weights of the review classifier")
        train = record_step(
            recorder,
            "train",
            inputs=[snap.attestation],
            outputs=[Artifact.from_path(model)],
            build_type=TRAINING_BUILD_TYPE,
            orchestrator={"name": "python", "run_id": RUN_ID},
        )
        yield Pipeline(
            home=home,
            ingests={k: a.log_index for k, a in atts.items()},
            clean=clean.log_index,
            snapshot=snap.log_index,
            commit_id=snap.commit_id,
            train=train.log_index,
            model_b3=digest_path(model).blake3,
        )


def tamper_step(home: Any, log_index: int) -> None:
    """tamper_step edits a step record's payload in the ledger's SQLite row (leaf column)."""
    rename_step(home, log_index, "not-clean")
