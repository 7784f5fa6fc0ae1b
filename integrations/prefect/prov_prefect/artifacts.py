"""What provgate shows in the Prefect UI, and how it reads back what it wrote there.

Open-source Prefect has no asset graph, so each node is an artifact of its task run
(one per try: a retried task run has a node per try, the last one its own):

- a **table** artifact (the node: task run, try, cache state, log index, envelope
  SHA-256, inputs, outputs with their digests, verification status) whose
  ``metadata_`` holds the attestation reference (:data:`META` keys) that downstream
  task runs read back;
- a **link** artifact to the record's page in ``provgate ui``;
- per flow run, a **markdown** artifact: the run's lineage as a table and as a Mermaid
  diagram (the v2 UI renders Mermaid; the table stands on its own in the v1 UI).

A node computed under a cache key gets the artifact key :func:`cache_artifact_key`, so
a later *cached* run of the same key finds the attestation of the run that computed it
(by artifact key) instead of recording a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    ArtifactFilterTaskRunId,
    ArtifactFilterType,
)
from prefect.client.schemas.sorting import ArtifactSort

if TYPE_CHECKING:
    from prov_core.step import Attestation

__all__ = [
    "META",
    "NodeRef",
    "cache_artifact_key",
    "create_lineage_artifact",
    "create_node_artifacts",
    "lineage_markdown",
    "read_cached_node",
    "read_flow_nodes",
    "read_task_run_nodes",
]

_P = "provgate."
META = {
    "kind": _P + "kind",  # "node"
    "log_index": _P + "log_index",
    "envelope_sha256": _P + "envelope_sha256",
    "predicate_type": _P + "predicate_type",
    "origin": _P + "origin",
    "cache": _P + "cache",  # computed | cached
    "task_key": _P + "task_key",
    "task_run_name": _P + "task_run_name",
    "verified": _P + "verified",  # ok | failed | unchecked
    "original_task_run": _P + "original_task_run",  # a cached node: who computed it
    "attempt": _P + "attempt",  # the try it records (Prefect's run_count); none if cached
    "state": _P + "state",  # completed | failed: how that try's function ended
}
"""META names the ``metadata_`` keys of a node's table artifact (values are strings)."""


@dataclass(frozen=True)
class NodeRef:
    """NodeRef is a node as its table artifact remembers it: the attestation and its run."""

    attestation: Attestation
    task_run_id: UUID | None
    flow_run_id: UUID | None
    task_key: str
    task_run_name: str
    cache: str
    verified: str
    attempt: int | None = None
    state: str = "completed"


def cache_artifact_key(storage_key: str) -> str:
    """cache_artifact_key is the artifact key of the node computed under result ``storage_key``.

    Prefect artifact keys allow lowercase letters, digits and dashes only: a hash of the key.
    """
    return "provgate-cache-" + hashlib.sha256(storage_key.encode()).hexdigest()[:40]


def _ref(artifact: Any) -> NodeRef | None:
    from prov_core.errors import InputError
    from prov_core.nodes import attestation_from_dict

    meta: Mapping[str, str] = artifact.metadata_ or {}
    if meta.get(META["kind"]) != "node":
        return None
    try:
        attestation = attestation_from_dict(
            {
                "log_index": int(meta[META["log_index"]]),
                "envelope_sha256": meta[META["envelope_sha256"]],
                "predicate_type": meta[META["predicate_type"]],
                "origin": meta.get(META["origin"], ""),
                "subjects": [],
            }
        )
    except (KeyError, ValueError, InputError):
        return None
    attempt = meta.get(META["attempt"], "")
    return NodeRef(
        attestation,
        artifact.task_run_id,
        artifact.flow_run_id,
        meta.get(META["task_key"], ""),
        meta.get(META["task_run_name"], ""),
        meta.get(META["cache"], "computed"),
        meta.get(META["verified"], "unchecked"),
        int(attempt) if attempt.isdigit() else None,
        meta.get(META["state"], "completed"),
    )


def _read(artifact_filter: ArtifactFilter, limit: int | None = None) -> list[NodeRef]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=artifact_filter, sort=ArtifactSort.CREATED_DESC, limit=limit
        )
    return [r for r in map(_ref, found) if r is not None]


def read_task_run_nodes(task_run_ids: Iterable[UUID]) -> dict[UUID, NodeRef]:
    """read_task_run_nodes maps each task run that has a provgate node to its node.

    A task run with several tries has a node per try: its node is its last try's.
    """
    ids = list(dict.fromkeys(task_run_ids))
    if not ids:
        return {}
    refs = _read(
        ArtifactFilter(
            task_run_id=ArtifactFilterTaskRunId(any_=ids), type=ArtifactFilterType(any_=["table"])
        )
    )
    out: dict[UUID, NodeRef] = {}
    for r in refs:  # newest first: keep the latest try's node (the newest on a tie)
        if r.task_run_id is None:
            continue
        kept = out.get(r.task_run_id)
        if kept is None or (r.attempt or 0) > (kept.attempt or 0):
            out[r.task_run_id] = r
    return out


def read_cached_node(storage_key: str) -> NodeRef | None:
    """read_cached_node is the node of the run that computed result ``storage_key``, if any."""
    refs = _read(
        ArtifactFilter(key=ArtifactFilterKey(any_=[cache_artifact_key(storage_key)])), limit=1
    )
    return refs[0] if refs else None


def read_flow_nodes(flow_run_id: UUID) -> list[NodeRef]:
    """read_flow_nodes lists the nodes of a flow run's task runs, oldest first.

    Every try is listed: a retried task run's failed tries come before its last one.
    """
    refs = _read(
        ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            type=ArtifactFilterType(any_=["table"]),
        )
    )
    return list(reversed(refs))


def create_node_artifacts(
    *,
    attestation: Attestation,
    rows: Sequence[Mapping[str, str]],
    meta: Mapping[str, str],
    task_run_id: UUID,
    flow_run_id: UUID | None,
    key: str | None,
    link: str | None,
    description: str,
) -> None:
    """create_node_artifacts writes a task run's table artifact (and link artifact)."""
    import json

    metadata = {
        META["kind"]: "node",
        META["log_index"]: str(attestation.log_index),
        META["envelope_sha256"]: attestation.envelope_sha256,
        META["predicate_type"]: attestation.predicate_type,
        META["origin"]: attestation.origin,
        **meta,
    }
    with get_client(sync_client=True) as client:
        client.create_artifact(
            ArtifactCreate(
                key=key,
                type="table",
                description=description,
                data=json.dumps([dict(r) for r in rows]),
                metadata_=metadata,
                task_run_id=task_run_id,
                flow_run_id=flow_run_id,
            )
        )
        if link:
            client.create_artifact(
                ArtifactCreate(
                    type="link",
                    description=f"provgate lineage of record {attestation.log_index}",
                    data=f"[provgate record {attestation.log_index}]({link})",
                    task_run_id=task_run_id,
                    flow_run_id=flow_run_id,
                )
            )


def _mermaid_id(log_index: int) -> str:
    return f"r{log_index}"


def lineage_markdown(
    nodes: Sequence[NodeRef],
    edges: Sequence[tuple[int, int]],
    labels: Mapping[int, str],
    links: Mapping[int, str],
    retries: Collection[tuple[int, int]] = (),
) -> str:
    """lineage_markdown renders a flow run's lineage: a table, then a Mermaid diagram.

    ``edges`` are ``(parent, child)`` log indices as the signed records state them;
    those in ``retries`` are ``retry-of`` links (the try before -> its retry), drawn
    dashed; ``labels`` name records that are not nodes of this flow run (ingests,
    gate decisions).
    """

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    parents: dict[int, list[int]] = {}
    for parent, child in edges:
        parents.setdefault(child, []).append(parent)
    lines = [
        "## provgate lineage of this flow run",
        "",
        "| task run | task | try | cache | log index | inputs (log index) | verified"
        " | envelope sha256 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in nodes:
        i = n.attestation.log_index
        index = f"[{i}]({links[i]})" if i in links else str(i)
        ins = ", ".join(str(p) for p in sorted(parents.get(i, []))) or "-"
        tried = "-" if n.attempt is None else f"{n.attempt} {n.state}"
        lines.append(
            f"| {cell(n.task_run_name)} | {cell(n.task_key)} | {tried} | {n.cache} | {index}"
            f" | {ins} | {n.verified} | `{n.attestation.envelope_sha256[:16]}…` |"
        )
    lines += ["", "```mermaid", "flowchart LR"]
    shown: set[int] = set()
    for n in nodes:
        i = n.attestation.log_index
        if i not in shown:
            shown.add(i)
            mark = "✔" if n.verified == "ok" else ("✘" if n.verified == "failed" else "?")
            tried = f" try {n.attempt} {n.state}" if n.state != "completed" else ""
            lines.append(f'    {_mermaid_id(i)}["{cell(n.task_run_name)} #{i}{tried} {mark}"]')
    for parent, child in edges:
        for j in (parent, child):
            if j not in shown:
                shown.add(j)
                lines.append(f'    {_mermaid_id(j)}["{cell(labels.get(j, "record"))} #{j}"]')
        arrow = " -. retry .-> " if (parent, child) in retries else " --> "
        lines.append(f"    {_mermaid_id(parent)}{arrow}{_mermaid_id(child)}")
    lines.append("```")
    return "\n".join(lines) + "\n"


def create_lineage_artifact(flow_run_id: UUID, markdown: str) -> UUID:
    """create_lineage_artifact attaches the lineage markdown to a flow run; returns its id."""
    with get_client(sync_client=True) as client:
        created = client.create_artifact(
            ArtifactCreate(
                type="markdown",
                description="provgate lineage of this flow run",
                data=markdown,
                flow_run_id=flow_run_id,
            )
        )
    return created.id
