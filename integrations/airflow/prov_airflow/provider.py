"""Provider metadata (``apache_airflow_provider`` entry point): plugin, decorator, config."""

from __future__ import annotations

from typing import Any

from prov_airflow import __version__
from prov_airflow.config import OPTIONS, SECTION

__all__ = ["get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """The provider info Airflow's ProvidersManager reads (``provider_info.schema.json``)."""
    return {
        "package-name": "provgate-airflow",
        "name": "provgate",
        "description": "provgate: every task a signed, verifiable lineage node; the training "
        "gate refuses data without a verified chain of custody.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "provgate",
                "external-doc-url": "https://provgate.dev/docs/airflow",
                "tags": ["software"],
            }
        ],
        "operators": [
            {"integration-name": "provgate", "python-modules": ["prov_airflow.operators"]}
        ],
        "task-decorators": [
            {"name": "provenance", "class-name": "prov_airflow.decorators.provenance_task"}
        ],
        "plugins": [{"name": "provgate", "plugin-class": "prov_airflow.plugin.ProvgatePlugin"}],
        "config": {
            SECTION: {
                "description": "provgate: where records are kept and what is recorded.",
                "options": OPTIONS,
            }
        },
    }
