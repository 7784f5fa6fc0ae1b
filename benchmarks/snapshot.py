"""Snapshot benchmark: LocalStore write + commit + verified read-back, next to ``cp -r``.

    python benchmarks/snapshot.py [--files 10000] [--total-mib 1024] [--dir DIR]

Generates ``--files`` files of random bytes totalling ``--total-mib`` MiB
(sizes spread 0.25x..1.75x the mean, in 100 directories) under a temporary
directory (or ``--dir``), then measures, each on a cold destination:

  * the floor: ``cp -r`` of the files (no fsync), and ``cp -r`` + ``sync``
    (the copy made durable, as a commit is);
  * LocalStore: ``write`` of every file (streamed from an open file: BLAKE3
    while copying into the blob store, one staging row each), ``commit``
    (fsync of every blob, then one SQLite transaction), and reading every
    object back through ``read`` (which re-hashes it with BLAKE3) and
    comparing with the source bytes' digest;
  * ``verify``: the commit id, listing and every blob re-derived.

Prints files/s and GB/s (10^9 bytes) per phase and the ratios to the floor.
The page cache is warm for all of them (the sources were just written).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import blake3

from prov_core.snapshots.local import LocalStore


def make_files(src: Path, files: int, total: int, seed: int = 7) -> list[tuple[str, str]]:
    """make_files writes the dataset and returns (relative path, BLAKE3) per file."""
    rng = random.Random(seed)
    weights = [rng.uniform(0.25, 1.75) for _ in range(files)]
    scale = total / sum(weights)
    sizes = [int(w * scale) for w in weights]
    sizes[-1] += total - sum(sizes)
    out = []
    for i, size in enumerate(sizes):
        rel = f"part-{i % 100:02d}/sample-{i:06d}.bin"
        path = src / rel
        path.parent.mkdir(exist_ok=True)
        data = os.urandom(size)
        path.write_bytes(data)
        out.append((rel, blake3.blake3(data).hexdigest()))
    return out


def timed(label: str, fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    took = time.perf_counter() - start
    print(f"  {label:<38} {took:8.2f} s", flush=True)
    return took


def rate(files: int, size: int, seconds: float) -> str:
    return f"{files / seconds:10,.0f} files/s  {size / seconds / 1e9:6.3f} GB/s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--total-mib", type=int, default=1024)
    parser.add_argument(
        "--dir", type=Path, default=None, help="work directory (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    total = args.total_mib << 20
    work = Path(tempfile.mkdtemp(prefix="provgate-snapbench-", dir=args.dir))
    try:
        print(
            f"provgate snapshot benchmark: {args.files:,} files, {total / 2**30:.2f} GiB; "
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}"
        )
        src = work / "src"
        src.mkdir()
        print("generating files ...", flush=True)
        manifest = make_files(src, args.files, total)
        os.sync()
        n = len(manifest)

        print("floor:")
        cp = timed(
            "cp -r", lambda: subprocess.run(["cp", "-r", str(src), str(work / "cp1")], check=True)
        )
        cp_sync = timed(
            "cp -r + sync",
            lambda: (
                subprocess.run(["cp", "-r", str(src), str(work / "cp2")], check=True),
                os.sync(),
            ),
        )
        shutil.rmtree(work / "cp1")
        shutil.rmtree(work / "cp2")

        print("LocalStore:")
        store = LocalStore(work / "store", committer="bench")
        store.create_repository("bench", "main")

        def write_all() -> None:
            for rel, _ in manifest:
                with open(src / rel, "rb") as f:
                    store.write("bench", "main", rel, f)

        holder: list[str] = []
        t_write = timed("write (stage) every file", write_all)
        t_commit = timed(
            "commit (fsync blobs + transaction)",
            lambda: holder.append(store.commit("bench", "main", "bench").id),
        )
        commit_id = holder[0]

        def read_all() -> None:
            for rel, digest in manifest:
                data = store.read("bench", commit_id, rel)
                if blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest() != digest:
                    raise SystemExit(f"read-back mismatch at {rel}")

        t_read = timed("read back + verify every file", read_all)
        t_verify = timed(
            "verify(commit) (ids, listing, blobs)", lambda: store.verify("bench", commit_id)
        )
        store.close()

        snap = t_write + t_commit
        print("\nresults:")
        print(f"  cp -r                      {rate(n, total, cp)}")
        print(f"  cp -r + sync               {rate(n, total, cp_sync)}")
        print(f"  write + commit             {rate(n, total, snap)}")
        print(f"  read back + verify         {rate(n, total, t_read)}")
        print(f"  write + commit + read back {rate(n, total, snap + t_read)}")
        print(f"  verify(commit)             {rate(n, total, t_verify)}")
        print("ratios (time / floor):")
        print(f"  write + commit  vs cp -r          {snap / cp:6.2f}x")
        print(f"  write + commit  vs cp -r + sync   {snap / cp_sync:6.2f}x")
        print(f"  write + commit + read vs cp -r    {(snap + t_read) / cp:6.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
