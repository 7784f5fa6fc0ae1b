"""Reading records back out of the ledger, in the JSON forms the CLI prints.

``decode_entry`` gives ``{"envelope", "statement"}`` where ``envelope`` is the
DSSE envelope exactly as stored (so anyone can re-serialize it with RFC 8785
and recompute the leaf hash and ``envelope_sha256``) and ``statement`` is the
decoded payload. Proof documents carry hashes as lowercase hex.
"""

from __future__ import annotations

from typing import Any

from prov_core.canonical import parse_json
from prov_core.errors import InputError
from prov_core.ledger.base import Ledger
from prov_core.ledger.merkle import leaf_hash, tree_root

__all__ = ["consistency_proof", "decode_entry", "inclusion_proof"]


def decode_entry(leaf: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stored envelope and its decoded statement (payload parsed, not verified)."""
    from prov_core.signing import Envelope

    envelope = Envelope.parse(leaf)
    statement = parse_json(envelope.payload)
    return parse_json(leaf), statement


def _size(ledger: Ledger, size: int | None) -> int:
    current = ledger.size()
    if size is None:
        return current
    if not 0 <= size <= current:
        raise InputError(f"tree size {size} is out of range: the log has {current} entries")
    return size


def inclusion_proof(ledger: Ledger, index: int, size: int | None = None) -> dict[str, Any]:
    """``{"leaf_index", "tree_size", "leaf_hash", "root_hash", "audit_path"}`` (hex)."""
    n = _size(ledger, size)
    if not 0 <= index < n:
        raise InputError(f"log index {index} is out of range for a tree of {n} entries")
    path = ledger.prove_inclusion(index, n)
    return {
        "leaf_index": index,
        "tree_size": n,
        "leaf_hash": leaf_hash(ledger.entry(index)).hex(),
        "root_hash": tree_root(n, ledger).hex(),
        "audit_path": [h.hex() for h in path],
    }


def consistency_proof(ledger: Ledger, old: int, new: int) -> dict[str, Any]:
    """``{"old_size", "new_size", "old_root", "new_root", "path"}`` (hex)."""
    new = _size(ledger, new)
    if not 0 <= old <= new:
        raise InputError(f"old size {old} must be between 0 and new size {new}")
    path = ledger.prove_consistency(old, new)
    return {
        "old_size": old,
        "new_size": new,
        "old_root": tree_root(old, ledger).hex(),
        "new_root": tree_root(new, ledger).hex(),
        "path": [h.hex() for h in path],
    }
