"""provgate for Airflow: every task a signed, verifiable lineage node.

::

    from prov_airflow import (
        ProvenanceIngestOperator, ProvenanceSnapshotOperator, ProvenanceTrainingOperator,
    )

    raw = ProvenanceIngestOperator(task_id="ingest", path="data/reviews.csv",
                                   source="https://example.org/reviews", license="CC0-1.0")
    snap = ProvenanceSnapshotOperator(task_id="snapshot", path="data/clean", repo="reviews")
    train = ProvenanceTrainingOperator(task_id="train", python_callable=fit)
    raw >> snap >> train

or TaskFlow: ``@task.provenance`` / ``@task.provenance(training=True)``. Installing the
provider also records every other task through a listener (``[provgate] listener``).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "XCOM_ATTESTATION",
    "XCOM_SNAPSHOT",
    "ProvenanceError",
    "ProvenanceIngestOperator",
    "ProvenanceRefused",
    "ProvenanceSnapshotOperator",
    "ProvenanceTrainingOperator",
    "Settings",
    "__version__",
    "provenance_task",
]

_LAZY = {
    "XCOM_ATTESTATION": "prov_airflow._node",
    "XCOM_SNAPSHOT": "prov_airflow._node",
    "ProvenanceError": "prov_airflow.errors",
    "ProvenanceRefused": "prov_airflow.errors",
    "ProvenanceIngestOperator": "prov_airflow.operators",
    "ProvenanceSnapshotOperator": "prov_airflow.operators",
    "ProvenanceTrainingOperator": "prov_airflow.operators",
    "Settings": "prov_airflow.config",
    "provenance_task": "prov_airflow.decorators",
}


def __getattr__(name: str) -> Any:
    """Import on first use: ``get_provider_info`` must not import Airflow's task SDK."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'prov_airflow' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
