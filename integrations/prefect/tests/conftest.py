"""One Prefect server for the whole pytest run (prefect_test_harness, ~7 s), isolated home."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

# Before Prefect reads its settings: a private PREFECT_HOME, no telemetry, no outside server.
os.environ["PREFECT_HOME"] = _home = tempfile.mkdtemp(prefix="prefect-home-")
atexit.register(shutil.rmtree, _home, ignore_errors=True)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    # 30 s (the default) is not always enough on a loaded 2-core machine
    with prefect_test_harness(server_startup_timeout=120):
        yield
