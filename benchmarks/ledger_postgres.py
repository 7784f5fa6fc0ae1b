"""Concurrent appends: PostgreSQL (two ways to serialize) and SQLite, side by side.

    python benchmarks/ledger_postgres.py [--seconds 4] [--writers 1 4 8] [--batch 1]

Every writer is its own process with its own connection, appending signed
single entries (or ``--batch`` entries per transaction) in a loop for
``--seconds``; the figure is committed entries per second over all writers.
Each run starts on an empty log: a fresh database on the local PostgreSQL
(``--server``, default ``postgresql://postgres@127.0.0.1:5432``, dropped
afterwards) and a fresh SQLite file (WAL, synchronous=NORMAL).

Mechanisms (docs/scaling.md explains the choice):
  * ``pg-row``             the shipped PostgresLedger: the one-row ``ledger_head``
                           locked with SELECT ... FOR UPDATE, which also carries
                           the size and right edge of the tree; group commit
                           (the lock is released before the WAL flush, the
                           append is acknowledged after it);
  * ``pg-advisory``        the same, serialized by ``pg_advisory_xact_lock`` and
                           then reading the head in a second statement (a read in
                           the lock's own statement would use a snapshot taken
                           before the lock was granted), sent in the same round trip;
  * ``pg-row-strict``,
    ``pg-advisory-strict`` the same with ``strict_commit=True``: the WAL flush
                           happens while the lock is held;
  * ``sqlite``             the embedded SQLiteLedger (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from prov_core.ledger import NoteSigner, SQLiteLedger
from prov_core.ledger.base import BaseLedger
from prov_core.ledger.postgres import PostgresLedger

ORIGIN = "bench.provgate/ledger"
SEED = bytes(range(32))
MECHANISMS = ("pg-row", "pg-advisory", "pg-row-strict", "pg-advisory-strict", "sqlite")


class AdvisoryLedger(PostgresLedger):
    """PostgresLedger serialized by a transaction-level advisory lock instead of the row lock."""

    _begin_sql = (
        "BEGIN; SELECT pg_advisory_xact_lock(7243);"
        " SELECT size, frontier, pg_current_xact_id()::text FROM ledger_head WHERE id = 1"
    )


def open_ledger(mechanism: str, target: str) -> BaseLedger:
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(SEED))
    if mechanism == "pg-row":
        return PostgresLedger(target, ORIGIN, signer)
    if mechanism == "pg-advisory":
        return AdvisoryLedger(target, ORIGIN, signer)
    if mechanism == "pg-row-strict":
        return PostgresLedger(target, ORIGIN, signer, strict_commit=True)
    if mechanism == "pg-advisory-strict":
        return AdvisoryLedger(target, ORIGIN, signer, strict_commit=True)
    return SQLiteLedger(target, ORIGIN, signer)


def writer(mechanism: str, target: str, worker: int, batch: int, seconds: float, start: Any) -> int:
    with open_ledger(mechanism, target) as ledger:
        start.wait()
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            ledger.append([b"worker %d entry %d" % (worker, n + i) for i in range(batch)])
            n += batch
    return n


def run(mechanism: str, target: str, writers: int, batch: int, seconds: float) -> float:
    open_ledger(mechanism, target).close()  # create the schema once, before the clock
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(writers + 1)
        with ctx.Pool(writers) as pool:
            jobs = [
                pool.apply_async(writer, (mechanism, target, w, batch, seconds, start))
                for w in range(writers)
            ]
            start.wait()
            t0 = time.perf_counter()
            total = sum(j.get() for j in jobs)
            elapsed = time.perf_counter() - t0
    with open_ledger(mechanism, target) as ledger:
        assert ledger.size() == total, (ledger.size(), total)
    return total / elapsed


def fresh_database(server: str) -> tuple[str, str]:
    import psycopg

    name = f"provgate_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name, f"{server}/{name}"


def drop_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--mechanisms", nargs="+", default=list(MECHANISMS), choices=MECHANISMS)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    print(
        f"# {platform.python_implementation()} {platform.python_version()},"
        f" {os.cpu_count()} CPUs, {args.seconds:g} s per run, {args.batch} entries per append,"
        f" load average {os.getloadavg()[0]:.1f} at start"
    )
    print(
        f"{'writers':>7} "
        + " ".join(f"{m:>18}" for m in args.mechanisms)
        + "   (appended entries/s)"
    )
    for n in args.writers:
        figures = []
        for mechanism in args.mechanisms:
            if mechanism == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    rate = run(mechanism, str(Path(tmp) / "l.sqlite"), n, args.batch, args.seconds)
            else:
                name, url = fresh_database(args.server)
                try:
                    rate = run(mechanism, url, n, args.batch, args.seconds)
                finally:
                    drop_database(args.server, name)
            figures.append(rate)
        print(f"{n:>7} " + " ".join(f"{r:>18,.0f}" for r in figures), flush=True)


if __name__ == "__main__":
    main()
