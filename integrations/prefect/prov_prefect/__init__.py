"""provgate for Prefect: every task run a signed, verifiable lineage node.

::

    from prov_prefect import provenance, provenance_flow

    @provenance                 # one line above @task
    @task
    def raw() -> IngestResult:  # ingest(...) / snapshot(...): the record is the node
        return ingest(path, IngestRequest(source=..., license=...))

    @provenance
    @task
    def clean(raw: IngestResult) -> Path: ...   # returns the file(s) it wrote

    @provenance(training=True)  # refused unless its snapshot inputs are pinned and verify
    @task
    def train(snapshot: str) -> Path: ...

    @provenance_flow            # the run's lineage as a markdown artifact
    @flow
    def pipeline(): ...
"""

from prov_prefect.artifacts import META, NodeRef, read_flow_nodes, read_task_run_nodes
from prov_prefect.config import ProvenanceConfig
from prov_prefect.errors import ProvenanceError, ProvenanceRefused
from prov_prefect.events import EVENT_RECORDED, EVENT_REFUSED
from prov_prefect.flow import flow_lineage, provenance_flow
from prov_prefect.records import ingest, pinned_uri, snapshot
from prov_prefect.task import provenance

__version__ = "0.1.0"
__all__ = [
    "EVENT_RECORDED",
    "EVENT_REFUSED",
    "META",
    "NodeRef",
    "ProvenanceConfig",
    "ProvenanceError",
    "ProvenanceRefused",
    "__version__",
    "flow_lineage",
    "ingest",
    "pinned_uri",
    "provenance",
    "provenance_flow",
    "read_flow_nodes",
    "read_task_run_nodes",
    "snapshot",
]
