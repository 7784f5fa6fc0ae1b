"""The operator extra link: a "Provenance" button on provgate tasks, to the node's page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from prov_airflow.web import URL_PREFIX

__all__ = ["ProvenanceLink"]


class ProvenanceLink(BaseOperatorLink):
    """Links a task instance to its provgate record, through the plugin's view."""

    name = "Provenance"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:  # noqa: ARG002 - Airflow's API
        parts = (ti_key.dag_id, ti_key.run_id, ti_key.task_id, str(ti_key.map_index))
        return URL_PREFIX + "/ti/" + "/".join(quote(p, safe="") for p in parts)
