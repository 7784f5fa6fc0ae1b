"""The hf session's environment: datasets beside provgate, and no way out to the Hub."""

import datasets
import huggingface_hub.constants
import prov_hf


def test_datasets_and_the_adapter_are_installed() -> None:
    assert int(datasets.__version__.split(".")[0]) >= 3
    assert prov_hf.__version__ == "0.1.0"


def test_offline_with_private_caches() -> None:
    assert huggingface_hub.constants.HF_HUB_OFFLINE
    assert datasets.config.HF_HUB_OFFLINE
    assert "provgate-hf-" in str(datasets.config.HF_DATASETS_CACHE)


def test_the_core_does_not_import_datasets() -> None:
    import subprocess
    import sys

    code = (
        "import sys, prov_core.digest, prov_core.ingest, prov_core.gate, prov_core.synthetic; "
        "print('datasets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
