"""Ledger benchmark: signed appends per second and full-ledger verification.

    python benchmarks/ledger.py [--records 20000] [--batch 1000] [--signing-workers N]
    python benchmarks/ledger.py --concurrent [--rounds 3] [--seconds 3] [--writers 1 4 8]

The first form measures, on a fresh home in a temporary directory:
  * one recorded step (canonicalize, sign, append, commit) — µs per step,
    next to its peer: openlineage-python writing one unsigned RunEvent to a
    file with its FileTransport (if openlineage-python is installed), the two
    interleaved in alternating chunks so machine load hits both alike;
  * signed appends per second, batched (``Recorder.record_many``), with the
    recorder's signing worker processes and, interleaved batch by batch, with
    signing in-process (``signing_workers=0``);
  * full-ledger verification (``provgate verify``'s work) in records per second.

``--concurrent`` measures signed appends per second with 1, 4 and 8 writer
processes on PostgreSQL and on SQLite instead (``benchmarks/ledger_writers.py``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prov_core.home import init_home
from prov_core.step import Artifact, Recorder, record_step, step_statement
from prov_core.verify import verify_home


def _artifacts(i: int) -> tuple[list[Artifact], list[Artifact]]:
    inputs = [Artifact(name=f"raw/part-{i}.parquet", sha256=f"{i:064x}", blake3=f"{i + 1:064x}")]
    outputs = [Artifact(name=f"clean/part-{i}.parquet", sha256=f"{i + 2:064x}", blake3=f"{i:064x}")]
    return inputs, outputs


def our_step(recorder: Recorder) -> Callable[[int], object]:
    """One recorded step: statement, RFC 8785, DSSE signature, append, checkpoint, commit."""

    def step(i: int) -> object:
        inputs, outputs = _artifacts(i)
        return record_step(
            recorder, "clean", inputs=inputs, outputs=outputs,
            parameters={"threshold": 3, "lang": "en"},
            orchestrator={"name": "bench", "run_id": f"run-{i}", "task": "clean", "attempt": 1},
        )  # fmt: skip

    return step


def openlineage_emit(tmp: Path) -> Callable[[int], object] | None:
    """openlineage-python writing one unsigned RunEvent to a file (None if not installed)."""
    try:
        from openlineage.client import OpenLineageClient
        from openlineage.client.event_v2 import (
            InputDataset,
            Job,
            OutputDataset,
            Run,
            RunEvent,
            RunState,
        )
        from openlineage.client.transport.file import FileConfig, FileTransport
    except ImportError:
        return None
    import uuid
    from datetime import UTC, datetime

    transport = FileTransport(FileConfig(log_file_path=str(tmp / "ol.jsonl"), append=True))
    client = OpenLineageClient(transport=transport)

    def emit(i: int) -> object:
        return client.emit(
            RunEvent(
                eventType=RunState.COMPLETE,
                eventTime=datetime.now(UTC).isoformat(),
                run=Run(runId=str(uuid.uuid4())),
                job=Job(namespace="bench", name="clean"),
                producer="https://provgate.dev/bench",
                inputs=[InputDataset(namespace="bench", name=f"raw/part-{i}.parquet")],
                outputs=[OutputDataset(namespace="bench", name=f"clean/part-{i}.parquet")],
            )
        )

    return emit


def interleaved(
    fns: dict[str, Callable[[int], object]], n: int, rounds: int = 10
) -> dict[str, float]:
    """Median µs per call of each function, run in alternating chunks so load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    chunk = max(1, n // rounds)
    for r in range(rounds):
        for name, fn in fns.items():
            for i in range(r * chunk, (r + 1) * chunk):
                t = time.perf_counter()
                fn(i)
                times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) * 1e6 for name, ts in times.items()}


def bench_batched(recorders: dict[str, Recorder], n: int, batch: int) -> dict[str, float]:
    """Signed appends per second of each recorder, ``batch`` statements per transaction.

    The recorders take turns batch by batch (order alternating), so that the
    machine's load hits all alike.
    """
    from prov_core.step import CodeIdentity, _StepSpec

    statements = []
    for i in range(n):
        inputs, outputs = _artifacts(i)
        spec = _StepSpec(
            name="clean", inputs=inputs, outputs=outputs, code=CodeIdentity(),
            parameters={"i": i}, environment={}, orchestrator={"name": "bench", "run_id": str(i)},
            started_on=None, finished_on=None, build_type="https://provgate.dev/step/v1",
        )  # fmt: skip
        statements.append(step_statement(spec))
    elapsed = dict.fromkeys(recorders, 0.0)
    order = list(recorders.items())
    for start in range(0, n, batch):
        for name, recorder in order:
            t = time.perf_counter()
            recorder.record_many(statements[start : start + batch])
            elapsed[name] += time.perf_counter() - t
        order.reverse()
    return {name: n / seconds for name, seconds in elapsed.items()}


def main() -> None:
    if "--concurrent" in sys.argv[1:]:
        from ledger_writers import main as concurrent_main

        concurrent_main([a for a in sys.argv[1:] if a != "--concurrent"])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--single", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--signing-workers",
        type=int,
        default=None,
        help="signing worker processes for batches (default: Recorder's, one per spare CPU)",
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        home, _ = init_home(Path(tmp) / "home")
        # The in-process baseline appends to a second home (not verified below).
        serial_home, _ = init_home(Path(tmp) / "serial")
        with (
            Recorder(
                home.open_ledger(), home.signer, origin=home.origin,
                signing_workers=args.signing_workers,
            ) as recorder,
            Recorder(
                serial_home.open_ledger(), serial_home.signer, origin=serial_home.origin,
                signing_workers=0,
            ) as serial,
        ):  # fmt: skip
            fns = {"ours": our_step(recorder)}
            peer_fn = openlineage_emit(Path(tmp))
            if peer_fn is not None:
                fns["peer"] = peer_fn
            medians = interleaved(fns, args.single)
            single, peer = medians["ours"], medians.get("peer")
            rates = bench_batched({"batched": recorder, "serial": serial}, args.records, args.batch)
            pool = recorder._pool
            workers = pool.workers if pool is not None else 0
        print(f"single recorded step      {single:8.1f} µs  (target <= the openlineage file emit)")
        if peer is not None:
            print(f"openlineage file emit     {peer:8.1f} µs  (unsigned; ratio ours/peer "
                  f"{single / peer:.2f})")  # fmt: skip
        else:
            print("openlineage file emit     (openlineage-python not installed: pip install "
                  "'provgate[openlineage]')")  # fmt: skip
        print(
            f"batched signed appends    {rates['batched']:8.0f} /s  (batch {args.batch}, "
            f"{workers} signing worker process(es); target >= 10,000/s)"
        )
        print(f"  same, signed in-process {rates['serial']:8.0f} /s  (interleaved with the above)")
        total = args.records + args.single
        t = time.perf_counter()
        report = verify_home(home)
        elapsed = time.perf_counter() - t
        assert report.ok, report.problems[:3]
        print(
            f"full verification         {total / elapsed:8.0f} records/s ({total} in {elapsed:.2f} s)"
        )


if __name__ == "__main__":
    main()
