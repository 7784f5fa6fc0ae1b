"""Run the Dagster reference pipeline end to end and print the verified lineage.

    python example_pipelines/run_dagster.py [--home DIR] [--workdir DIR]

Materializes every asset of ``example_pipelines/dagster_pipeline.py`` in-process (each
source partition of ``raw_documents``/``clean_corpus``, then the snapshot, the gated
model, the retrieval index and the answers, with their ``provenance_verified`` checks)
on the embedded defaults (SQLite ledger, local snapshot store), then prints the lineage
tree of the model and of one answer back to their sources, each verified
(``provgate trace`` and ``provgate verify --artifact``). With ``DAGSTER_HOME`` set the
runs are kept in that Dagster instance, so ``dagster dev`` shows them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class _Ctx:
    """What ProvenanceResource's readers need of a Dagster context: the instance."""

    def __init__(self, instance: object) -> None:
        self.instance = instance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=os.environ.get("PROVGATE_HOME", ".provgate-demo"))
    parser.add_argument("--workdir", default=".provgate-example")
    parser.add_argument("--keep", action="store_true", help="keep an existing home and workdir")
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from dagster import AssetKey, AssetSelection, DagsterInstance, materialize
    from prov_dagster import ProvenanceResource, provenance_checks

    from example_pipelines import dagster_pipeline as example
    from prov_core.cli import main as provgate

    home, workdir = Path(args.home), Path(args.workdir)
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    resources = {
        "provenance": ProvenanceResource(home=str(home)),
        "workdir": example.Workdir(path=str(workdir)),
    }
    every = [*example.all_assets, *provenance_checks(example.all_assets)]
    persistent = bool(os.environ.get("DAGSTER_HOME"))
    with DagsterInstance.get() if persistent else DagsterInstance.ephemeral() as instance:
        for source in example.sources.get_partition_keys():
            print(f"== raw_documents, clean_corpus [{source}]", flush=True)
            materialize(
                every,
                selection=AssetSelection.assets(example.raw_documents, example.clean_corpus),
                partition_key=source,
                resources=resources,
                instance=instance,
            )
        print("== corpus_snapshot, model (gated), retrieval_index, answers", flush=True)
        result = materialize(
            every,
            selection=AssetSelection.assets(
                example.corpus_snapshot, example.model, example.retrieval_index, example.answers
            ),
            resources=resources,
            instance=instance,
        )
        for check in result.get_asset_check_evaluations():
            status = "passed" if check.passed else f"FAILED: {check.description}"
            print(f"   {check.asset_key.to_user_string()}: provenance_verified {status}")
        model = ProvenanceResource(home=str(home)).attestation(_Ctx(instance), AssetKey("model"))
        model_index = str(model.log_index)
    answers = json.loads((workdir / "answers" / "answers.json").read_text())
    print("\n== answers")
    for a in answers:
        verdict = a["answer"] if a["allowed"] else "BLOCKED: " + "; ".join(a["reasons"])
        print(f"   {a['question']}\n     -> {verdict}  (inference record {a['record']})")
    allowed = next(a for a in answers if a["allowed"])
    code = 0
    for title, target in [("the model", model_index), ("an answer", str(allowed["record"]))]:
        print(f"\n== lineage of {title} (log index {target})", flush=True)
        for cmd in (["trace", target], ["verify", "--artifact", target]):
            try:
                provgate(["--home", str(home), *cmd])
            except SystemExit as exc:
                code = code or (exc.code if isinstance(exc.code, int) else 1)
    print(
        f"\nOpen the Dagster UI on this pipeline:\n"
        f"  PROVGATE_HOME={home} dagster dev -f example_pipelines/dagster_pipeline.py\n"
        f"and the provgate lineage pages its materializations link to:\n"
        f"  provgate --home {home} ui"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
