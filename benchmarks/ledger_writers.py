"""Concurrent writer processes: signed appends per second on PostgreSQL and SQLite.

    python benchmarks/ledger.py --concurrent [--rounds 3] [--seconds 3] [--writers 1 4 8]
        [--designs pg-group pg-seq pg-lock pg-lock-noflush pg-insert sqlite]
        [--server postgresql://postgres@127.0.0.1:5432]

Each writer is a process of its own with its own connection, recording steps
in a loop for ``--seconds`` exactly as a pipeline worker does: ``record_step``
builds the SLSA statement, signs its DSSE envelope with the home's key and
appends it as a single entry through the public ledger API (the ledger signs
the checkpoints). The figure is the number of steps recorded per second by
all writers together. Every run starts on an empty log: a fresh database on
the local PostgreSQL server (dropped afterwards) or a fresh SQLite file.

Designs (``docs/scaling.md`` explains them):

  * ``pg-group``        the shipped PostgresLedger: group append. Each writer
                        commits its entry as a pending submission; whoever
                        takes the head lock integrates every pending one under
                        one checkpoint, flushed before the lock is released;
  * ``pg-seq``          the shipped sequencer (prov_core.ledger.sequencer): one
                        process of its own, started on the run's database before
                        the clock and signing with the home's key, takes every
                        writer's append over TCP and integrates whatever has
                        arrived as one batch under one checkpoint, flushed
                        before it answers; the writers are SequencedLedgers.
                        The run fails if any writer fell back to group append;
  * ``pg-lock``         the previous design, made durable: each append takes
                        the writers' lock and the head row, writes its entry
                        and checkpoint, and flushes the WAL before releasing
                        them (the shipped ledger's direct path, which reserve()
                        and batches of more than 64 entries take);
  * ``pg-lock-noflush`` the previous design exactly as it shipped: the lock is
                        released before the flush and the "barrier" that was
                        meant to wait for it did not (its transaction wrote no
                        WAL of its own, so PostgreSQL committed it without a
                        flush): appends were acknowledged before they were on
                        disk. Kept to compare with the figures measured then;
  * ``pg-insert``       the peer, not a log: each entry one row of a plain
                        table, one synchronous commit per entry (PostgreSQL
                        combines concurrent commits' flushes). What storing a
                        signed envelope durably costs with no tree, no
                        checkpoint and no order: the floor for any PostgreSQL
                        ledger;
  * ``sqlite``          the embedded SQLiteLedger (WAL, synchronous=NORMAL).

The machine's load moves these figures a lot, so the designs run interleaved:
each round runs every (writers, design) pair once, in an order that rotates
from round to round, and the table shows each pair's median over the rounds
(and its range). The load average is printed before every round. A second
table gives the CPU time per recorded step, the writer processes' plus (on
a local server whose /proc is readable) their PostgreSQL backends' (for
``pg-seq`` also the sequencer process's, all its threads, and its backend's,
over the writers' window): it moves less with the load than the rate does,
and says what a quiet machine could reach (2 CPUs / CPU time per step). A
third gives the entries per checkpoint (for ``pg-seq`` the entries per
sequencer batch: one checkpoint each). The last lines check the target:
>= 2,000 signed appends/s with 8 writers on PostgreSQL (``pg-group`` and
``pg-seq``).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prov_core.home import Home, init_home, open_home
from prov_core.ledger.base import Appended
from prov_core.ledger.postgres import PostgresLedger
from prov_core.ledger.sequencer import SequencedLedger, SequencerServer
from prov_core.step import Artifact, Recorder, record_step

DESIGNS = ("pg-group", "pg-seq", "pg-lock", "pg-lock-noflush", "pg-insert", "sqlite")
TARGET = 2_000  # signed appends/s with 8 writers on PostgreSQL


class LockPerAppend(PostgresLedger):
    """The previous design: every append locks the head and writes itself, flushed under the lock."""

    group_limit = 0


class LockPerAppendNoFlush(LockPerAppend):
    """The previous design as it shipped: lock released at COMMIT, then a barrier that did not flush."""

    _begin_sql = (
        "BEGIN; SELECT size, frontier, pg_current_xact_id()::text FROM ledger_head"
        " WHERE id = 1 FOR UPDATE"
    )
    _commit_sql = (
        "; COMMIT; BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_current_xact_id(); COMMIT"
    )


class PlainInsert:
    """The peer: each entry one row of a plain table, committed synchronously. Not a log.

    What storing a signed envelope durably in PostgreSQL costs with no Merkle
    tree, no checkpoint and no ordering: the floor any PostgreSQL ledger pays
    per entry. Just enough of the Ledger API for ``Recorder``.
    """

    def __init__(self, url: str) -> None:
        import psycopg

        self._conn = psycopg.connect(url, autocommit=True)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_plain (id BIGSERIAL PRIMARY KEY, leaf BYTEA NOT NULL)"
        )

    def append(self, leaves: list[bytes]) -> Appended:
        row = self._conn.execute(
            "INSERT INTO bench_plain (leaf) SELECT unnest(%s::bytea[]) RETURNING id", (leaves,)
        ).fetchall()
        first = int(row[0][0]) - 1
        return Appended(first, first + len(leaves), b"", len(leaves))

    def size(self) -> int:
        row = self._conn.execute("SELECT count(*) FROM bench_plain").fetchone()
        return int(row[0]) if row else 0

    def checkpoints(self) -> list[tuple[int, bytes]]:
        return [(self.size(), b"")]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PlainInsert:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_ledger(design: str, home: Home, url: str, sequencer: str = "") -> Any:
    """The ledger of ``design`` on ``home``'s key: its SQLite file or the database ``url``.

    ``pg-seq`` appends through the sequencer at ``sequencer`` (``host:port``);
    without one it is the PostgresLedger that reads (and created) the same log.
    """
    if design == "sqlite":
        return home.open_ledger()
    if design == "pg-insert":
        return PlainInsert(url)
    if design == "pg-seq" and sequencer:
        return SequencedLedger(url, home.origin, home.note_signer(), sequencer=sequencer)
    cls = {"pg-group": PostgresLedger, "pg-lock": LockPerAppend}.get(design, LockPerAppendNoFlush)
    return cls(url, home.origin, home.note_signer())


def _schedstat(path: str) -> float | None:
    """The CPU seconds a /proc schedstat file counts (None if it cannot be read)."""
    try:
        with open(path) as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def _backend_cpu(ledger: Any) -> float | None:
    """CPU seconds used so far by the PostgreSQL backend serving ``ledger`` (local server only)."""
    try:
        pid = ledger._conn.info.backend_pid
    except AttributeError:
        return None
    return _schedstat(f"/proc/{pid}/schedstat")


def _process_cpu(pid: int) -> float | None:
    """CPU seconds used so far by every thread of process ``pid``.

    /proc/<pid>/schedstat counts its main thread only, and the sequencer
    serves in a thread of its own: this sums /proc/<pid>/task/*/schedstat.
    """
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    used = [_schedstat(f"/proc/{pid}/task/{tid}/schedstat") for tid in tids]
    return sum(u for u in used if u is not None)


def sequencer(home_path: str, url: str, conn: Any) -> None:
    """The sequencer process of a pg-seq run: serves on ``url`` until told to stop.

    Sends ``(host, port, backend pid)`` through the pipe ``conn`` once it
    listens (or an error message), waits for a word on it, stops, and sends
    ``(batches, requests appended, backend pid)`` back.
    """
    try:
        home = open_home(Path(home_path))
        server = SequencerServer(
            PostgresLedger(url, home.origin, home.note_signer()), port=0
        ).start()
    except Exception as exc:
        conn.send(f"the sequencer did not start: {exc!r}")
        raise
    host, port = server.address
    backend = server.ledger._conn.info.backend_pid  # type: ignore[union-attr]
    conn.send((host, port, backend))
    with contextlib.suppress(EOFError):  # the parent is gone: stop all the same
        conn.recv()
    batches, appended = server.batches, server.appended
    conn_now = server.ledger._conn
    backend_now = conn_now.info.backend_pid if conn_now is not None else None
    server.close()
    conn.send((batches, appended, backend_now))


def _step(recorder: Recorder, worker: int, n: int) -> Any:
    return record_step(
        recorder, "clean",
        inputs=[Artifact(name=f"raw/{worker}-{n}.parquet", sha256=f"{n:064x}")],
        outputs=[Artifact(name=f"clean/{worker}-{n}.parquet", sha256=f"{n + 1:064x}")],
        parameters={"threshold": 3},
        orchestrator={"name": "bench", "run_id": f"w{worker}", "task": "clean"},
    )  # fmt: skip


class _Keep:
    """A ledger stand-in for a Recorder that only keeps the signed leaves it is given."""

    def __init__(self) -> None:
        self.leaves: list[bytes] = []

    def append(self, leaves: list[bytes]) -> Appended:
        self.leaves.extend(leaves)
        return Appended(len(self.leaves) - len(leaves), len(self.leaves), b"", len(leaves))


def presign(home: Home, worker: int, count: int) -> list[bytes]:
    """``count`` distinct signed step envelopes, as record_step makes them, not yet appended."""
    keep = _Keep()
    recorder = Recorder(keep, home.signer, origin=home.origin)  # type: ignore[arg-type]
    for n in range(count):
        _step(recorder, worker, n)
    return keep.leaves


def writer(
    design: str,
    home_path: str,
    url: str,
    worker: int,
    seconds: float,
    start: Any,
    presigned: int = 0,
    batch: int = 1,
    sequencer: str = "",
) -> tuple[int, float, float | None, int]:
    """One writer process: records steps until ``seconds`` have passed.

    With ``presigned`` (a count), the writer signs that many step envelopes
    before the clock starts and then only appends them, one per append: the
    ledger's own rate, without the statement building and Ed25519 signing
    that a pipeline's workers (on their own machines) do before appending;
    ``batch`` appends that many presigned envelopes per call. ``sequencer``
    is the pg-seq sequencer's ``host:port``. Returns how many, the CPU
    seconds this process used meanwhile, those its PostgreSQL backend used
    (None for SQLite, or a server elsewhere) and how many appends fell back
    to group append (pg-seq's SequencedLedger; 0 for the others).
    """
    home = open_home(Path(home_path))
    leaves = presign(home, worker, presigned) if presigned else []
    ledger = open_ledger(design, home, url, sequencer)
    with Recorder(ledger, home.signer, origin=home.origin) as recorder:
        start.wait()
        cpu, server = time.process_time(), _backend_cpu(recorder.ledger)
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            if presigned:
                if n + batch > len(leaves):  # not SystemExit: it would end the pool's worker
                    # and leave its result (and this run) waiting forever
                    raise RuntimeError(
                        f"writer {worker} used all {n} presigned envelopes: raise it"
                    )
                recorder.ledger.append(leaves[n : n + batch])
                n += batch
            else:
                _step(recorder, worker, n)
                n += 1
        cpu = time.process_time() - cpu
        after = _backend_cpu(recorder.ledger)
        fallbacks = getattr(recorder.ledger, "fallbacks", 0)
    return n, cpu, None if server is None or after is None else after - server, fallbacks


class Run(NamedTuple):
    """One run's figures."""

    rate: float  # steps recorded per second, all writers together
    batch: float  # entries per checkpoint
    cpu_ms: float  # CPU ms per step: the writer processes plus their PostgreSQL backends
    # (and pg-seq's sequencer process and its backend)


class SequencerProcess:
    """pg-seq's sequencer in a process of its own (spawn context), listening once built.

    :meth:`cpu` reads from /proc the CPU seconds used so far by the process
    (all its threads) and by its PostgreSQL backend; :meth:`stop` stops it
    and keeps its ``batches`` and ``appended`` (requests) counts.
    """

    def __init__(self, ctx: Any, home_path: Path, url: str) -> None:
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=sequencer, args=(str(home_path), url, child), name="pg-seq sequencer"
        )
        self.process.start()
        child.close()
        try:
            got = self._recv(60, "start")
            if isinstance(got, str):
                raise SystemExit(f"pg-seq: {got}")
        except BaseException:
            self.close()
            raise
        host, port, self.backend = got
        self.address = f"{host}:{port}"
        self.batches = self.appended = 0

    def _recv(self, timeout: float, doing: str) -> Any:
        try:
            if self._conn.poll(timeout):
                return self._conn.recv()
        except (EOFError, OSError):
            raise SystemExit(
                f"pg-seq: the sequencer process died (exit code {self.process.exitcode})"
                f" before it could {doing}"
            ) from None
        raise SystemExit(f"pg-seq: the sequencer did not {doing} within {timeout:g} s")

    def cpu(self) -> tuple[float | None, float | None]:
        """CPU seconds used so far by the sequencer process and by its PostgreSQL backend."""
        return _process_cpu(self.process.pid), _schedstat(f"/proc/{self.backend}/schedstat")

    def cpu_since(self, before: tuple[float | None, float | None]) -> float:
        """CPU seconds the sequencer and its backend used since ``before`` (:meth:`cpu`)."""
        after = self.cpu()
        return sum(
            b - a for a, b in zip(before, after, strict=True) if a is not None and b is not None
        )

    def stop(self) -> None:
        """stop stops the sequencer (after the batch it is writing) and waits for its process."""
        self._conn.send("stop")
        self.batches, self.appended, backend = self._recv(90, "stop")
        self.process.join(30)
        if backend != self.backend:
            raise SystemExit(
                f"pg-seq: the sequencer reconnected to PostgreSQL during the run (backend"
                f" {self.backend}, then {backend}): its backend's CPU is not all counted"
            )

    def close(self) -> None:
        """close ends the process if it is still there (a run that failed) and the pipe."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(30)
        self._conn.close()


def run(
    design: str,
    home_path: Path,
    url: str,
    writers: int,
    seconds: float,
    presigned: int = 0,
    batch: int = 1,
) -> Run:
    """Records steps with ``writers`` processes of ``design`` on an empty log.

    For pg-seq, the sequencer starts before the writers and stops after them;
    the run fails if any writer appended without it.
    """
    if design == "pg-seq" and batch > SequencedLedger.group_limit:
        raise SystemExit(
            f"pg-seq: appends of more than {SequencedLedger.group_limit} entries do not go"
            f" through the sequencer: --batch {batch} would not measure it"
        )
    home = open_home(home_path)
    reader = "pg-group" if design == "pg-seq" else design  # pg-seq's log is a PostgresLedger's
    open_ledger(reader, home, url).close()  # create the schema before the clock starts
    ctx = multiprocessing.get_context("spawn")
    seq = SequencerProcess(ctx, home_path, url) if design == "pg-seq" else None
    seq_cpu = 0.0
    try:
        address = seq.address if seq is not None else ""
        with ctx.Manager() as manager:
            start = manager.Barrier(writers + 1)
            with ctx.Pool(writers) as pool:
                jobs = [
                    pool.apply_async(
                        writer,
                        (design, str(home_path), url, w, seconds, start, presigned, batch, address),
                    )
                    for w in range(writers)
                ]
                # The sequencer idles until the writers start: read its CPU before they can.
                seq_before = seq.cpu() if seq is not None else (None, None)
                start.wait()
                t0 = time.perf_counter()
                results = [j.get() for j in jobs]
                elapsed = time.perf_counter() - t0
                if seq is not None:  # every writer is done: so is the sequencer's work
                    seq_cpu = seq.cpu_since(seq_before)
        if seq is not None:
            seq.stop()
    finally:
        if seq is not None:
            seq.close()
    total = sum(n for n, _, _, _ in results)
    cpu = sum(c + (s or 0.0) for _, c, s, _ in results) + seq_cpu
    fallbacks = sum(f for _, _, _, f in results)
    if fallbacks:
        raise SystemExit(
            f"{design}: {fallbacks} append(s) fell back to group append instead of the"
            " sequencer (the writers' warnings say why): the figure would not be the sequencer's"
        )
    with open_ledger(reader, home, url) as ledger:
        if ledger.size() != total:
            raise SystemExit(f"{design}: the log holds {ledger.size()} entries, not {total}")
        checkpoints = sum(1 for _ in ledger.checkpoints())
    if seq is not None and (seq.appended * batch != total or seq.batches != checkpoints):
        raise SystemExit(
            f"{design}: the sequencer appended {seq.appended} requests of {batch} in"
            f" {seq.batches} batches, but the log holds {total} entries under"
            f" {checkpoints} checkpoints"
        )
    return Run(total / elapsed, total / max(checkpoints, 1), cpu / max(total, 1) * 1e3)


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


def one_run(
    design: str,
    tmp: Path,
    server: str,
    writers: int,
    seconds: float,
    presigned: int = 0,
    batch: int = 1,
) -> Run:
    """A run on a fresh home (and, for PostgreSQL, a fresh database)."""
    home_path = tmp / uuid.uuid4().hex[:12]
    os.environ.pop("PROVGATE_LEDGER_URL", None)  # the home's own ledger is its SQLite file
    init_home(home_path)
    if design == "sqlite":
        return run(design, home_path, "", writers, seconds, presigned, batch)
    name, url = fresh_database(server)
    try:
        return run(design, home_path, url, writers, seconds, presigned, batch)
    finally:
        drop_database(server, name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/ledger.py --concurrent",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each run (default 3)")
    parser.add_argument(
        "--writers", type=int, nargs="+", default=[1, 4, 8], help="writer processes (1 4 8)"
    )
    parser.add_argument(
        "--designs", nargs="+", default=list(DESIGNS), choices=DESIGNS, help="default: all"
    )
    parser.add_argument(
        "--server",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server; each run creates and drops a database on it",
    )
    parser.add_argument(
        "--presigned",
        type=int,
        default=0,
        metavar="N",
        help="each writer signs N step envelopes before the clock starts and only appends"
        " them: the ledger's rate without the signing a worker does on its own machine",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="K",
        help="with --presigned: append K envelopes per call (default 1)",
    )
    args = parser.parse_args(argv)
    if args.batch > 1 and not args.presigned:
        parser.error("--batch needs --presigned")
    what = (
        f"presigned step envelopes ({args.presigned} per writer, signed before the clock)"
        f" appended per second, {args.batch} per append"
        if args.presigned
        else "signed steps recorded per second"
    )
    print(
        f"# {platform.python_implementation()} {platform.python_version()},"
        f" {os.cpu_count()} CPUs, {args.rounds} rounds of {args.seconds:g} s per run;"
        f" {what} by all writers together\n"
        "# pg-group: the shipped PostgreSQL ledger (group append); pg-seq: the same log written"
        " by the shipped sequencer;\n# pg-lock: the previous design, durable; pg-lock-noflush:"
        " the previous design as it shipped (acknowledged\n# before the flush);"
        " pg-insert: the peer, a plain synchronous INSERT per entry;"
        " sqlite: the embedded ledger (--help)"
    )
    pairs = [(n, d) for n in args.writers for d in args.designs]
    rates: dict[tuple[int, str], list[float]] = {p: [] for p in pairs}
    cpus: dict[tuple[int, str], list[float]] = {p: [] for p in pairs}
    batches: dict[tuple[int, str], list[float]] = {p: [] for p in pairs}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            print(f"# round {r + 1}: load average {loads[-1]:.1f}", flush=True)
            shift = r % len(args.designs)
            for n in args.writers:
                order = args.designs[shift:] + args.designs[:shift]
                for design in order:
                    got = one_run(
                        design, Path(tmp), args.server, n, args.seconds, args.presigned, args.batch
                    )
                    rates[n, design].append(got.rate)
                    cpus[n, design].append(got.cpu_ms)
                    batches[n, design].append(got.batch)
                    per = "sequencer batch" if design == "pg-seq" else "checkpoint"
                    print(f"#   {n} writer(s) {design:>16}: {got.rate:8,.0f} /s"
                          f"  {got.batch:5.1f} entries per {per:<15}"
                          f"  {got.cpu_ms:5.2f} CPU ms per step", flush=True)  # fmt: skip
    loads.append(os.getloadavg()[0])
    print(f"\nmedian (min-max) over {args.rounds} rounds, load average {min(loads):.1f}-"
          f"{max(loads):.1f}:")  # fmt: skip
    print(f"{'writers':>7} " + " ".join(f"{d:>22}" for d in args.designs))
    for n in args.writers:
        cells = []
        for d in args.designs:
            seen = rates[n, d]
            cells.append(f"{statistics.median(seen):,.0f} ({min(seen):,.0f}-{max(seen):,.0f})")
        print(f"{n:>7} " + " ".join(f"{c:>22}" for c in cells))
    print(
        "\nCPU ms per step (median; the writer processes plus their PostgreSQL backends;"
        " pg-seq also the sequencer process and its backend):"
    )
    print(f"{'writers':>7} " + " ".join(f"{d:>22}" for d in args.designs))
    for n in args.writers:
        print(
            f"{n:>7} " + " ".join(f"{statistics.median(cpus[n, d]):>22.2f}" for d in args.designs)
        )
    print("\nentries per checkpoint (median; pg-seq: per sequencer batch, one checkpoint each):")
    print(f"{'writers':>7} " + " ".join(f"{d:>22}" for d in args.designs))
    for n in args.writers:
        cells = [
            "-" if d == "pg-insert" else f"{statistics.median(batches[n, d]):.1f}"  # no checkpoints
            for d in args.designs
        ]
        print(f"{n:>7} " + " ".join(f"{c:>22}" for c in cells))
    shipped = [d for d in ("pg-group", "pg-seq") if d in args.designs]
    if shipped and "pg-insert" in args.designs:
        print(
            "\nratio to pg-insert, the plain-insert peer (pg-group: the shipped ledger;"
            " pg-seq: the same through the sequencer):"
        )
        print(f"{'writers':>7} " + " ".join(f"{d + ' / pg-insert':>22}" for d in shipped))
        for n in args.writers:
            peer = statistics.median(rates[n, "pg-insert"])
            ratios = [statistics.median(rates[n, d]) / peer for d in shipped]
            print(f"{n:>7} " + " ".join(f"{r:22.2f}" for r in ratios))
    if 8 in args.writers:
        how = "presigned envelopes appended" if args.presigned else "steps recorded and signed"
        for d in shipped:
            rate = statistics.median(rates[8, d])
            verdict = "met" if rate >= TARGET else "NOT met"
            print(f"target >= {TARGET:,} signed appends/s with 8 writers on PostgreSQL ({d}):"
                  f" {rate:,.0f}/s ({how}), {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
