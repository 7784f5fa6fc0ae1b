"""The provgate side of the experiment-tracker integrations' tests (MLflow, W&B).

A home with two of the reference pipeline's sources ingested and a pinned
snapshot of both: what a gated training run starts from. The MLflow and W&B
sessions import it as ``tests.tracker_world`` (their ``_world.py`` puts the
repository root on ``sys.path``); it imports nothing beyond prov_core, so it
runs in either environment.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

SOURCES = {
    "handbook.csv": ("https://docs.example.org/router-handbook", "CC-BY-4.0"),
    "forum.csv": ("https://forum.example.net/export/2026-01", "CC-BY-NC-4.0"),
}


@dataclass
class World:
    """World is the provgate side every test starts from."""

    root: Path
    home: Any
    ingests: dict[str, int]
    commit: str
    snapshot: int

    @property
    def pinned(self) -> str:
        return f"provgate://corpus/{self.commit}"

    def ledger_size(self) -> int:
        with self.home.open_ledger() as ledger:
            return int(ledger.size())

    def entry(self, log_index: int) -> tuple[bytes, dict[str, Any]]:
        from prov_core.records import decode_entry

        with self.home.open_ledger() as ledger:
            leaf = ledger.entry(log_index)
        return leaf, decode_entry(leaf)[1]


def build_world(root: Path) -> World:
    """build_world ingests the two sources and commits a snapshot of both (signed records)
    in a new home under ``root``."""
    from prov_core.home import init_home
    from prov_core.ingest import IngestRequest, ingest_path
    from prov_core.snapshot_record import commit_snapshot
    from prov_core.step import Recorder

    data = REPO / "example_pipelines" / "shared" / "data"
    corpus = root / "corpus"
    corpus.mkdir()
    home, _ = init_home(root / "provgate")
    ingests = {}
    with (
        Recorder.from_home(home) as recorder,
        home.open_store() as store,
        home.open_index() as index,
    ):
        for name, (source, license) in SOURCES.items():
            shutil.copyfile(data / name, corpus / name)
            request = IngestRequest(source=source, license=license, method="licensed-download")
            result = ingest_path(recorder, corpus / name, request, index=index)
            ingests[name] = result.attestation.log_index
        store.create_repository("corpus", "main")
        snap = commit_snapshot(recorder, store, "corpus", "main", corpus, index=index)
    return World(root, home, ingests, snap.commit_id, snap.log_index)
