"""Benchmark: the Dagster adapter's overhead on a pipeline over >= 1 GiB of Parquet.

    python benchmarks/pipeline_overhead.py [--gib 1] [--files 8] [--reps 3] [--profile]

Needs the dagster extra (the nox ``dagster`` session's interpreter has it).

1. Writes ``--files`` Parquet files totalling ``--gib`` GiB (int64, float64 and
   string columns, random; written once, not timed).
2. Materializes, in one process and interleaved over ``--reps`` repetitions (after one
   warm-up of each, so both read from the page cache), the same two-asset pipeline
   on an ephemeral instance:
   - plain: ``@asset`` ``raw`` (lists the files) -> ``@asset`` ``transform`` (reads each
     file, derives a column, filters, writes Parquet);
   - provgate: ``@provenance_asset`` ``raw`` returning ``Ingest(dir, per_file=True)``
     (every file's BLAKE3, one ingest record) -> ``@provenance_asset`` ``transform``,
     the same code, returning the files it wrote (their BLAKE3, one signed step record,
     the metadata and the data version).
3. Prints each variant's median wall time and the median overhead
   ``(provgate - plain) / plain``. Target: <= 2%. With ``--profile`` it also prints where
   the provgate run's extra time goes (cProfile, top functions by cumulative time).
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


def transform(src: Path, dst: Path) -> list[Path]:
    """The transform both variants run: derive a column, filter, write Parquet."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for path in sorted(src.glob("*.parquet")):
        table = pq.read_table(path)
        table = table.append_column("double", pc.multiply(table["value"], 2.0))
        table = table.filter(pc.greater(table["value"], -1.0))
        target = dst / path.name
        pq.write_table(table, target, compression="none")
        out.append(target)
    return out


def plain_assets(src: Path, dst: Path) -> list[Any]:
    from dagster import MaterializeResult, asset

    @asset(name="raw")
    def raw():
        return MaterializeResult(metadata={"files": len(list(src.glob("*.parquet")))})

    @asset(name="transform", deps=[raw])
    def transformed():
        return MaterializeResult(metadata={"files": len(transform(src, dst))})

    return [raw, transformed]


def provgate_assets(src: Path, dst: Path) -> list[Any]:
    from prov_dagster import Ingest, provenance_asset

    from prov_core.ingest import IngestRequest

    @provenance_asset(name="raw")
    def raw() -> Ingest:
        return Ingest(src, IngestRequest(source="file:///bench", license="CC0-1.0", per_file=True))

    @provenance_asset(name="transform", deps=[raw])
    def transformed() -> list[Path]:
        return transform(src, dst)

    return [raw, transformed]


def run(variant: str, src: Path, work: Path, profile: cProfile.Profile | None = None) -> float:
    from dagster import DagsterInstance, materialize
    from prov_dagster import ProvenanceResource

    dst = work / "out"
    shutil.rmtree(dst, ignore_errors=True)
    home = work / "home"
    if variant == "plain":
        assets, resources = plain_assets(src, dst), {}
    else:
        assets = provgate_assets(src, dst)
        resources = {"provenance": ProvenanceResource(home=str(home), lineage_url=None)}
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        instance = DagsterInstance.ephemeral(tempdir=tmp)
        start = time.perf_counter()
        if profile is not None:
            profile.enable()
        result = materialize(assets, resources=resources, instance=instance)
        if profile is not None:
            profile.disable()
        elapsed = time.perf_counter() - start
        instance.dispose()
    assert result.success
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="provgate-bench-") as name:
        work = Path(name)
        src = work / "in"
        size = write_input(src, args.gib, args.files)
        print(f"input: {args.files} Parquet files, {size / (1 << 30):.2f} GiB")
        times: dict[str, list[float]] = {"plain": [], "provgate": []}
        variants = ("plain", "provgate")
        for variant in variants:  # warm-up: page cache, imports
            run(variant, src, work)
        for _ in range(args.reps):
            for variant in variants:
                times[variant].append(run(variant, src, work))
        ratios = [(p - b) / b for b, p in zip(times["plain"], times["provgate"], strict=True)]
        for variant, values in times.items():
            shown = ", ".join(f"{v:.2f}" for v in values)
            print(f"{variant:9s} median {statistics.median(values):7.2f} s  ({shown})")
        print(f"overhead  median {100 * statistics.median(ratios):+.1f}%  (target <= 2%)")
        if args.profile:
            profile = cProfile.Profile()
            run("provgate", src, work, profile)
            stats = pstats.Stats(profile).sort_stats("cumulative")
            stats.print_stats(r"prov_core|prov_dagster|digest|blake3|sign", 15)
        print(f"load average: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
