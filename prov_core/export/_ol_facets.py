"""provgate's custom OpenLineage facets (imports openlineage-python; load it lazily).

Field names are the JSON keys (camelCase, as in every OpenLineage facet);
``None`` fields are left out of the JSON by openlineage-python's serializer.
The JSON Schemas are ``docs/schemas/openlineage-attestation-run-facet-v1.json``
and ``docs/schemas/openlineage-digest-dataset-facet-v1.json``.
"""

from __future__ import annotations

import attr
from openlineage.client.facet_v2 import DatasetFacet, RunFacet

__all__ = ["ProvgateAttestationRunFacet", "ProvgateDigestDatasetFacet"]

ATTESTATION_FACET_SCHEMA_URL = (
    "https://provgate.dev/schemas/openlineage-attestation-run-facet-v1.json"
    "#/$defs/ProvgateAttestationRunFacet"
)
DIGEST_FACET_SCHEMA_URL = (
    "https://provgate.dev/schemas/openlineage-digest-dataset-facet-v1.json"
    "#/$defs/ProvgateDigestDatasetFacet"
)


@attr.define(kw_only=True)
class ProvgateAttestationRunFacet(RunFacet):
    """Run facet ``provgate_attestation``: the signed ledger entry this run was exported from."""

    logIndex: int
    envelopeSha256: str
    predicateType: str
    ledgerOrigin: str
    uri: str
    keyid: str | None = None
    checkpointSize: int | None = None
    checkpointRootHash: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return ATTESTATION_FACET_SCHEMA_URL


@attr.define(kw_only=True)
class ProvgateDigestDatasetFacet(DatasetFacet):
    """Dataset facet ``provgate_digest``: the digests the signed record names for this dataset."""

    sha256: str | None = None
    blake3: str | None = None
    sampleCount: int | None = None
    sampleRoot: str | None = None
    commitId: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return DIGEST_FACET_SCHEMA_URL
