"""Lineage: upstream/downstream walks, "which models used source X", verify_chain, the CLI.

The pipeline (every record real, signed and in the ledger)::

    ingest A (a.txt, CC0-1.0) ─────────────┐ attestation
    ingest B (b/: 2 files, CC-BY-4.0) ─────┴ by BLAKE3 ──> clean (transform) ─> clean.txt
    clean.txt by BLAKE3 + ingest C (c.txt, MIT, attestation) ──> merge (transform) ─> out/merged.txt
    snapshot of out/ ──> train (training) ─> model.bin
    ingest D (d.txt, MIT, a banned source) + a.txt by BLAKE3 ──> train-small (training) ─> small.bin
    ingest E (e.txt, unused)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prov_core.digest import digest_path
from prov_core.errors import InputError, NotFoundError
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.lineage import open_lineage
from prov_core.lineage_index import LineageIndex, parse_record
from prov_core.snapshot_record import commit_snapshot
from prov_core.step import TRAINING_BUILD_TYPE, Artifact, Attestation, record_step

from .conftest import Cli, demo_home, rename_step


@dataclass
class Pipeline:
    home: Any
    cli: Cli
    ingests: dict[str, int]
    clean: Attestation
    merge: Attestation
    snapshot: Any
    train: Attestation
    small: Attestation
    model_b3: str
    small_b3: str
    a_b3: str


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def pipe(tmp_path: Path, capsys: pytest.CaptureFixture[str], home_db: str) -> Iterator[Pipeline]:
    with demo_home(tmp_path) as (home, recorder, store, index, _):
        src = tmp_path / "src"
        a = _write(src / "a.txt", "alpha reviews\n")
        b = src / "b"
        _write(b / "one.md", "bravo one\n")
        _write(b / "two.md", "bravo two\n")
        c = _write(src / "c.txt", "charlie\n")
        d = _write(src / "d.txt", "delta scraped\n")
        e = _write(src / "e.txt", "echo never used\n")
        sources = {
            "A": (a, "https://example.org/a", "CC0-1.0"),
            "B": (b, "https://example.org/b", "CC-BY-4.0"),
            "C": (c, "s3://bucket/c", "MIT"),
            "D": (d, "https://banned.example/d", "MIT"),
            "E": (e, "https://example.org/e", "Apache-2.0"),
        }
        ingests: dict[str, int] = {}
        atts: dict[str, Attestation] = {}
        for key, (path, source, lic) in sources.items():
            result = ingest_path(
                recorder, path, IngestRequest(source=source, license=lic), index=index
            )
            atts[key] = result.attestation
            ingests[key] = result.attestation.log_index
        work = tmp_path / "work"
        cleaned = _write(work / "clean.txt", "alpha bravo one bravo two\n")
        clean = record_step(
            recorder,
            "clean",
            inputs=[atts["A"], *(Artifact.from_path(p) for p in sorted(b.iterdir()))],
            outputs=[Artifact.from_path(cleaned)],
        )
        merged = _write(work / "out" / "merged.txt", "alpha bravo charlie\n")
        merge = record_step(
            recorder,
            "merge",
            inputs=[Artifact.from_path(cleaned), atts["C"]],
            outputs=[Artifact.from_path(merged)],
        )
        snap = commit_snapshot(recorder, store, "demo", "main", work / "out", index=index)
        assert snap.uncovered == ()
        model = _write(work / "model.bin", "weights of the big model")
        train = record_step(
            recorder,
            "train",
            inputs=[snap.attestation],
            outputs=[Artifact.from_path(model)],
            build_type=TRAINING_BUILD_TYPE,
        )
        small = _write(work / "small.bin", "weights of the small model")
        small_step = record_step(
            recorder,
            "train-small",
            inputs=[atts["D"], Artifact.from_path(a)],
            outputs=[Artifact.from_path(small)],
            build_type=TRAINING_BUILD_TYPE,
        )
        yield Pipeline(
            home=home,
            cli=Cli(home=home.path, capsys=capsys),
            ingests=ingests,
            clean=clean,
            merge=merge,
            snapshot=snap,
            train=train,
            small=small_step,
            model_b3=digest_path(model).blake3,
            small_b3=digest_path(small).blake3,
            a_b3=digest_path(a).blake3,
        )


def _ingest_indices(graph: Any) -> set[int]:
    return {n.log_index for n in graph.of_kind("ingest")}


# -- walks --------------------------------------------------------------------------


def test_trace_from_the_model_reaches_exactly_its_ingest_records(pipe: Pipeline) -> None:
    with open_lineage(pipe.home) as lineage:
        up = lineage.upstream(f"blake3:{pipe.model_b3}")
    assert up.roots == (pipe.train.log_index,)
    assert _ingest_indices(up) == {pipe.ingests[k] for k in "ABC"}
    assert set(up.nodes) == {
        pipe.train.log_index,
        pipe.snapshot.log_index,
        pipe.merge.log_index,
        pipe.clean.log_index,
        *(pipe.ingests[k] for k in "ABC"),
    }
    edges = {(e.child, e.parent, e.kind) for e in up.edges}
    assert (pipe.train.log_index, pipe.snapshot.log_index, "input") in edges
    assert (pipe.snapshot.log_index, pipe.merge.log_index, "derived-from") in edges
    assert (pipe.merge.log_index, pipe.clean.log_index, "input") in edges  # by BLAKE3
    assert (pipe.clean.log_index, pipe.ingests["B"], "input") in edges  # directory ingest
    b = up.nodes[pipe.ingests["B"]]
    assert (b.source_uri, b.license) == ("https://example.org/b", "CC-BY-4.0")


def test_every_target_form_resolves(pipe: Pipeline) -> None:
    commit = pipe.snapshot.commit_id
    with open_lineage(pipe.home) as lineage:
        by_index = lineage.upstream(pipe.train.log_index)
        assert lineage.upstream(str(pipe.train.log_index)).nodes == by_index.nodes
        assert lineage.upstream(pipe.model_b3).nodes == by_index.nodes  # bare hex
        sha = pipe.train.subjects[0].sha256
        assert lineage.upstream(f"sha256:{sha}").roots == (pipe.train.log_index,)
        snap = lineage.upstream(f"provgate://demo/{commit}")
        assert snap.roots == (pipe.snapshot.log_index,)
        assert _ingest_indices(snap) == {pipe.ingests[k] for k in "ABC"}
        # a file inside a directory ingest: found through the content index
        one = digest_path(pipe.home.path.parent / "src" / "b" / "one.md").blake3
        assert lineage.upstream(one).roots == (pipe.ingests["B"],)


def test_downstream_from_one_source_reaches_the_models(pipe: Pipeline) -> None:
    with open_lineage(pipe.home) as lineage:
        down = lineage.downstream(pipe.ingests["A"])
        assert {n.log_index for n in down.of_kind("training")} == {
            pipe.train.log_index,
            pipe.small.log_index,
        }
        assert pipe.snapshot.log_index in down.nodes
        down_b = lineage.downstream(pipe.ingests["B"])
        assert [n.log_index for n in down_b.of_kind("training")] == [pipe.train.log_index]
        assert lineage.downstream(pipe.ingests["E"]).nodes.keys() == {pipe.ingests["E"]}


def test_which_models_used_a_source_license_or_key(pipe: Pipeline) -> None:
    train, small = pipe.train.log_index, pipe.small.log_index
    with open_lineage(pipe.home) as lineage:

        def models(**kw: str) -> set[int]:
            return {n.log_index for n in lineage.models(**kw)}

        assert models(source="https://example.org/b") == {train}
        assert models(source="https://banned.example/*") == {small}
        assert models(source="https://example.org/*") == {train, small}
        assert models(source="s3://*") == {train}
        assert models(source="https://example.org/e") == set()
        assert models(license="MIT") == {train, small}
        assert models(license="CC-BY-*") == {train}
        assert models(source="https://example.org/*", license="Apache-2.0") == set()
        keyid = pipe.home.trust().active()
        assert models(keyid=keyid) == {train, small}
        assert models(keyid="0" * 64) == set()
        with pytest.raises(InputError, match="at least one"):
            lineage.models()


@pytest.mark.sqlite_only
def test_index_catches_up_incrementally_and_rebuilds_for_another_log(
    pipe: Pipeline, tmp_path: Path
) -> None:
    with open_lineage(pipe.home) as lineage:
        lineage.upstream(pipe.train.log_index)
        size = lineage.ledger.size()
        assert lineage.index.indexed_to() == size
        assert lineage.catch_up() == 0
    # A lineage index of another ledger (another home) is dropped and rebuilt.
    with demo_home(tmp_path / "other") as (other, recorder, _, index, data):
        ingest_path(
            recorder, data / "docs", IngestRequest(source="x://y", license="MIT"), index=index
        )
        foreign = LineageIndex(other.lineage_path)
        foreign.catch_up(recorder.ledger)
        foreign.close()
    pipe.home.lineage_path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(pipe.home.lineage_path) + suffix).unlink(missing_ok=True)
    (other.lineage_path).rename(pipe.home.lineage_path)
    with open_lineage(pipe.home) as lineage:
        up = lineage.upstream(f"blake3:{pipe.model_b3}")
        assert _ingest_indices(up) == {pipe.ingests[k] for k in "ABC"}
        assert lineage.index.indexed_to() == lineage.ledger.size()


def test_parse_record_never_raises_on_garbage() -> None:
    rec = parse_record(7, b"not json at all")
    assert (rec.kind, rec.refs, rec.log_index) == ("malformed", (), 7)


# -- verify_chain ---------------------------------------------------------------------


def test_untouched_chain_verifies(pipe: Pipeline) -> None:
    with open_lineage(pipe.home) as lineage:
        report = lineage.verify_chain(f"blake3:{pipe.model_b3}")
    assert report.ok, report.problems
    assert set(report.records) == {
        pipe.train.log_index,
        pipe.snapshot.log_index,
        pipe.merge.log_index,
        pipe.clean.log_index,
        *(pipe.ingests[k] for k in "ABC"),
    }
    train = report.records[pipe.train.log_index]
    assert train.checks == {
        "link": "unchecked",
        "signature": "ok",
        "trust": "ok",
        "inclusion": "ok",
        "content": "ok",
    }
    assert report.records[pipe.clean.log_index].checks["link"] == "ok"
    result = pipe.cli("verify", "--artifact", f"blake3:{pipe.model_b3}")
    assert result.code == 0, result.err
    assert "OK: chain of custody" in result.err


def _tamper_step_name(home: Any, log_index: int, name: str) -> None:
    rename_step(home, log_index, name)


@pytest.mark.parametrize("indexed_before", [True, False])
def test_tampered_transform_fails_verify_naming_that_record(
    pipe: Pipeline, indexed_before: bool
) -> None:
    target = f"blake3:{pipe.model_b3}"
    if indexed_before:  # the index holds the record as it was signed
        assert pipe.cli("trace", target).code == 0
    _tamper_step_name(pipe.home, pipe.clean.log_index, "clean-but-not-really")
    result = pipe.cli("verify", "--artifact", target, "--json")
    assert result.code == 1, result.out
    doc = result.json()
    assert doc["ok"] is False
    assert doc["broken"] == [pipe.clean.log_index]
    checks = {p["check"] for p in doc["problems"]}
    assert {"signature", "inclusion"} <= checks
    assert all(p["log_index"] == pipe.clean.log_index for p in doc["problems"])
    human = pipe.cli("verify", "--artifact", target)
    assert human.code == 1
    assert f"broken: record(s) {pipe.clean.log_index}" in human.err
    assert f"transform record {pipe.clean.log_index}" in human.err
    # the other model's chain does not pass through it and still verifies
    assert pipe.cli("verify", "--artifact", pipe.small_b3).code == 0


@pytest.mark.sqlite_only
def test_a_replaced_record_breaks_the_link_its_child_signed(pipe: Pipeline) -> None:
    """A record swapped for another validly signed one: the child's signed sha256 names it."""
    db = sqlite3.connect(pipe.home.ledger_path, isolation_level=None)
    (other,) = db.execute("SELECT leaf FROM entries WHERE idx = ?", (pipe.ingests["E"],)).fetchone()
    db.execute("UPDATE entries SET leaf = ? WHERE idx = ?", (other, pipe.ingests["C"]))
    db.close()
    with open_lineage(pipe.home) as lineage:
        report = lineage.verify_chain(pipe.model_b3)
    assert not report.ok
    assert report.broken == [pipe.ingests["C"]]
    assert {p.check for p in report.problems} == {"link", "inclusion"}


def test_revoked_key_breaks_every_record_it_signed(pipe: Pipeline) -> None:
    keyid = pipe.home.trust().active()
    trust = pipe.home.trust()
    trust.revoke(keyid, "key leaked")
    trust.save(pipe.home.trust_path)
    with open_lineage(pipe.home) as lineage:
        report = lineage.verify_chain(pipe.small_b3)
    assert not report.ok
    assert {p.check for p in report.problems} >= {"trust", "checkpoint"}
    assert report.broken == sorted([pipe.small.log_index, pipe.ingests["A"], pipe.ingests["D"]])


# -- the CLI --------------------------------------------------------------------------


def test_cli_trace_formats(pipe: Pipeline) -> None:
    target = f"blake3:{pipe.model_b3}"
    doc = pipe.cli("trace", target, "--format", "json").json()
    assert doc["direction"] == "up"
    ingests = {n["log_index"] for n in doc["nodes"] if n["kind"] == "ingest"}
    assert ingests == {pipe.ingests[k] for k in "ABC"}
    tree = pipe.cli("trace", target)
    assert tree.code == 0
    for k in "ABC":
        assert f"{pipe.ingests[k]} ingest" in tree.out
    assert "https://banned.example/d" not in tree.out
    assert "3 ingest record(s), 1 model(s)" in tree.err
    dot = pipe.cli("trace", str(pipe.ingests["A"]), "--down", "--format", "dot")
    assert dot.code == 0
    assert dot.out.startswith("digraph lineage {")
    assert f"r{pipe.ingests['A']} -> r{pipe.clean.log_index}" in dot.out
    assert f"r{pipe.small.log_index} [label=" in dot.out
    down = pipe.cli(
        "trace", f"provgate://demo/{pipe.snapshot.commit_id}", "--down", "--format", "json"
    )
    assert {n["kind"] for n in down.json()["nodes"]} == {"snapshot", "training"}


@pytest.mark.sqlite_only  # refused input: the home's database does not matter
@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("0" * 64, "no record in the ledger names the digest"),
        ("blake3:" + "f" * 64, "no record in the ledger names the blake3 digest"),
        ("md5:" + "f" * 64, "is not a lineage target"),
        ("not-a-digest", "is not a lineage target"),
        ("99999", "out of range"),
        ("provgate://X/abc", "repository 'X'"),
        ("ftp://demo/abc", "not a snapshot URI"),
        ("provgate://demo/main", "not a commit id"),
        ("provgate://demo/" + "a" * 64, "no snapshot record"),
    ],
)
def test_bad_targets_are_clear_errors(pipe: Pipeline, target: str, message: str) -> None:
    for args in (("trace", target), ("verify", "--artifact", target)):
        result = pipe.cli(*args)
        assert result.code == 2, (args, result.out, result.err)
        assert message in result.err
        assert "Traceback" not in result.err
    with open_lineage(pipe.home) as lineage, pytest.raises((InputError, NotFoundError)):
        lineage.resolve(target)


@pytest.mark.sqlite_only  # refused input: the home's database does not matter
def test_bad_format_is_a_usage_error(pipe: Pipeline) -> None:
    result = pipe.cli("trace", "0", "--format", "svg")
    assert result.code == 2
    assert "choose tree, json or dot" in result.err


def test_digest_stays_lean() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from prov_core.cli import main\n"
        "try: main(['digest', '--help'])\n"
        "except SystemExit: pass\n"
        "bad = [m for m in ('typer', 'rich', 'prov_core.lineage', 'sqlite3') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gate_decisions_and_unresolved_inputs(pipe: Pipeline, tmp_path: Path) -> None:
    """A VSA names what it verified; a step whose input no record produced is a broken link."""
    from prov_core.statement import ResourceDescriptor, Statement, Subject, VerificationSummary
    from prov_core.step import Recorder

    snap = pipe.snapshot.attestation
    vsa = VerificationSummary(
        verifier_id="https://provgate.dev/gate",
        time_verified="2026-01-01T00:00:00Z",
        resource_uri=f"provgate://demo/{pipe.snapshot.commit_id}",
        policy=ResourceDescriptor(name="policy", digest={"sha256": "ab" * 32}),
        passed=True,
        input_attestations=[
            ResourceDescriptor(
                name=f"attestation:{snap.log_index}",
                digest={"sha256": snap.envelope_sha256},
                annotations={"logIndex": snap.log_index},
            )
        ],
    )
    orphan = _write(tmp_path / "orphan.txt", "never ingested\n")
    out = _write(tmp_path / "orphan-out.txt", "derived from nothing recorded\n")
    with Recorder.from_home(pipe.home) as recorder:
        gate = recorder.record(
            Statement(
                [Subject("decision", snap.subjects[0].sha256)], vsa.predicate_type, vsa.to_dict()
            )
        )
        step = record_step(
            recorder,
            "from-nowhere",
            inputs=[Artifact.from_path(orphan)],
            outputs=[Artifact.from_path(out)],
        )
    with open_lineage(pipe.home) as lineage:
        down = lineage.downstream(pipe.ingests["C"])
        assert gate.log_index in down.nodes
        assert down.nodes[gate.log_index].kind == "gate"
        assert (gate.log_index, snap.log_index, "verified") in {
            (e.child, e.parent, e.kind) for e in down.edges
        }
        report = lineage.verify_chain(step.log_index)
    assert not report.ok
    assert report.broken == [step.log_index]
    assert {p.check for p in report.problems} == {"input", "ingest"}
    assert "'orphan.txt'" in report.problems[0].message
