"""A writer process of the multi-process SQLite test (importable by 'spawn')."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from prov_core.ledger import NoteSigner, SQLiteLedger


def append_many(path: str, origin: str, seed: bytes, worker: int, count: int) -> list[int]:
    """append_many appends ``count`` single entries and returns the indices it was given."""
    signer = NoteSigner(origin, Ed25519PrivateKey.from_private_bytes(seed))
    got = []
    with SQLiteLedger(path, origin, signer) as ledger:
        for i in range(count):
            got.append(ledger.append([b"worker %d entry %d" % (worker, i)]).first_index)
    return got
