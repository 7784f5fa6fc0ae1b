"""W&B for real, in offline mode, with no network at all; a real provgate home.

W&B is configured before anything imports it: offline, every directory it writes
(runs, cache, staging, config) in a temporary directory, a loopback base URL in
case anything asked for one, no API key, no error reporting, no system metrics.
Nothing may leave the machine, and the tests check it two ways: an audit hook in
this process fails the test that connects or looks up a name beyond loopback,
and the shared training run is a script run under strace (when strace exists),
whose every connect/sendto in every process (wandb-core included) is read back.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _world import REPO, Trained  # first: the repository root on sys.path

from tests.network_audit import NetworkAudit
from tests.tracker_world import World, build_world

HERE = Path(__file__).resolve().parent

_ROOT = Path(tempfile.mkdtemp(prefix="provgate-wandb-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
for _name in ("WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "PROVGATE_HOME"):
    os.environ.pop(_name, None)
os.environ.update(
    {
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(_ROOT / "wandb-dir"),
        "WANDB_CACHE_DIR": str(_ROOT / "wandb-cache"),
        "WANDB_DATA_DIR": str(_ROOT / "wandb-data"),
        "WANDB_ARTIFACT_DIR": str(_ROOT / "wandb-artifacts"),
        "WANDB_CONFIG_DIR": str(_ROOT / "wandb-config"),
        "WANDB_BASE_URL": "http://127.0.0.1:9",  # discard port: never a W&B server
        "WANDB_SILENT": "true",
        "WANDB_CONSOLE": "off",
        "WANDB_ERROR_REPORTING": "false",
        "WANDB_DISABLE_GIT": "true",
        "WANDB_DISABLE_CODE": "true",
        "WANDB_X_DISABLE_STATS": "true",
        "WANDB_X_DISABLE_MACHINE_INFO": "true",
        "PROVGATE_SIGNING_WORKERS": "0",
    }
)
for _d in ("wandb-dir", "wandb-cache", "wandb-data", "wandb-artifacts", "wandb-config"):
    (_ROOT / _d).mkdir()

# -- no network in this process ------------------------------------------------------

_NETWORK = NetworkAudit()


@pytest.fixture(autouse=True)
def no_network() -> Iterator[None]:
    """no_network fails the test that tried to reach anything beyond loopback."""
    with _NETWORK.none_beyond_loopback():
        yield


# -- the provgate side and one gated training run --------------------------------------


@pytest.fixture(scope="session")
def world() -> World:
    return build_world(_ROOT)


@pytest.fixture(scope="session")
def trained(world: World) -> Trained:
    """The training script (_train.py) run once as its own process, under strace if present."""
    result = _ROOT / "result.json"
    trace = _ROOT / "strace.txt"
    command = [sys.executable, str(HERE / "_train.py"), str(_ROOT), world.pinned, str(result)]
    strace = shutil.which("strace")
    if strace:
        command = [strace, "-f", "-qq", "-e", "trace=connect,sendto", "-o", str(trace), *command]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    calls = None
    if strace:
        calls = [line for line in trace.read_text().splitlines() if "(" in line]
    return Trained(json.loads(result.read_text()), calls)
