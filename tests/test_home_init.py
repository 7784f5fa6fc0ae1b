"""init_home run by several processes at once (workers of one orchestrator) makes one home."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from prov_core.home import open_home
from prov_core.verify import verify_home

_INIT = """
import sys
from pathlib import Path
from prov_core.home import init_home
from prov_core.step import Recorder
from prov_core.statement import Statement, Subject

home, _ = init_home(Path(sys.argv[1]))
with Recorder.from_home(home) as recorder:
    recorder.record(Statement([Subject(name=sys.argv[2], sha256="ab" * 32)], "https://x/v1", {}))
print(home.origin)
"""


def test_concurrent_init_makes_one_home(tmp_path: Path) -> None:
    path = tmp_path / "home"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _INIT, str(path), f"worker-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in results]
    origins = {out.strip() for out, _ in results}
    assert len(origins) == 1  # one config, one log
    home = open_home(path)
    assert origins == {home.origin}
    assert json.loads((path / "config.json").read_text())["origin"] == home.origin
    assert len(list(home.keys_dir.iterdir())) == 1  # one key, trusted
    assert len(home.trust().entries()) == 1
    report = verify_home(home)
    assert report.ok, report.problems
    assert report.entries == 6
