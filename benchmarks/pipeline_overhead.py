"""Benchmark: the Dagster adapter's overhead on a pipeline over >= 1 GiB of Parquet.

    python benchmarks/pipeline_overhead.py [--gib 1] [--files 8] [--reps 5]
        [--configs listed,collected] [--profile] [--pieces]

Needs the dagster extra (the nox ``dagster`` session's interpreter has it).

1. Writes ``--files`` Parquet files totalling ``--gib`` GiB (int64, float64 and
   string columns, random; written once, not timed) into a source directory.
2. Materializes, in one process and interleaved over ``--reps`` repetitions (after one
   warm-up of each, so all read from the page cache), the same two-asset pipeline on
   an ephemeral instance, in two configurations:

   - ``listed`` (the original one): ``raw`` is the source directory as it is.
     Plain ``@asset`` ``raw`` only lists the files; ``@provenance_asset`` ``raw``
     returns ``Ingest(source, per_file=True)`` and so reads and hashes all of it (one
     ingest record), work the plain asset has no counterpart for.
   - ``collected``: both ``raw`` assets collect the files into the pipeline's raw zone,
     as an ingestion does. Plain: ``shutil.copyfile`` each file; provgate:
     ``prov_core.sink.copy_into`` each file (the same kernel copy, the stored copy
     hashed chunk by chunk as it lands) and ``Ingest(zone, per_file=True)``, which
     takes those digests without reading the files again.

   In both, ``transform`` reads each raw file, derives a column, filters and writes
   Parquet: plain with ``pq.write_table(table, path)``; provgate writes the same table
   through ``prov_core.open_output(path)`` (hashed as written, on a worker thread)
   and returns the paths (one signed step record, metadata, data version).
   ``listed`` also runs ``provgate-reread``, the adapter as it was measured before:
   the transform writes to the path and provgate reads each output back afterwards.
3. Prints each variant's median wall time and the median of the per-repetition
   overheads ``(provgate - plain) / plain``, the same for process CPU time (all
   threads), and the load average before and after. Target: <= 2% (wall).
   ``--profile`` then runs each provgate variant once under cProfile and prints where
   its time goes (the main thread's functions; the hashing worker's CPU shows in the
   CPU-time figures, not in cProfile).
4. ``--pieces`` instead prints the CPU per GiB of each piece of the hashing work, best
   of ``--reps`` on one input file: the transform's write to a path and through
   ``open_output``, BLAKE3, ``digest_path``, ``shutil.copyfile`` and ``copy_into``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def write_input(directory: Path, gib: float, files: int) -> int:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    target = int(gib * (1 << 30)) // files
    rows = max(1, target // 40)  # ~40 bytes a row after Parquet encoding of random data
    total = 0
    for i in range(files):
        words = rng.integers(0, 1 << 62, rows, dtype=np.int64).astype(str)
        table = pa.table(
            {
                "id": np.arange(i * rows, (i + 1) * rows, dtype=np.int64),
                "value": rng.standard_normal(rows),
                "text": pa.array(words),
            }
        )
        path = directory / f"part-{i:03d}.parquet"
        pq.write_table(table, path, compression="none")
        total += path.stat().st_size
    return total


def transform(src: Path, dst: Path, open_output: Any = None) -> list[Path]:
    """The transform both variants run: derive a column, filter, write Parquet.

    Plain writes to the path; provgate passes ``prov_core.open_output``.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for path in sorted(src.glob("*.parquet")):
        table = pq.read_table(path)
        table = table.append_column("double", pc.multiply(table["value"], 2.0))
        table = table.filter(pc.greater(table["value"], -1.0))
        target = dst / path.name
        if open_output is None:
            pq.write_table(table, target, compression="none")
        else:
            with open_output(target) as f:
                pq.write_table(table, f, compression="none")
        out.append(target)
    return out


def plain_assets(config: str, src: Path, zone: Path, dst: Path) -> list[Any]:
    from dagster import MaterializeResult, asset

    @asset(name="raw")
    def raw():
        files = sorted(src.glob("*.parquet"))
        if config == "collected":
            zone.mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copyfile(f, zone / f.name)
        return MaterializeResult(metadata={"files": len(files)})

    @asset(name="transform", deps=[raw])
    def transformed():
        return MaterializeResult(metadata={"files": len(transform(_raw(config, src, zone), dst))})

    return [raw, transformed]


def provgate_assets(config: str, src: Path, zone: Path, dst: Path, sink: bool) -> list[Any]:
    from prov_dagster import Ingest, provenance_asset

    from prov_core import open_output
    from prov_core.ingest import IngestRequest
    from prov_core.sink import copy_into

    request = IngestRequest(source="file:///bench", license="CC0-1.0", per_file=True)

    @provenance_asset(name="raw")
    def raw() -> Ingest:
        if config == "collected":
            zone.mkdir(parents=True, exist_ok=True)
            for f in sorted(src.glob("*.parquet")):
                copy_into(f, zone / f.name)
        return Ingest(_raw(config, src, zone), request)

    @provenance_asset(name="transform", deps=[raw])
    def transformed() -> list[Path]:
        return transform(_raw(config, src, zone), dst, open_output if sink else None)

    return [raw, transformed]


def _raw(config: str, src: Path, zone: Path) -> Path:
    return zone if config == "collected" else src


def run(
    config: str, variant: str, src: Path, work: Path, profile: cProfile.Profile | None = None
) -> tuple[float, float]:
    """One materialization of both assets: (wall seconds, process CPU seconds)."""
    from dagster import DagsterInstance, materialize
    from prov_dagster import ProvenanceResource

    dst, zone, home = work / "out", work / "zone", work / "home"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.rmtree(zone, ignore_errors=True)
    if variant == "plain":
        assets, resources = plain_assets(config, src, zone, dst), {}
    else:
        assets = provgate_assets(config, src, zone, dst, sink=variant == "provgate")
        resources = {"provenance": ProvenanceResource(home=str(home), lineage_url=None)}
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        instance = DagsterInstance.ephemeral(tempdir=tmp)
        start, cpu = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        result = materialize(assets, resources=resources, instance=instance)
        if profile is not None:
            profile.disable()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        instance.dispose()
    assert result.success
    return elapsed, cpu


#: The variants of each configuration; the first is the peer (plain Dagster).
#: ``provgate-reread`` is the adapter as it was before outputs were hashed as written:
#: the transform writes to the path and provgate reads each output back after it returns.
VARIANTS = {
    "listed": ("plain", "provgate", "provgate-reread"),
    "collected": ("plain", "provgate"),
}


def _median_overhead(plain: list[float], ours: list[float]) -> float:
    return statistics.median((p - b) / b for b, p in zip(plain, ours, strict=True))


def pieces(src: Path, work: Path, reps: int) -> None:
    """CPU per GiB of each piece of hashing work, best of ``reps`` (the uncontended cost).

    On one input file: the transform's own ``pq.write_table`` to a path and through
    ``open_output`` (the writing thread's CPU, and the process's: the hashing worker),
    BLAKE3 in one thread and ``digest_path``, ``shutil.copyfile`` and ``copy_into``.
    """
    import blake3
    import pyarrow.parquet as pq

    from prov_core import open_output
    from prov_core.digest import digest_path
    from prov_core.sink import copy_into

    first = sorted(src.glob("*.parquet"))[0]
    table = pq.read_table(first)
    data = first.read_bytes()
    out = work / "piece"

    def write_plain() -> None:
        pq.write_table(table, out, compression="none")

    def write_sink() -> None:
        with open_output(out) as f:
            pq.write_table(table, f, compression="none")

    cases = {
        "pq.write_table to a path": (write_plain, out),
        "pq.write_table through open_output": (write_sink, out),
        "BLAKE3 in memory, 1 thread": (lambda: blake3.blake3(data).digest(), first),
        "digest_path (update_mmap, all cores)": (lambda: digest_path(first), first),
        "shutil.copyfile": (lambda: shutil.copyfile(first, out), first),
        "copy_into": (lambda: copy_into(first, out), first),
    }
    best: dict[str, tuple[float, float, float]] = {}
    for _ in range(reps):
        for name, (fn, sized) in cases.items():
            out.unlink(missing_ok=True)
            w, c, t = time.perf_counter(), time.process_time(), time.thread_time()
            fn()
            w, c, t = time.perf_counter() - w, time.process_time() - c, time.thread_time() - t
            scale = (1 << 30) / sized.stat().st_size
            old = best.get(name, (float("inf"),) * 3)
            best[name] = (min(old[0], w * scale), min(old[1], c * scale), min(old[2], t * scale))
    print(f"\npieces, per GiB, best of {reps} ({first.stat().st_size / (1 << 20):.0f} MiB file):")
    print(f"{'':38s} {'wall s':>7s} {'cpu s':>7s} {'this thread':>11s}")
    for name, (w, c, t) in best.items():
        print(f"{name:38s} {w:7.3f} {c:7.3f} {t:11.3f}")
    out.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--configs", default="listed,collected")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--pieces", action="store_true", help="only the CPU per GiB of each piece of hashing"
    )
    args = parser.parse_args()
    configs = [c for c in args.configs.split(",") if c]
    if not configs or set(configs) - {"listed", "collected"}:
        parser.error("--configs takes listed and/or collected, comma-separated")
    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)
    logging.disable(logging.INFO)  # Dagster's per-event DEBUG/INFO lines, not our figures
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="provgate-bench-") as name:
        work = Path(name)
        src = work / "in"
        size = write_input(src, args.gib, args.files)
        print(f"input: {args.files} Parquet files, {size / (1 << 30):.2f} GiB")
        if args.pieces:
            pieces(src, work, args.reps)
            print(f"load average after: {os.getloadavg()}")
            return 0
        cells = [(c, v) for c in configs for v in VARIANTS[c]]
        wall: dict[tuple[str, str], list[float]] = {cell: [] for cell in cells}
        cpu: dict[tuple[str, str], list[float]] = {cell: [] for cell in cells}
        for cell in cells:  # warm-up: page cache, imports
            run(*cell, src, work)
        for _ in range(args.reps):
            for cell in cells:
                w, c = run(*cell, src, work)
                wall[cell].append(w)
                cpu[cell].append(c)
        for config in configs:
            print(f"\n[{config}]")
            for variant in VARIANTS[config]:
                w, c = wall[config, variant], cpu[config, variant]
                shown = ", ".join(f"{v:.2f}" for v in w)
                print(
                    f"{variant:16s} wall median {statistics.median(w):6.2f} s  ({shown})"
                    f"   cpu median {statistics.median(c):6.2f} s"
                )
            for variant in VARIANTS[config][1:]:
                ow = _median_overhead(wall[config, "plain"], wall[config, variant])
                oc = _median_overhead(cpu[config, "plain"], cpu[config, variant])
                print(
                    f"overhead of {variant:16s} wall median {100 * ow:+.1f}% (target <= 2%)"
                    f"   cpu median {100 * oc:+.1f}%"
                )
        if args.profile:
            for config in configs:
                profile = cProfile.Profile()
                w, c = run(config, "provgate", src, work, profile)
                print(f"\n[{config}] provgate under cProfile: wall {w:.2f} s, cpu {c:.2f} s")
                stats = pstats.Stats(profile).sort_stats("cumulative")
                stats.print_stats(r"prov_core|prov_dagster|parquet/core|blake3|shutil", 25)
        print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
