"""Raw ledger throughput: single appends, batched appends, per-sample trees.

Run from the repository root:
``.venv/bin/python -m benchmarks.ledger_raw [--appends N] [--batch N]``
(or ``PYTHONPATH=. .venv/bin/python benchmarks/ledger_raw.py``)

Prints, for the SQLite ledger in a temporary directory:
- the cost of one append of a ~1 KB envelope (transaction, subtrees,
  signed checkpoint, WAL commit), the Ed25519 signing alone, and the
  difference (our own time);
- batched appends in leaves per second;
- MemoryTree / root_of over 1,000,000 leaf hashes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from prov_core.ledger import Checkpoint, NoteSigner, SQLiteLedger
from prov_core.ledger.merkle import MemoryTree, leaf_hash, root_of

ORIGIN = "bench.provgate/ledger"


def _timed(fn: object, n: int) -> tuple[float, float]:
    """_timed calls ``fn`` n times and returns (median, mean) seconds per call."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times), statistics.mean(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    args = parser.parse_args()

    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    envelope = b'{"payloadType":"application/vnd.in-toto+json","payload":"' + b"A" * 900 + b'"}'
    body = Checkpoint(ORIGIN, 123456, bytes(32)).body()
    sign, _ = _timed(lambda: signer.sign_note(body), args.appends)

    with tempfile.TemporaryDirectory() as tmp:
        with SQLiteLedger(Path(tmp) / "l.db", ORIGIN, signer) as ledger:
            ledger.append([envelope] * 1000)  # a non-trivial tree
            one, one_mean = _timed(lambda: ledger.append([envelope]), args.appends)
            samples = []
            for _ in range(3):
                t0 = time.perf_counter()
                ledger.append([envelope] * args.batch)
                samples.append(args.batch / (time.perf_counter() - t0))
        with SQLiteLedger(Path(tmp) / "full.db", ORIGIN, signer, synchronous="FULL") as ledger:
            one_full, _ = _timed(lambda: ledger.append([envelope]), 200)

    print(f"sign_note (Ed25519, checkpoint body), median    {sign * 1e6:8.1f} us")
    print(f"append 1 x {len(envelope)} B, NORMAL, median          {one * 1e6:8.1f} us")
    print(f"  minus signing (our own + SQLite), median       {(one - sign) * 1e6:8.1f} us")
    print(f"  mean, WAL checkpoint fsyncs included         {one_mean * 1e6:8.1f} us")
    print(f"append 1 x {len(envelope)} B, FULL, median            {one_full * 1e6:8.1f} us")
    rate = statistics.median(samples)
    print(f"batched append ({args.batch} x {len(envelope)} B)       {rate:10,.0f} leaves/s")

    hashes = [leaf_hash(i.to_bytes(8, "big")) for i in range(args.leaves)]
    t0 = time.perf_counter()
    root = root_of(hashes)
    t_root = time.perf_counter() - t0
    t0 = time.perf_counter()
    tree = MemoryTree(hashes)
    t_tree = time.perf_counter() - t0
    assert tree.root() == root
    print(f"root_of({args.leaves:,} leaf hashes)       {t_root:8.2f} s")
    print(f"MemoryTree({args.leaves:,} leaf hashes)    {t_tree:8.2f} s")


if __name__ == "__main__":
    main()
