"""Synthetic data chains: generation records, the walk through the generator, and the rules.

A real chain on the embedded store and SQLite ledger: a corpus is ingested,
snapshotted and passed by the gate; a generator is trained on it (a training
step naming the gate decision and the snapshot); the generator writes
synthetic rows from ingested seed rows (a generation record); a training set
mixes real and synthetic files. The gate walks synthetic files through the
generation to the seeds and to the generator's training data, and the
shipped example policies refuse or allow on what it finds.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prov_core.content_index import ContentIndex
from prov_core.errors import InputError
from prov_core.gate import GateDecision, evaluate_gate
from prov_core.home import Home
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.lineage import open_lineage
from prov_core.policy import Policy
from prov_core.records import decode_entry
from prov_core.snapshot_record import SnapshotResult, commit_snapshot
from prov_core.snapshots.base import SnapshotURI
from prov_core.snapshots.local import LocalStore
from prov_core.statement import INGEST_V1
from prov_core.step import (
    GENERATION_BUILD_TYPE,
    TRAINING_BUILD_TYPE,
    Artifact,
    Attestation,
    Recorder,
)
from prov_core.synthetic import Prompt, record_generation

from .conftest import REPO, demo_home, load_example, tamper_statement

POLICIES = REPO / "examples" / "policies"
LICENSED = POLICIES / "synthetic-licensed-sources.toml"
FRACTION = POLICIES / "synthetic-fraction.toml"
DEPTH = POLICIES / "generation-depth.toml"


# The example's building blocks: its CSV writer and its record of a gated training.
example = load_example("synthetic_chain")
write_rows = example.write_rows

REAL = [(f"real review {i}", "pos" if i % 2 else "neg") for i in range(6)]
MORE = [(f"another review {i}", "neg") for i in range(6)]
SEEDS = [("great phone", "pos"), ("broke in a week", "neg")]
CORPUS = [(f"corpus sentence {i}", "pos") for i in range(8)]


@dataclass
class Chain:
    """One home and the records of a synthetic data chain built in it."""

    home: Home
    recorder: Recorder
    store: LocalStore
    index: ContentIndex
    work: Path

    def ingest(self, path: Path, license: str = "CC-BY-4.0", source: str = "") -> Attestation:
        request = IngestRequest(
            source=source or f"https://example.org/{path.name}", license=license
        )
        return ingest_path(self.recorder, path, request, index=self.index).attestation

    def snapshot(self, path: Path, prefix: str) -> SnapshotResult:
        return commit_snapshot(
            self.recorder, self.store, "demo", "main", path, prefix=prefix, index=self.index
        )

    def gate(self, uri: str, policy: Policy | None = None) -> GateDecision:
        return evaluate_gate([uri], home=self.home, policy=policy)

    def train(self, name: str, snap: SnapshotResult, prefix: str) -> tuple[Artifact, Attestation]:
        """Train a generator on a pinned snapshot, gated, recorded as the example does."""
        decision = self.gate(uri(snap, prefix))
        assert decision.allowed, decision.reasons
        assert decision.vsa is not None
        model = self.work / "models" / f"{name}.json"
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_text(json.dumps({"generator": name, "trained_on": snap.commit_id}))
        return example.record_training(self.recorder, name, decision.vsa, snap, model)

    def generate(
        self,
        out: Path,
        generator: Artifact,
        training: Attestation | None,
        seeds: list[Artifact | Attestation],
        rows: int = 4,
    ) -> Attestation:
        write_rows(out, [(f"synthetic {out.stem} {i}", "pos") for i in range(rows)])
        return record_generation(
            self.recorder,
            f"generate-{out.stem}",
            generator=generator,
            training=training,
            seeds=seeds,
            outputs=[Artifact.from_path(out, samples=True)],
            prompts=[Prompt.of("paraphrase", "Paraphrase this review: {text}")],
            parameters={"temperature": 0.7, "top_p": 0.9, "seed": 7},
        )


def uri(snap: SnapshotResult, path: str = "") -> str:
    return str(SnapshotURI("provgate", "demo", snap.commit_id, path))


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    with demo_home(tmp_path) as (home, recorder, store, index, _data):
        yield Chain(home, recorder, store, index, tmp_path / "work")


@dataclass
class Built:
    seed: Attestation
    corpus: Attestation
    training: Attestation
    generation: Attestation
    generator: Artifact
    snap: SnapshotResult


def build(chain: Chain, *, seed_license: str = "CC-BY-4.0") -> Built:
    """corpus -> snapshot -> gate -> train generator; seeds + generator -> synthetic.csv;
    training set: train/mixed (6 real, 4 synthetic) and train/diluted (12 real, 4 synthetic)."""
    w = chain.work
    corpus = chain.ingest(write_rows(w / "corpus" / "corpus.csv", CORPUS), license="CC0-1.0")
    corpus_snap = chain.snapshot(w / "corpus", "corpus")
    generator, training = chain.train("gen-1", corpus_snap, "corpus")
    seed = chain.ingest(write_rows(w / "seeds" / "seeds.csv", SEEDS), license=seed_license)
    chain.ingest(write_rows(w / "real" / "real.csv", REAL))
    chain.ingest(write_rows(w / "real" / "more.csv", MORE))
    synthetic = w / "generated" / "synthetic.csv"
    generation = chain.generate(synthetic, generator, training, [seed])
    train = w / "train"
    for sub, files in {
        "mixed": ["real/real.csv", "generated/synthetic.csv"],
        "diluted": ["real/real.csv", "real/more.csv", "generated/synthetic.csv"],
    }.items():
        (train / sub).mkdir(parents=True)
        for f in files:
            shutil.copy(w / f, train / sub / Path(f).name)
    snap = chain.snapshot(train, "train")
    return Built(seed, corpus, training, generation, generator, snap)


# -- the record ------------------------------------------------------------------------------


def test_generation_record_is_slsa_provenance_with_roles_and_digests(chain: Chain) -> None:
    built = build(chain)
    _, statement = decode_entry(chain.recorder.ledger.entry(built.generation.log_index))
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    build_def = statement["predicate"]["buildDefinition"]
    assert build_def["buildType"] == GENERATION_BUILD_TYPE
    external = build_def["externalParameters"]
    assert external["parameters"] == {"temperature": 0.7, "top_p": 0.9, "seed": 7}
    assert external["generator"] == {
        "name": "gen-1.json",
        "digest": {"sha256": built.generator.sha256},
        "blake3": built.generator.blake3,
    }
    [prompt] = external["prompts"]
    assert prompt["name"] == "paraphrase"
    assert set(prompt["digest"]) == {"sha256"}
    assert "Paraphrase" not in json.dumps(statement)  # the prompt is kept by digest only
    roles = [
        (d["annotations"]["role"], d["annotations"].get("logIndex"))
        for d in build_def["resolvedDependencies"]
    ]
    assert roles == [
        ("generator", None),
        ("generator-training", built.training.log_index),
        ("seed", built.seed.log_index),
    ]
    [output] = statement["predicate"]["runDetails"]["byproducts"]
    assert output["annotations"]["samples"]["count"] == 4
    assert output["annotations"]["samples"]["leafEncoding"] == "provgate-row/v1"


def test_generation_refuses_bad_input_before_recording(chain: Chain, tmp_path: Path) -> None:
    out = Artifact.from_path(write_rows(tmp_path / "s.csv", SEEDS))
    seed = chain.ingest(write_rows(tmp_path / "seed.csv", SEEDS))
    before = chain.recorder.ledger.size()
    model = Artifact(name="m", sha256="a" * 64)
    with pytest.raises(InputError, match="no BLAKE3"):
        record_generation(
            chain.recorder, "g", generator=model, training=None, seeds=[seed], outputs=[out]
        )
    with pytest.raises(InputError, match="not the SLSA Provenance"):
        record_generation(
            chain.recorder, "g", generator=out, training=seed, seeds=[seed], outputs=[out]
        )
    with pytest.raises(InputError, match="no seed data"):
        record_generation(
            chain.recorder, "g", generator=out, training=None, seeds=[], outputs=[out]
        )
    with pytest.raises(InputError, match="no outputs"):
        record_generation(
            chain.recorder, "g", generator=out, training=None, seeds=[seed], outputs=[]
        )
    assert chain.recorder.ledger.size() == before


# -- the walk and the facts ------------------------------------------------------------------


def test_synthetic_samples_trace_through_the_generator_to_seeds_and_its_training_data(
    chain: Chain,
) -> None:
    built = build(chain)
    decision = chain.gate(uri(built.snap, "train/mixed"))
    assert decision.allowed, decision.reasons
    [facts] = decision.inputs
    assert facts.synthetic_objects == ("train/mixed/synthetic.csv",)
    assert (facts.samples, facts.synthetic_samples, facts.synthetic_fraction) == (10, 4, 0.4)
    assert facts.generation_depth == 1
    [g] = facts.generations
    assert (g.log_index, g.depth, g.verified, g.generator_verified) == (
        built.generation.log_index,
        1,
        True,
        True,
    )
    assert g.generator_training_log_index == built.training.log_index
    assert g.generator_digest == built.generator.sha256
    assert g.samples == 4
    assert g.parameters == {"temperature": 0.7, "top_p": 0.9, "seed": 7}
    assert [r.log_index for r in g.seed_ingests] == [built.seed.log_index]
    assert sorted(r.log_index for r in g.ingests) == sorted(
        [built.corpus.log_index, built.seed.log_index]
    )
    # The generator's training record and the generation are steps of the input.
    by_build = {s.log_index: s.build_type for s in facts.steps}
    assert by_build[built.generation.log_index] == GENERATION_BUILD_TYPE
    assert by_build[built.training.log_index] == TRAINING_BUILD_TYPE


def test_trace_reaches_the_seeds_and_the_generators_training_data(chain: Chain) -> None:
    built = build(chain)
    with open_lineage(chain.home) as lineage:
        graph = lineage.upstream(uri(built.snap))
        ingests = {n.log_index for n in graph.nodes.values() if n.kind == "ingest"}
        assert {built.seed.log_index, built.corpus.log_index} <= ingests
        assert built.generation.log_index in graph.nodes
        assert built.training.log_index in graph.nodes
        # Downstream of the seed: the generation and the training snapshot.
        down = lineage.downstream(built.seed.log_index)
        assert {built.generation.log_index, built.snap.log_index} <= set(down.nodes)
        report = lineage.verify_chain(uri(built.snap))
        assert report.ok, report.to_dict()


def test_provgate_trace_cli_names_the_generation_and_its_sources(chain: Chain) -> None:
    built = build(chain)
    result = subprocess.run(
        [sys.executable, "-m", "prov_core.cli", "trace", uri(built.snap), "--format", "json"],
        capture_output=True,
        text=True,
        env={"PROVGATE_HOME": str(chain.home.path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    indices = json.dumps(doc)
    for att in (built.generation, built.training, built.seed, built.corpus):
        assert f'"log_index": {att.log_index}' in indices


# -- the rules -------------------------------------------------------------------------------


def test_synthetic_part_tracing_to_an_unlicensed_seed_is_refused_naming_it(chain: Chain) -> None:
    built = build(chain, seed_license="LicenseRef-scraped")
    target = uri(built.snap, "train/mixed")
    decision = chain.gate(target, policy=Policy.load(LICENSED))
    assert not decision.allowed
    [reason] = decision.reasons
    assert (reason.code, reason.rule_id, reason.input) == (
        "policy",
        "synthetic-licensed-sources",
        target,
    )
    assert f"generation record {built.generation.log_index} (generate-synthetic)" in reason.message
    # The decision is recorded with the reason.
    assert decision.vsa is not None
    _, vsa = decode_entry(chain.recorder.ledger.entry(decision.vsa.log_index))
    assert vsa["predicate"]["provgateReasons"][0]["rule"] == "synthetic-licensed-sources"


def test_synthetic_part_with_licensed_seeds_is_allowed(chain: Chain) -> None:
    built = build(chain)
    decision = chain.gate(uri(built.snap, "train/mixed"), policy=Policy.load(LICENSED))
    assert decision.allowed, decision.reasons


def test_no_derivatives_seed_is_refused_for_synthetic_data_only(chain: Chain) -> None:
    # CC-BY-ND allows the text to be trained on here, but not to be rewritten by a model.
    built = build(chain, seed_license="CC-BY-ND-4.0")
    decision = chain.gate(uri(built.snap, "train/mixed"), policy=Policy.load(LICENSED))
    assert [r.rule_id for r in decision.reasons] == ["synthetic-licensed-sources"]


def test_synthetic_fraction_cap_refuses_above_and_allows_below(chain: Chain) -> None:
    built = build(chain)
    policy = Policy.load(FRACTION)  # at most 30% synthetic samples
    mixed = chain.gate(uri(built.snap, "train/mixed"), policy=policy)  # 4 of 10
    assert [(r.rule_id, r.input) for r in mixed.reasons] == [
        ("synthetic-fraction", uri(built.snap, "train/mixed"))
    ]
    diluted = chain.gate(uri(built.snap, "train/diluted"), policy=policy)  # 4 of 16
    assert diluted.allowed, diluted.reasons
    assert diluted.inputs[0].synthetic_fraction == 0.25
    # Both at once: the one reason names the input it fails on.
    both = evaluate_gate(
        [uri(built.snap, "train/diluted"), uri(built.snap, "train/mixed")],
        home=chain.home,
        policy=policy,
    )
    assert [(r.rule_id, r.input) for r in both.reasons] == [
        ("synthetic-fraction", uri(built.snap, "train/mixed"))
    ]


def test_fraction_falls_back_to_bytes_when_a_count_is_not_signed(chain: Chain) -> None:
    built = build(chain)
    w = chain.work
    plain = w / "generated" / "plain.csv"
    # Outputs recorded without their sample count: the fraction is by bytes.
    write_rows(plain, [("unsigned count", "pos")])
    record_generation(
        chain.recorder,
        "generate-plain",
        generator=built.generator,
        training=built.training,
        seeds=[built.seed],
        outputs=[Artifact.from_path(plain)],
    )
    (w / "bytes").mkdir()
    shutil.copy(plain, w / "bytes" / "plain.csv")
    shutil.copy(w / "real" / "real.csv", w / "bytes" / "real.csv")
    snap = chain.snapshot(w / "bytes", "bytes")
    decision = chain.gate(uri(snap, "bytes"))
    assert decision.allowed, decision.reasons
    [facts] = decision.inputs
    assert (facts.samples, facts.synthetic_samples) == (None, None)
    size = plain.stat().st_size
    assert facts.synthetic_fraction == pytest.approx(
        size / (size + (w / "real" / "real.csv").stat().st_size)
    )


def test_generation_depth_cap_refuses_model_on_model_data(chain: Chain) -> None:
    built = build(chain)
    # A second generator trained on the mixed set (real + generated): its output is
    # a second generation.
    generator2, training2 = chain.train("gen-2", built.snap, "train/mixed")
    w = chain.work
    second = w / "generated2" / "second.csv"
    generation2 = chain.generate(second, generator2, training2, [built.seed])
    (w / "deep").mkdir()
    shutil.copy(second, w / "deep" / "second.csv")
    shutil.copy(w / "real" / "real.csv", w / "deep" / "real.csv")
    deep = chain.snapshot(w / "deep", "deep")
    policy = Policy.load(DEPTH)  # at most one generation
    refused = chain.gate(uri(deep, "deep"), policy=policy)
    [reason] = refused.reasons
    assert (reason.rule_id, reason.input) == ("generation-depth", uri(deep, "deep"))
    [facts] = refused.inputs
    assert facts.generation_depth == 2
    depths = {g.log_index: g.depth for g in facts.generations}
    assert depths == {built.generation.log_index: 1, generation2.log_index: 2}
    assert f"generation record {generation2.log_index}" in reason.message
    shallow = chain.gate(uri(built.snap, "train/mixed"), policy=policy)
    assert shallow.allowed, shallow.reasons


# -- tampering and lies ----------------------------------------------------------------------


def test_an_edited_generation_record_fails_verification(chain: Chain) -> None:
    built = build(chain)
    n = built.generation.log_index

    def hotter(statement: dict[str, Any]) -> None:
        statement["predicate"]["buildDefinition"]["externalParameters"]["parameters"][
            "temperature"
        ] = 0.1

    tamper_statement(chain.home.ledger_path, n, hotter)
    decision = chain.gate(uri(built.snap, "train/mixed"))
    assert not decision.allowed
    named = [r for r in decision.reasons if f"log entry {n}" in r.message]
    assert [r.code for r in named] == ["record-mismatch"]
    assert "train/mixed/synthetic.csv" in {
        p for r in decision.reasons if r.code == "uncovered" for p in [r.message.split(":")[0]]
    }
    with open_lineage(chain.home) as lineage:
        report = lineage.verify_chain(uri(built.snap))
    assert not report.ok
    assert n in report.broken


def test_a_generation_naming_another_models_training_is_refused(chain: Chain) -> None:
    built = build(chain)
    w = chain.work
    # A second, unrelated training record; the generation claims it trained gen-1.
    other_model, other_training = chain.train(
        "other", chain.snapshot(w / "corpus", "corpus2"), "corpus2"
    )
    assert other_model.blake3 != built.generator.blake3
    lie = w / "generated" / "lie.csv"
    generation = chain.generate(lie, built.generator, other_training, [built.seed])
    (w / "lie").mkdir()
    shutil.copy(lie, w / "lie" / "lie.csv")
    snap = chain.snapshot(w / "lie", "lie")
    decision = chain.gate(uri(snap, "lie"))
    assert not decision.allowed
    assert any(
        r.code == "step-input"
        and f"generation step record {generation.log_index}" in r.message
        and "did not output the generator's bytes" in r.message
        for r in decision.reasons
    ), decision.reasons


def test_an_outside_model_ingested_with_its_license_ends_the_chain(chain: Chain) -> None:
    w = chain.work
    weights = w / "outside" / "open-model.bin"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"open weights, Apache-2.0")
    model_ingest = chain.ingest(weights, license="Apache-2.0", source="https://example.org/m")
    seed = chain.ingest(write_rows(w / "seeds" / "seeds.csv", SEEDS))
    out = w / "generated" / "outside.csv"
    generation = chain.generate(out, Artifact.from_path(weights), None, [seed])
    (w / "o").mkdir()
    shutil.copy(out, w / "o" / "outside.csv")
    snap = chain.snapshot(w / "o", "o")
    decision = chain.gate(uri(snap, "o"), policy=Policy.load(LICENSED))
    assert decision.allowed, decision.reasons
    [g] = decision.inputs[0].generations
    assert g.log_index == generation.log_index
    assert g.generator_training_log_index is None
    assert g.generator_verified
    assert model_ingest.log_index in {r.log_index for r in g.ingests}
    assert model_ingest.predicate_type == INGEST_V1


def test_the_example_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "synthetic_chain.py"), str(tmp_path / "h")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "licensed seeds: allowed" in out
    assert "synthetic only: refused [synthetic-fraction]" in out
    assert "unlicensed seed: refused [known-license, synthetic-licensed-sources]" in out
    assert "generation depth 2: refused [generation-depth]" in out
    # docs/integrations.md shows this output: each of its lines is one of these, in order
    # (`<commit>` stands for a commit id, `...` for text left out)
    shown = _doc_output("Synthetic data")
    printed = iter(out.splitlines())
    for line in shown:
        pattern = re.escape(line).replace(re.escape("<commit>"), "[0-9a-f]{64}")
        pattern = pattern.replace(re.escape("..."), ".*")
        assert any(re.fullmatch(pattern, p) for p in printed), (line, out)


def _doc_output(section: str) -> list[str]:
    """The lines of the one output block (a fence without a language) of a section of
    docs/integrations.md."""
    doc = (REPO / "docs" / "integrations.md").read_text()
    text = doc.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = [b for lang, b in re.findall(r"\n```(\w*)\n(.*?)\n```\n", text, re.S) if not lang]
    assert len(blocks) == 1, blocks
    return blocks[0].splitlines()
