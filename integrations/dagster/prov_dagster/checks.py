"""The ``provenance_verified`` asset check: does an asset's latest materialization still hold?

It re-verifies, with ``prov_core.nodes.verify_node``, the attestation the
materialization carries: the ledger entry is the one recorded (link), its signature
and the trust store's decision on its key, its inclusion in the signed checkpoint, the
chain of custody up to the ingest records, and the stored bytes (each output file
re-digested, a snapshot's commit re-read) against the signed digests. It fails with
every problem, shown in the asset's Checks tab.

(No ``from __future__ import annotations`` here: Dagster reads the check's annotations.)
"""

from collections.abc import Iterable
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetsDefinition,
    MetadataValue,
    asset_check,
)

from prov_dagster.asset import latest_provenance
from prov_dagster.errors import ProvenanceError
from prov_dagster.resource import ProvenanceResource

__all__ = ["CHECK_NAME", "provenance_checks"]

CHECK_NAME = "provenance_verified"


def _check_for(key: AssetKey) -> AssetChecksDefinition:
    @asset_check(
        asset=key,
        name=CHECK_NAME,
        description="provgate: signature, ledger inclusion, chain of custody and the stored "
        "bytes of the latest materialization verify",
    )
    def provenance_verified(
        context: AssetCheckExecutionContext, provenance: ProvenanceResource
    ) -> AssetCheckResult:
        from prov_core.nodes import verify_node

        try:
            attestation, extra = latest_provenance(context.instance, key, None)
        except ProvenanceError as exc:
            return AssetCheckResult(
                passed=False,
                severity=AssetCheckSeverity.ERROR,
                description=str(exc.description),
            )
        report = verify_node(
            attestation,
            home=provenance.open_home(),
            outputs=extra.get("outputs") or {},
            snapshot=extra.get("snapshot_uri"),
        )
        meta: dict[str, Any] = {
            "provgate/log_index": MetadataValue.text(str(attestation.log_index)),
            "provgate/checks": MetadataValue.json(report.checks),
            "provgate/records_checked": MetadataValue.int(report.records_checked),
        }
        if report.problems:
            meta["provgate/problems"] = MetadataValue.md(
                "\n".join(f"- {p}" for p in report.problems)
            )
        return AssetCheckResult(
            passed=report.ok,
            severity=AssetCheckSeverity.ERROR,
            description="verified"
            if report.ok
            else "; ".join(str(p) for p in report.problems[:5])
            + (f" (+{len(report.problems) - 5} more)" if len(report.problems) > 5 else ""),
            metadata=meta,
        )

    return provenance_verified


def provenance_checks(
    assets: Iterable[AssetsDefinition | Any],
) -> list[AssetChecksDefinition]:
    """One ``provenance_verified`` check per asset key of ``assets`` (other items ignored)."""
    checks = []
    for a in assets:
        if isinstance(a, AssetsDefinition) and not isinstance(a, AssetChecksDefinition):
            checks.extend(_check_for(k) for k in sorted(a.keys, key=lambda k: k.to_user_string()))
    return checks
