"""The public surface is pinned: adding or removing a name is a deliberate act."""

import subprocess
import sys

import pytest

import prov_core

PUBLIC = {
    "__version__",
    "Artifact",
    "Attestation",
    "CodeIdentity",
    "Home",
    "IngestRequest",
    "ProvgateError",
    "Recorder",
    "VerifyReport",
    "digest_path",
    "ingest_path",
    "init_home",
    "open_home",
    "open_output",
    "record_step",
    "verify_home",
}


def test_all_is_the_public_surface() -> None:
    assert set(prov_core.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(prov_core, name) is not None


def test_every_lazy_export_is_public() -> None:
    assert set(prov_core._EXPORTS) | {"__version__"} == PUBLIC


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError, match="nope"):
        prov_core.nope  # noqa: B018


def test_import_is_lazy_and_orchestrator_free() -> None:
    code = (
        "import sys, prov_core, prov_core.cli; "
        "heavy = {'pyarrow', 'typer', 'rich', 'cryptography', 'dagster', 'airflow', 'prefect', "
        "'mlflow', 'wandb'}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
