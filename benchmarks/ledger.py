"""Ledger benchmark: signed appends per second and full-ledger verification.

    python benchmarks/ledger.py [--records 20000] [--batch 1000]

Measures, on a fresh home in a temporary directory:
  * one recorded step (canonicalize, sign, append, commit) — µs per step,
    next to its peer: openlineage-python writing one unsigned RunEvent to a
    file with its FileTransport (if openlineage-python is installed), the two
    interleaved in alternating chunks so machine load hits both alike;
  * signed appends per second, batched (``Recorder.record_many``);
  * full-ledger verification (``provgate verify``'s work) in records per second.
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


def bench_batched(recorder: Recorder, n: int, batch: int) -> float:
    """Signed appends per second with ``batch`` statements per transaction."""
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
    t = time.perf_counter()
    for start in range(0, n, batch):
        recorder.record_many(statements[start : start + batch])
    return n / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--single", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        home, _ = init_home(Path(tmp) / "home")
        with Recorder.from_home(home) as recorder:
            fns = {"ours": our_step(recorder)}
            peer_fn = openlineage_emit(Path(tmp))
            if peer_fn is not None:
                fns["peer"] = peer_fn
            medians = interleaved(fns, args.single)
            single, peer = medians["ours"], medians.get("peer")
            batched = bench_batched(recorder, args.records, args.batch)
        print(f"single recorded step      {single:8.1f} µs  (target <= the openlineage file emit)")
        if peer is not None:
            print(f"openlineage file emit     {peer:8.1f} µs  (unsigned; ratio ours/peer "
                  f"{single / peer:.2f})")  # fmt: skip
        else:
            print("openlineage file emit     (openlineage-python not installed: pip install "
                  "'provgate[openlineage]')")  # fmt: skip
        print(
            f"batched signed appends    {batched:8.0f} /s  (batch {args.batch}; target >= 10,000/s)"
        )
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
