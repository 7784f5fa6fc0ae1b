"""What the W&B integration's tests share: the provgate side and a small model.

(Imported by the tests and by ``_train.py`` as ``_world``; fixtures are in conftest.py.)
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]

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
    """build_world ingests the two sources and commits a snapshot of both (signed records)."""
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


def fit(home: Any, uri: str, out: Path) -> Path:
    """fit trains a majority-label baseline on the snapshot ``uri`` and writes it to ``out``
    (a small model without a numerical stack: what is tested is the linkage)."""
    from example_pipelines.shared import read_rows
    from prov_core.snapshot_record import read_snapshot

    labels = Counter(
        r["label"] for data in read_snapshot(uri, home).values() for r in read_rows(data)
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").write_text(json.dumps({"label": labels.most_common(1)[0][0]}))
    (out / "labels.json").write_text(json.dumps(dict(sorted(labels.items()))))
    return out


@dataclass
class Trained:
    """Trained is what the training script reported, and the syscalls it made (if traced)."""

    result: dict[str, Any]
    network_calls: list[str] | None  # None: strace is not installed

    @property
    def sync_file(self) -> Path:
        return Path(self.result["sync_file"])
