"""The dagster session's environment: Dagster 1.13 beside provgate, running for real."""

import subprocess
import sys
from pathlib import Path

import dagster
import prov_dagster
from dagster import DagsterInstance, asset, materialize

from prov_core.digest import digest_bytes


def test_targets_dagster_1_13() -> None:
    assert dagster.__version__.startswith("1.13.")
    assert prov_dagster.__version__ == "0.1.0"


def test_asset_materializes_with_a_provgate_digest(tmp_path: Path) -> None:
    @asset
    def payload() -> str:
        return digest_bytes(b"hello")

    # tempdir: an instance's own temporary directory warns when it is garbage-collected
    result = materialize([payload], instance=DagsterInstance.ephemeral(tempdir=str(tmp_path)))
    assert result.success
    assert result.output_for_node("payload") == digest_bytes(b"hello")


def test_core_imports_no_orchestrator() -> None:
    code = "import sys, prov_core.cli, prov_core.step; print(sorted(m for m in sys.modules if m.split('.')[0] in {'dagster','airflow','prefect'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_surface_is_pinned() -> None:
    assert set(prov_dagster.__all__) == {
        "CHECK_NAME",
        "METADATA_KEYS",
        "RESOURCE_KEY",
        "Ingest",
        "ProvenanceError",
        "ProvenanceRefused",
        "ProvenanceResource",
        "Snapshot",
        "__version__",
        "provenance_asset",
        "provenance_checks",
    }
    for name in prov_dagster.__all__:
        assert getattr(prov_dagster, name) is not None
