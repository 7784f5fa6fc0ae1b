"""`make demo` runs examples/cli_tour.sh: it must keep working end to end."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_cli_tour_runs_and_verifies(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PROVGATE_HOME": str(tmp_path / "demo"),
    }
    env.pop("PROVGATE_SIGNING_KEY", None)
    result = subprocess.run(
        ["bash", str(REPO / "examples" / "cli_tour.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "OK: 2 entries, checkpoint size 2, 0 problem(s)" in output
    assert '"leaf_index": 0' in output  # the inclusion proof
    assert "(exit 1: refused, as it should be)" in output  # SOURCE.md: not ingested
    assert "ALLOWED: 2 input(s), 0 reason(s)" in output
    assert "2 ingest record(s), 0 model(s)" in output  # the trace of the snapshot
    assert "3 record(s) checked against checkpoint size 5, 0 problem(s)" in output
    assert "Traceback" not in output
