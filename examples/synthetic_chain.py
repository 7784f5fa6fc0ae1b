"""A synthetic data chain, end to end, on the embedded store (runs in about two seconds).

    python examples/synthetic_chain.py [HOME]

A corpus is ingested, snapshotted and passed by the gate; a toy generator (a
word list) is trained on it; the generator rewrites ingested seed reviews into
synthetic ones (a generation record); a training set mixes real and synthetic
rows. The gate then judges that set with the shipped synthetic-data policies,
once with licensed seeds, once with a seed of unknown terms, and once with
data from a second-generation model. HOME (default: a temporary directory) is
a fresh provgate home: `PROVGATE_HOME=HOME provgate trace ...` shows the chain.
"""

from __future__ import annotations

import csv
import json
import random
import sys
import tempfile
from pathlib import Path

from prov_core.gate import evaluate_gate
from prov_core.home import Home, init_home
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.policy import Policy
from prov_core.snapshot_record import SnapshotResult, commit_snapshot
from prov_core.step import TRAINING_BUILD_TYPE, Artifact, Attestation, Recorder, record_step
from prov_core.synthetic import Prompt, record_generation

POLICIES = Path(__file__).parent / "policies"
# The default rules and the three synthetic-data examples, as one policy.
POLICY = Policy(
    rules=tuple(
        rule
        for policy in [
            Policy.default(),
            Policy.load(POLICIES / "synthetic-licensed-sources.toml"),
            Policy.load(POLICIES / "synthetic-fraction.toml"),
            Policy.load(POLICIES / "generation-depth.toml"),
        ]
        for rule in policy.rules
    ),
    source="examples/synthetic_chain.py",
)


def write_rows(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    return path


class Pipeline:
    """The records of one home: ingest, snapshot, gate, train, generate."""

    def __init__(self, home: Home, recorder: Recorder, work: Path) -> None:
        self.home, self.recorder, self.work = home, recorder, work

    def ingest(self, path: Path, license: str) -> Attestation:
        request = IngestRequest(source=f"https://example.org/{path.name}", license=license)
        with self.home.open_index() as index:
            return ingest_path(self.recorder, path, request, index=index).attestation

    def snapshot(self, files: dict[str, Path], prefix: str) -> tuple[SnapshotResult, str]:
        folder = self.work / "snapshots" / prefix
        folder.mkdir(parents=True)
        for name, src in files.items():
            (folder / name).write_bytes(src.read_bytes())
        with self.home.open_store() as store, self.home.open_index() as index:
            snap = commit_snapshot(
                self.recorder, store, "demo", "main", folder, prefix=prefix, index=index
            )
        return snap, f"provgate://demo/{snap.commit_id}/{prefix}"

    def train(self, name: str, files: dict[str, Path]) -> tuple[Artifact, Attestation]:
        """A toy generator: the words of its training rows, trained behind the gate."""
        snap, uri = self.snapshot(files, f"for-{name}")
        decision = evaluate_gate([uri], home=self.home)
        if not decision.allowed or decision.vsa is None:
            raise SystemExit(f"the gate refused training {name}: {decision.reasons}")
        words = sorted({w for p in files.values() for row in read(p) for w in row[0].split()})
        model = self.work / "models" / f"{name}.json"
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_text(json.dumps({"vocabulary": words}))
        return record_training(self.recorder, name, decision.vsa, snap, model)

    def generate(
        self, name: str, model: Artifact, training: Attestation, seed_file: Path, seed: Attestation
    ) -> Path:
        """Rewrite every seed row with the model's words: deterministic for a given seed."""
        rng = random.Random(7)
        vocabulary = json.loads((self.work / "models" / model.name).read_text())["vocabulary"]
        rows = [
            (f"{text} {' '.join(rng.sample(vocabulary, 3))}", label)
            for text, label in read(seed_file)
        ]
        out = write_rows(self.work / "generated" / f"{name}.csv", rows)
        record_generation(
            self.recorder,
            f"generate-{name}",
            generator=model,
            training=training,
            seeds=[seed],
            outputs=[Artifact.from_path(out, samples=True)],
            prompts=[Prompt.of("rewrite", "Rewrite this review in other words: {text}")],
            parameters={"temperature": 0.7, "seed": 7, "max_new_tokens": 32},
        )
        return out

    def judge(self, label: str, files: dict[str, Path]) -> None:
        _, uri = self.snapshot(files, label.replace(" ", "-").replace(":", ""))
        decision = evaluate_gate([uri], home=self.home, policy=POLICY)
        facts = decision.inputs[0]
        verdict = "allowed" if decision.allowed else "refused"
        rules = sorted({r.rule_id for r in decision.reasons if r.rule_id})
        print(
            f"{label}: {verdict}" + (f" [{', '.join(rules)}]" if rules else ""),
            f"(synthetic {facts.synthetic_fraction:.0%}, depth {facts.generation_depth})",
        )
        for reason in decision.reasons:
            print(f"    {reason}")


def record_training(
    recorder: Recorder, name: str, gate: Attestation, snap: SnapshotResult, model: Path
) -> tuple[Artifact, Attestation]:
    """The training of the model file ``model`` on ``snap``, recorded as the orchestrator
    adapters record a gated training: the gate's decision and the snapshot are its inputs."""
    artifact = Artifact.from_path(model)
    training = record_step(
        recorder,
        f"train-{name}",
        inputs=[gate, snap.attestation],
        outputs=[artifact],
        build_type=TRAINING_BUILD_TYPE,
    )
    return artifact, training


def read(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as f:
        return [(r[0], r[1]) for r in list(csv.reader(f))[1:]]


def main(home_dir: Path) -> None:
    home, _ = init_home(home_dir)
    work = home_dir.parent / (home_dir.name + "-work")
    with home.open_store() as store:
        store.create_repository("demo", "main")
    with Recorder.from_home(home) as recorder:
        p = Pipeline(home, recorder, work)
        corpus = write_rows(
            work / "corpus.csv", [(f"a fine corpus line {i}", "pos") for i in range(8)]
        )
        p.ingest(corpus, "CC0-1.0")
        model, training = p.train("gen-1", {"corpus.csv": corpus})

        real = write_rows(work / "real.csv", [(f"real review number {i}", "pos") for i in range(8)])
        p.ingest(real, "CC-BY-4.0")
        seeds = write_rows(work / "seeds.csv", [("great phone", "pos"), ("broke in a week", "neg")])
        seed = p.ingest(seeds, "CC-BY-4.0")
        synthetic = p.generate("licensed", model, training, seeds, seed)
        p.judge("licensed seeds", {"real.csv": real, "synthetic.csv": synthetic})
        p.judge("synthetic only", {"synthetic.csv": synthetic})

        scraped = write_rows(work / "scraped.csv", [("cheap knockoff", "neg"), ("love it", "pos")])
        scraped_seed = p.ingest(scraped, "LicenseRef-scraped-unknown-terms")
        tainted = p.generate("tainted", model, training, scraped, scraped_seed)
        p.judge("unlicensed seed", {"real.csv": real, "synthetic.csv": tainted})

        # A second generator trained on real + generated rows: its output is generation 2.
        model2, training2 = p.train("gen-2", {"real.csv": real, "synthetic.csv": synthetic})
        second = p.generate("second", model2, training2, seeds, seed)
        p.judge("generation depth 2", {"real.csv": real, "synthetic.csv": second})
    print(f"home: {home_dir}  (PROVGATE_HOME={home_dir} provgate trace <log index>)")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "home"
    main(target)
