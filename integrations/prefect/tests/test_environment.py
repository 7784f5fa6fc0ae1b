"""The prefect session's environment: Prefect 3.9 beside provgate, running for real."""

import prefect
import prov_prefect
from prefect import flow, task
from prefect.testing.utilities import prefect_test_harness

from prov_core.digest import digest_bytes


def test_targets_prefect_3_9() -> None:
    assert prefect.__version__.startswith("3.9.")
    assert prov_prefect.__version__ == "0.1.0"


def test_flow_runs_with_a_provgate_digest(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)

    @task
    def digest(data: bytes) -> str:
        return digest_bytes(data)

    @flow
    def pipeline() -> str:
        return digest(b"hello")

    with prefect_test_harness():
        assert pipeline() == digest_bytes(b"hello")
