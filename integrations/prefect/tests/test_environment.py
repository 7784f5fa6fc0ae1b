"""The prefect session's environment: Prefect 3.9 beside provgate, running for real."""

import prefect
import prov_prefect
from prefect import flow, task

from prov_core.digest import digest_bytes


def test_targets_prefect_3_9() -> None:
    assert prefect.__version__.startswith("3.9.")
    assert prov_prefect.__version__ == "0.1.0"


def test_flow_runs_with_a_provgate_digest(prefect_server: None) -> None:
    @task
    def digest(data: bytes) -> str:
        return digest_bytes(data)

    @flow
    def pipeline() -> str:
        return digest(b"hello")

    assert pipeline() == digest_bytes(b"hello")
