"""What the W&B integration's tests share: the provgate side (``World``, shared with the
MLflow tests: tests/tracker_world.py) and a small model.

(Imported by the tests and by ``_train.py`` as ``_world``; fixtures are in conftest.py.)
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:  # tests.tracker_world and example_pipelines live at the root
    sys.path.insert(0, str(REPO))


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
