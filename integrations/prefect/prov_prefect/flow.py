"""provenance_flow: a flow whose runs end with their lineage as a markdown artifact.

``@provenance_flow`` above ``@flow`` adds an ``on_completion`` and an ``on_failure`` hook
that read the nodes of the run's task runs (their table artifacts), take the edges
between them from the signed records in the ledger (never from Prefect's metadata),
and attach :func:`~prov_prefect.artifacts.lineage_markdown` to the flow run.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar
from uuid import UUID

from prefect import Flow
from prefect.client.schemas.objects import FlowRun, State

from prov_prefect import artifacts
from prov_prefect.config import ProvenanceConfig

__all__ = ["flow_lineage", "provenance_flow"]

F = TypeVar("F", bound=Flow[Any, Any])

logger = logging.getLogger("prov_prefect")


def provenance_flow(flow: F | None = None, *, config: ProvenanceConfig | None = None) -> Any:
    """Return ``flow`` with a hook that writes its run's lineage artifact; a decorator too."""

    def decorate(f: F) -> F:
        if not isinstance(f, Flow):
            raise TypeError(f"@provenance_flow goes above @flow; got {type(f).__name__}")
        cfg = config or ProvenanceConfig()

        def hook(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
            del flow, state  # the protocol's names; only the run is needed
            try:
                flow_lineage(flow_run.id, cfg)
            except Exception:
                logger.exception(
                    "provgate could not write the lineage of flow run %s", flow_run.name
                )
                raise

        hook.__name__ = "provgate_lineage"
        return f.with_options(  # type: ignore[return-value]
            on_completion=[*f.on_completion_hooks, hook],
            on_failure=[*f.on_failure_hooks, hook],
        )

    return decorate if flow is None else decorate(flow)


def flow_lineage(flow_run_id: UUID, config: ProvenanceConfig | None = None) -> str:
    """Write the lineage artifact of a flow run now, and return its markdown."""
    from prov_core.lineage_index import parse_record

    cfg = config or ProvenanceConfig()
    nodes = artifacts.read_flow_nodes(flow_run_id)
    edges: list[tuple[int, int]] = []
    retries: set[tuple[int, int]] = set()
    labels: dict[int, str] = {}
    links: dict[int, str] = {}
    with cfg.open_home().open_ledger() as ledger:
        for i in dict.fromkeys(n.attestation.log_index for n in nodes):
            link = cfg.lineage_link(i)
            if link:
                links[i] = link
            for ref in parse_record(i, ledger.entry(i)).refs:
                edges.append((ref.parent, i))
                if ref.kind == "retry-of":
                    retries.add((ref.parent, i))
                if ref.parent not in labels:
                    parent = parse_record(ref.parent, ledger.entry(ref.parent))
                    label = parent.name
                    if not label.startswith(parent.kind):
                        label = f"{parent.kind}: {label}"
                    labels[ref.parent] = label if len(label) <= 48 else label[:47] + "…"
    markdown = artifacts.lineage_markdown(nodes, list(dict.fromkeys(edges)), labels, links, retries)
    artifacts.create_lineage_artifact(flow_run_id, markdown)
    return markdown
