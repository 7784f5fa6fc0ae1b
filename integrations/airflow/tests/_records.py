"""Reading back what the DAG runs recorded, straight from the provgate ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def open_home(path: Path) -> Any:
    from prov_core.home import open_home as _open

    return _open(path)


def statement(home: Any, log_index: int) -> dict[str, Any]:
    from prov_core.records import decode_entry

    with home.open_ledger() as ledger:
        return decode_entry(ledger.entry(log_index))[1]


def input_indices(st: dict[str, Any]) -> dict[int, str]:
    """log index -> envelope sha256 of every attestation input of a step statement."""
    deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
    return {
        d["annotations"]["logIndex"]: d["digest"]["sha256"]
        for d in deps
        if d["name"].startswith("attestation:")
    }


def orchestrator(st: dict[str, Any]) -> dict[str, Any]:
    return st["predicate"]["buildDefinition"]["internalParameters"]["orchestrator"]


def node_report(home: Any, attestation: dict[str, Any]) -> Any:
    from prov_core.nodes import attestation_from_dict, verify_node

    return verify_node(attestation_from_dict(attestation), home=home)


def steps(home: Any) -> list[tuple[int, dict[str, Any]]]:
    """Every SLSA Provenance statement in the ledger, with its log index."""
    from prov_core.records import decode_entry

    out = []
    with home.open_ledger() as ledger:
        for i in range(ledger.size()):
            st = decode_entry(ledger.entry(i))[1]
            if st["predicateType"] == "https://slsa.dev/provenance/v1":
                out.append((i, st))
    return out
