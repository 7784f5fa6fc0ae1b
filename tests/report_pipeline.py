"""A real lineage for the audit report and PROV export tests (every record signed, in the ledger).

::

    ingest A (a.txt, CC0-1.0, a hostile source URI) ──┐
    ingest B (b/: 2 files, CC-BY-4.0) ────────────────┴─> clean ─> clean.txt
    clean.txt by BLAKE3 + ingest C (c.txt, MIT) ─────────> merge ─> train/merged.txt
    ingest D (held-out.txt, Apache-2.0) ──────────────────────────> val/held-out.txt
    snapshot train/ ─┐
    snapshot val/ ───┴─> gate (PASSED) ─> train (training, val marked "validation") ─> model.bin
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prov_core.digest import digest_path
from prov_core.gate import evaluate_gate
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.snapshot_record import commit_snapshot
from prov_core.step import TRAINING_BUILD_TYPE, Artifact, Attestation, record_step

from .conftest import demo_home, rename_step

HOSTILE = "https://example.org/a<script>alert('x')</script>"


@dataclass
class Pipeline:
    home: Any
    recorder: Any
    ingests: dict[str, int]
    sources: dict[str, tuple[str, str]]  # key -> (source URI, SPDX)
    clean: Attestation
    merge: Attestation
    snap_train: Any
    snap_val: Any
    gate: Any
    train: Attestation
    model_b3: str
    model_sha256: str
    work: Path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@contextmanager
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    with demo_home(tmp_path) as (home, recorder, store, index, _):
        src = tmp_path / "src"
        b = src / "b"
        files = {
            "A": _write(src / "a.txt", "alpha reviews\n"),
            "B": b,
            "C": _write(src / "c.txt", "charlie\n"),
            "D": _write(src / "held-out.txt", "delta held out\n"),
        }
        _write(b / "one.md", "bravo one\n")
        _write(b / "two.md", "bravo two\n")
        sources = {
            "A": (HOSTILE, "CC0-1.0"),
            "B": ("s3://bucket/b", "CC-BY-4.0"),
            "C": ("https://example.org/c", "MIT"),
            "D": ("https://example.org/held-out", "Apache-2.0"),
        }
        atts: dict[str, Attestation] = {}
        for key, (source, lic) in sources.items():
            request = IngestRequest(
                source=source,
                license=lic,
                method="download",
                collector="eve <eve@example.org>" if key == "A" else "alice@example.org",
            )
            atts[key] = ingest_path(recorder, files[key], request, index=index).attestation
        work = tmp_path / "work"
        cleaned = _write(work / "clean.txt", "alpha bravo one bravo two\n")
        clean = record_step(
            recorder, "clean", inputs=[atts["A"], atts["B"]], outputs=[Artifact.from_path(cleaned)]
        )
        merged = _write(work / "data" / "train" / "merged.txt", "alpha bravo charlie\n")
        merge = record_step(
            recorder,
            "merge",
            inputs=[Artifact.from_path(cleaned), atts["C"]],
            outputs=[Artifact.from_path(merged)],
        )
        _write(work / "data" / "val" / "held-out.txt", "delta held out\n")
        snap_train = commit_snapshot(
            recorder, store, "demo", "main", work / "data" / "train", prefix="train", index=index
        )
        snap_val = commit_snapshot(
            recorder, store, "demo", "main", work / "data" / "val", prefix="val", index=index
        )
        assert snap_train.uncovered == ()
        assert snap_val.uncovered == ()
        uris = [
            f"provgate://demo/{snap_train.commit_id}/train",
            f"provgate://demo/{snap_val.commit_id}/val",
        ]
        decision = evaluate_gate(uris, home=home)
        assert decision.allowed, decision.reasons
        model = _write(work / "model.bin", "weights")
        train = record_step(
            recorder,
            "train",
            inputs=[snap_train.attestation, snap_val.attestation, decision.vsa],
            outputs=[Artifact.from_path(model)],
            build_type=TRAINING_BUILD_TYPE,
            parameters={"splits": {f"attestation:{snap_val.log_index}": "validation"}},
        )
        tree = digest_path(model)
        yield Pipeline(
            home=home,
            recorder=recorder,
            ingests={k: a.log_index for k, a in atts.items()},
            sources=sources,
            clean=clean,
            merge=merge,
            snap_train=snap_train,
            snap_val=snap_val,
            gate=decision,
            train=train,
            model_b3=tree.blake3,
            model_sha256=tree.sha256_subject,
            work=work,
        )


def tamper_step_name(home: Any, log_index: int, name: str) -> None:
    """Edit a step record's payload in the ledger's SQLite row, as an attacker with the file."""
    rename_step(home.ledger_path, log_index, name)
