"""`provgate sample prove` and `provgate trace --sample --down`, end to end through the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from prov_core._samples import check_sample_proof, sample_proof_from_json
from prov_core.digest import digest_path, read_table, sample_set_of_table
from prov_core.home import open_home
from prov_core.snapshot_samples import file_sample_id
from prov_core.statement import SNAPSHOT_V1
from prov_core.step import TRAINING_BUILD_TYPE, Artifact, Attestation, Recorder, record_step

from .conftest import Cli, tamper_statement


@pytest.fixture
def trained(cli: Cli, data: Path, tmp_path: Path) -> tuple[Cli, str, int]:
    """reviews.csv (rows) and docs/ (files) ingested, snapshotted, and one model trained on it."""
    assert cli("init").code == 0
    for path, source in ((data / "reviews.csv", "https://r.example"), (data / "docs", "file://d")):
        got = cli("ingest", str(path), "--source", source, "--license", "MIT")
        assert got.code == 0, got.err
    snap = cli("snapshot", "commit", str(data), "provgate://demo/main", "-m", "s", "--json")
    assert snap.code == 0, snap.err
    doc = snap.json()
    home = open_home(cli.home)
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    with Recorder.from_home(home) as recorder:
        snap_leaf = recorder.ledger.entry(doc["log_index"])
        snapshot_att = Attestation(
            doc["log_index"],
            hashlib.sha256(snap_leaf).hexdigest(),
            SNAPSHOT_V1,
            (),
            recorder.origin,
        )
        train = record_step(
            recorder,
            "train",
            inputs=[snapshot_att],
            outputs=[Artifact.from_path(model)],
            build_type=TRAINING_BUILD_TYPE,
        )
    return cli, doc["commit"], train.log_index


def test_row_in_snapshot_is_proven_present(trained: tuple[Cli, str, int], data: Path) -> None:
    cli, commit, _ = trained
    row = sample_set_of_table(read_table(data / "reviews.csv")).id_at(0).hex()
    got = cli("sample", "prove", row, "--snapshot", f"provgate://demo/{commit}", "--json")
    assert got.code == 0, got.err
    doc = got.json()
    assert doc["verdict"] == "present"
    member = [e for e in doc["evidence"] if e["proof"]["type"] == "membership"]
    assert [e["scope"] for e in member] == ["object reviews.csv"]
    proof = sample_proof_from_json(member[0]["proof"])
    assert check_sample_proof(proof, member[0]["proof"]["root"], member[0]["proof"]["count"])
    human = cli("sample", "prove", row, "--snapshot", f"provgate://demo/{commit}")
    assert human.out == "present\n"
    assert "member of object reviews.csv" in human.err


def test_absent_sample_exits_1(trained: tuple[Cli, str, int]) -> None:
    cli, commit, _ = trained
    got = cli("sample", "prove", "cd" * 32, "--snapshot", f"provgate://demo/{commit}")
    assert got.code == 1
    assert got.out == "absent\n"


def test_trace_sample_down_reaches_the_model(trained: tuple[Cli, str, int], data: Path) -> None:
    cli, _, model = trained
    row = sample_set_of_table(read_table(data / "reviews.csv")).id_at(2).hex()
    got = cli("trace", "--sample", row, "--down", "--format", "json")
    assert got.code == 0, got.err
    doc = got.json()
    assert doc["models"] == [model]
    assert doc["sample"]["records"] == [0]  # the reviews.csv ingest
    faq = next(f for f in digest_path(data / "docs").files if f.path == "faq.md")
    by_file = cli("trace", "--sample", file_sample_id(faq.blake3), "--down", "--format", "json")
    assert by_file.code == 0, by_file.err
    assert by_file.json()["models"] == [model]
    assert by_file.json()["sample"]["records"] == [1, 2]  # the docs ingest and the snapshot
    nobody = cli("trace", "--sample", "ef" * 32, "--down", "--format", "json")
    assert nobody.json()["models"] == []
    assert "no record's signed sample set holds" in nobody.err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("trace",), "give a TARGET or --sample"),
        (("trace", "--sample", "ab" * 32), "add --down"),
        (("trace", "--sample", "xyz", "--down"), "not hex"),
        (("sample", "prove", "ab" * 31, "--snapshot", "provgate://demo/main"), "64 hex"),
        (("sample", "prove", "ab" * 32, "--snapshot", "demo/main"), "not a snapshot URI"),
    ],
)
def test_bad_input(trained: tuple[Cli, str, int], args: tuple[str, ...], says: str) -> None:
    cli, _, _ = trained
    got = cli(*args)
    assert got.code == 2
    assert says in got.err


def test_export_openlineage_json_lines(trained: tuple[Cli, str, int], tmp_path: Path) -> None:
    cli, _, model = trained
    got = cli("export", "openlineage")
    assert got.code == 0, got.err
    lines = got.out.splitlines()
    assert len(lines) == model + 1  # one event per record
    out = tmp_path / "events.jsonl"
    assert cli("export", "openlineage", "--from", "1", "--to", "2", "-o", str(out)).code == 0
    assert len(out.read_text().splitlines()) == 2
    assert cli("export", "openlineage", "--from", "3", "--to", "1").code == 2


def test_report_and_prov_export(trained: tuple[Cli, str, int], tmp_path: Path) -> None:
    cli, commit, model = trained
    md = cli("report", str(model), "--format", "md")
    assert md.code == 0, md.err
    assert "https://r.example" in md.out
    assert commit in md.out
    out = tmp_path / "report.html"
    assert cli("report", str(model), "-o", str(out)).code == 0
    assert out.read_text().lstrip().lower().startswith("<!doctype html")
    assert cli("report", str(model), "--format", "pdf").code == 2
    prov = cli("export", "prov", str(model))
    assert prov.code == 0, prov.err
    doc = json.loads(prov.out)
    assert doc["entity"]
    assert doc["activity"]


def test_report_of_a_tampered_chain_exits_1(trained: tuple[Cli, str, int]) -> None:
    cli, _, model = trained

    def relicense(statement: dict[str, Any]) -> None:  # the reviews.csv ingest record
        statement["predicate"]["license"]["spdx"] = "0BSD"

    tamper_statement(cli.home / "ledger.sqlite", 0, relicense)
    got = cli("report", str(model), "--format", "md")
    assert got.code == 1
    assert "FAILED" in got.err
    assert "FAILED" in got.out
