"""provgate for Dagster: every asset a signed, verifiable lineage node.

::

    from prov_dagster import ProvenanceResource, provenance_asset, provenance_checks

    @provenance_asset(deps=[raw])          # was: @asset(deps=[raw])
    def clean() -> Path: ...               # returns the file(s) it wrote

    defs = Definitions(
        assets=[raw, clean],
        asset_checks=provenance_checks([raw, clean]),
        resources={"provenance": ProvenanceResource()},
    )
"""

from prov_dagster.asset import METADATA_KEYS, Ingest, Snapshot, provenance_asset
from prov_dagster.checks import CHECK_NAME, provenance_checks
from prov_dagster.errors import ProvenanceError, ProvenanceRefused
from prov_dagster.resource import RESOURCE_KEY, ProvenanceResource

__version__ = "0.1.0"
__all__ = [
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
]
