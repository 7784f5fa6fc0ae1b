"""A training script as a user writes it, run by the tests as its own process (under
strace when available): ``python _train.py ROOT PINNED_URI RESULT_JSON``.

The W&B settings (offline, directories) come from the environment the tests set.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import wandb
from _world import fit
from prov_wandb import training_run

from prov_core.home import open_home


def main(root: Path, pinned: str, result: Path) -> None:
    home = open_home(root / "provgate")
    with (
        wandb.init(project="provgate-tests", name="fit", config={"epochs": 3}) as wb,
        training_run([pinned], home=home) as run,
    ):
        model = fit(home, pinned, root / "model")
        run.log_model(model, name="support-clf", metadata={"framework": "baseline"})
    assert run.attestation is not None
    assert run.gated is not None
    result.write_text(
        json.dumps(
            {
                "run_id": wb.id,
                "sync_file": str(wb.settings.sync_file),
                "training": run.attestation.to_dict(),
                "gate": run.gated.vsa.to_dict(),
                "inputs": [p.to_dict() for p in run.gated.inputs],
                "models": [
                    {
                        "name": m.name,
                        "sha256": m.tree.sha256_subject,
                        "blake3": m.tree.blake3,
                        "wandb_digest": m.artifact.digest,
                    }
                    for m in run.models
                ],
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
