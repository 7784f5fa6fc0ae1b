"""Benchmark: provgate digests against b3sum and openssl, and per-sample ids.

    python benchmarks/digest.py [--size-gib 2] [--rows 1000000] [--rounds 5]

1. Writes a file of ``--size-gib`` GiB (random bytes) and times, as whole
   processes with start-up included, interleaved over ``--rounds`` rounds after
   one warm-up round (so every tool reads from the page cache):
   ``provgate digest FILE`` (when the console script is installed),
   ``python -m prov_core.digest FILE``, ``b3sum FILE`` and
   ``openssl dgst -sha256 FILE``. Prints each median and the speed ratios.
2. Times the per-row hash candidates on 30-100 byte inputs (the call
   overhead dominates): BLAKE3, SHA-256, BLAKE2b-256, BLAKE2s.
3. Builds a table of ``--rows`` rows x 3 columns (int64, float64, string)
   and times per-sample ids (SHA-256 leaf hashes) plus the sorted Merkle
   root: each stage alone, the whole in this process and in worker processes
   (the default for large tables), rows/s and the time per 1,000,000 rows,
   and checks that both give the same bytes. Prints the load average.

Targets: provgate >= 0.8x b3sum's speed and >= 3x openssl sha256's; 1M rows < 2 s.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")
sys.path.insert(0, str(REPO))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _write_file(path: Path, size: int) -> None:
    block = os.urandom(64 << 20)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def _commands(path: Path) -> dict[str, list[str]]:
    cmds: dict[str, list[str]] = {}
    venv_bin = Path(sys.executable).parent
    provgate = venv_bin / "provgate"
    if provgate.exists():
        probe = subprocess.run(
            [str(provgate), "digest", "--help"], capture_output=True, env=_env(), check=False
        )
        if probe.returncode == 0:
            cmds["provgate digest"] = [str(provgate), "digest", str(path)]
    cmds["python -m prov_core.digest"] = [sys.executable, "-m", "prov_core.digest", str(path)]
    if shutil.which("b3sum"):
        cmds["b3sum"] = ["b3sum", str(path)]
    if shutil.which("openssl"):
        cmds["openssl dgst -sha256"] = ["openssl", "dgst", "-sha256", str(path)]
    return cmds


def _run(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, env=_env(), check=True, text=True)
    return time.perf_counter() - start, out.stdout.split()[0] if out.stdout else ""


def bench_file(size_gib: float, rounds: int, directory: str | None) -> None:
    size = int(size_gib * (1 << 30))
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        path = Path(tmp) / "data.bin"
        t = time.perf_counter()
        _write_file(path, size)
        print(f"wrote {size / (1 << 30):.2f} GiB in {time.perf_counter() - t:.1f} s: {path}")
        cmds = _commands(path)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        digests: dict[str, str] = {}
        for r in range(rounds + 1):  # round 0 warms the page cache and is not counted
            for name, cmd in cmds.items():
                elapsed, out = _run(cmd)
                digests[name] = out
                if r:
                    times[name].append(elapsed)
        b3 = {v for k, v in digests.items() if k != "openssl dgst -sha256"}
        print(f"BLAKE3 outputs agree: {len(b3) == 1} ({next(iter(b3))})")
        med = {name: statistics.median(v) for name, v in times.items()}
        gib = size / (1 << 30)
        print(f"\nwhole-process time, median of {rounds} interleaved rounds:")
        for name, m in med.items():
            print(f"  {name:28s} {m:7.3f} s  {gib / m:6.2f} GiB/s")
        ours = [n for n in ("provgate digest", "python -m prov_core.digest") if n in med]
        for name in ours:
            if "b3sum" in med:
                ratio = med["b3sum"] / med[name]
                print(f"  {name} speed / b3sum speed:   {ratio:.2f}x (target >= 0.8)")
            if "openssl dgst -sha256" in med:
                ratio = med["openssl dgst -sha256"] / med[name]
                print(f"  {name} speed / openssl sha256: {ratio:.2f}x (target >= 3)")


def bench_hashes(n: int = 400_000) -> None:
    import blake3

    rng = random.Random(7)
    data = [rng.randbytes(rng.randrange(30, 101)) for _ in range(n)]

    def b2b(x: bytes) -> hashlib._Hash:
        return hashlib.blake2b(x, digest_size=32)

    candidates = {
        "blake3": (blake3.blake3, blake3.blake3.digest),
        "sha256 (OpenSSL)": (hashlib.sha256, type(hashlib.sha256()).digest),
        "blake2b-256": (b2b, type(hashlib.blake2b()).digest),
        "blake2s": (hashlib.blake2s, type(hashlib.blake2s()).digest),
    }
    print(f"\nper-row hash of {n} inputs of 30-100 bytes (best of 5, map over C calls):")
    for name, (ctor, digest) in candidates.items():
        best = min(_timed(lambda c=ctor, d=digest: list(map(d, map(c, data)))) for _ in range(5))
        print(f"  {name:18s} {best / n * 1e9:6.0f} ns/row")


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def _in_process(fn: Callable[[], T]) -> Callable[[], T]:
    """_in_process returns ``fn`` run with the hashing worker processes turned off."""

    def run() -> T:
        from prov_core._samples import HASH_PROCESSES_ENV

        before = os.environ.get(HASH_PROCESSES_ENV)
        os.environ[HASH_PROCESSES_ENV] = "0"
        try:
            return fn()
        finally:
            if before is None:
                del os.environ[HASH_PROCESSES_ENV]
            else:
                os.environ[HASH_PROCESSES_ENV] = before

    return run


def bench_rows(rows: int, rounds: int) -> None:
    import pyarrow as pa

    from prov_core import _rows, _samples

    rng = random.Random(1)
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "score": pa.array([rng.random() for _ in range(rows)], pa.float64()),
            "name": pa.array([f"name-{rng.randrange(10**9)}" for _ in range(rows)], pa.string()),
        }
    )
    procs = _samples.hash_processes(rows, _rows.PARALLEL_MIN_ROWS)
    print(
        f"\nper-sample ids + sorted Merkle root, {rows} rows x 3 columns (int, float, string); "
        f"worker processes: {procs or 'none (in-process)'}; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    batches = list(_rows._batches(table, _rows.BATCH_ROWS))
    encoded = [_rows._encode_leaves(b) for b in batches]
    blob = _rows.row_ids_blob(table)
    ids = _rows._ids_array(blob)
    sorted_blob = b"".join(_rows._sorted_buckets(ids, _rows.SORT_BUCKETS))
    # Each stage alone, then the whole: in this process (encoding overlaps id hashing on
    # a thread, the bucketed sort overlaps the tree), and in worker processes (the default
    # from PARALLEL_MIN_ROWS rows on). Both give the same bytes, checked below.
    stages = {
        "encode rows": lambda: [_rows._encode_leaves(b) for b in batches],
        "hash ids, SHA-256 per row": lambda: [_rows._hash_cells(e) for e in encoded],
        "ids, in-process (encode + hash)": _in_process(lambda: _rows.row_ids_blob(table)),
        "ids, worker processes": lambda: _rows.row_ids_blob(table),
        "sort ids": lambda: list(_rows._sorted_buckets(ids, _rows.SORT_BUCKETS)),
        "tree, SHA-256 per node": lambda: _samples.root_of_level(sorted_blob),
        "sort + root, in-process": _in_process(lambda: _rows.sorted_ids_and_root(blob)),
        "sort + root, worker processes": lambda: _rows.sorted_ids_and_root(blob),
        "sample_set_of_table, in-process": _in_process(lambda: _rows.sample_set_of_table(table)),
        "sample_set_of_table (ids + root)": lambda: _rows.sample_set_of_table(table),
    }
    times: dict[str, list[float]] = {k: [] for k in stages}
    for _ in range(rounds):  # interleaved, so noise spreads over every stage alike
        for name, fn in stages.items():
            times[name].append(_timed(fn))
    for name, v in times.items():
        print(f"  {name:34s} median {statistics.median(v):6.3f} s  best {min(v):6.3f} s")
    serial = _in_process(lambda: _rows.sample_set_of_table(table))()
    parallel = _rows.sample_set_of_table(table)
    same = serial.sorted_ids() == parallel.sorted_ids() and serial.root == parallel.root
    m = statistics.median(times["sample_set_of_table (ids + root)"])
    best = min(times["sample_set_of_table (ids + root)"])
    print(
        f"  => {rows} rows: ids + root in {m:.3f} s median ({best:.3f} s best) = "
        f"{rows / m:,.0f} rows/s; for 1,000,000 rows {m * 1e6 / rows:.2f} s (target < 2 s)"
    )
    print(f"  in-process and worker-process ids and root identical: {same}")
    print(f"  load average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-gib", type=float, default=2.0)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dir", default=None, help="where to write the test file (default: $TMPDIR)")
    ap.add_argument("--skip-file", action="store_true")
    ap.add_argument("--skip-rows", action="store_true")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if not args.skip_file:
        bench_file(args.size_gib, args.rounds, args.dir)
    if not args.skip_rows:
        bench_hashes()
        bench_rows(args.rows, args.rounds)


if __name__ == "__main__":
    main()
