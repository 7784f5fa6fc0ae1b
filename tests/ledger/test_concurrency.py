"""Many writer processes, and a writer killed mid-append, on SQLite and on PostgreSQL.

Every backend runs the same tests: ``backend`` is ``(kind, target)``, a fresh
SQLite file, a fresh PostgreSQL database, or one written through a sequencer.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from prov_core.ledger import NoteSigner, NoteVerifier, audit_log, merkle, open_checkpoint
from prov_core.ledger.merkle import check_inclusion, leaf_hash
from prov_core.ledger.postgres import PostgresLedger
from prov_core.ledger.sequencer import SequencerServer

from . import _mp_worker
from .conftest import ORIGIN, SEED

REPO = Path(__file__).resolve().parents[2]
WRITERS = 8
EACH = 2_000


@pytest.fixture(params=["sqlite", "postgres", "sequenced"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The ledger the writers open: ``(kind, target)`` as ``_mp_worker.open_ledger`` takes it.

    ``sequenced`` is PostgreSQL with every append through a sequencer served by
    this process for the test's duration.
    """
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "ledger.sqlite")
        return
    url = request.getfixturevalue("postgres_url")
    if request.param == "postgres":
        yield "postgres", url
        return
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(SEED))
    with SequencerServer(PostgresLedger(url, ORIGIN, signer), port=0) as server:
        host, port = server.address
        yield "sequenced", f"{url} {host}:{port}"


@pytest.mark.slow
def test_eight_processes_two_thousand_appends_each(
    backend: tuple[str, str], verifier: NoteVerifier
) -> None:
    kind, target = backend
    _mp_worker.open_ledger(kind, target, ORIGIN, SEED).close()  # create the schema once
    ctx = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with ctx.Pool(WRITERS) as pool:
        results = pool.starmap(
            _mp_worker.append_many_to,
            [(kind, target, ORIGIN, SEED, w, EACH) for w in range(WRITERS)],
        )
    appended = time.perf_counter() - started
    total = WRITERS * EACH
    indices = [[index for index, _, _ in r] for r in results]
    given = sorted(i for r in indices for i in r)
    assert given == list(range(total)), "indices have a gap or a duplicate"
    for r in indices:
        assert r == sorted(r)  # each writer sees its own appends in order
    with _mp_worker.open_ledger(kind, target, ORIGIN, SEED) as ledger:
        rows = list(ledger.entries())
        assert [i for i, _ in rows] == list(range(total))
        expected = {b"worker %d entry %d" % (w, i) for w in range(WRITERS) for i in range(EACH)}
        assert {d for _, d in rows} == expected
        for w, r in enumerate(indices):  # the writer was told the index its entry is stored at
            assert [rows[i][1] for i in r] == [b"worker %d entry %d" % (w, i) for i in range(EACH)]
        assert ledger.size() == total
        note = ledger.latest_checkpoint()
        assert note is not None
        head = open_checkpoint(note, [verifier], origin=ORIGIN)
        assert head.size == total
        for i, data in rows:  # each proof read from the stored subtree hashes
            proof = merkle.prove_inclusion(i, total, ledger)
            check_inclusion(i, total, leaf_hash(data), proof, head.root)
        report = audit_log(ledger, [verifier])
        assert report.ok, report.problems  # every stored checkpoint signs its prefix of the log
        assert (report.entries, report.verified_size) == (total, total)
        stored = dict(ledger.checkpoints())
        # Each append was told a stored checkpoint that includes its entry. SQLite signs
        # one per append; PostgreSQL one per batch of concurrent appends it integrates.
        for index, size, cp in (a for r in results for a in r):
            assert index < size
            assert stored[size] == cp
        assert report.checkpoints == len(stored) == len({s for r in results for _, s, _ in r})
        if kind == "sqlite":
            assert report.checkpoints == total
    print(f"{kind}: {total} appends by {WRITERS} processes in {appended:.1f} s")


def test_writer_killed_mid_append(
    backend: tuple[str, str], tmp_path: Path, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    """SIGKILL a writer in the middle of its appends: the log holds exactly what was acknowledged.

    The child writes ``try i`` before append ``i`` and ``ack i index`` after it
    returned. An append in flight at the kill may have committed without its
    acknowledgement reaching the report (the window between COMMIT and the
    write of ``ack``): it may be present, at the next index, and nothing else.
    On PostgreSQL it may also have been submitted and not yet integrated: the
    next writer's append integrates it, at that index, exactly once.
    """
    kind, target = backend
    _mp_worker.open_ledger(kind, target, ORIGIN, SEED).close()
    report = tmp_path / "report.txt"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.ledger._mp_worker", kind, target, ORIGIN, SEED.hex(),
         str(report)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while report.read_bytes().count(b"ack ") < 200 if report.exists() else True:
            assert child.poll() is None, "the writer died on its own"
            assert time.monotonic() < deadline, "the writer did not get going"
            time.sleep(0.01)
        time.sleep(0.137)  # land somewhere in the middle of an append
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    tries, acks = [], {}
    for line in report.read_text().splitlines():
        word, *nums = line.split()
        if word == "try":
            tries.append(int(nums[0]))
        elif word == "ack" and len(nums) == 2:
            acks[int(nums[0])] = int(nums[1])
    assert acks
    assert list(acks) == list(range(len(acks)))
    assert list(acks.values()) == list(range(len(acks)))
    in_flight = [i for i in tries if i not in acks]
    assert len(in_flight) <= 1
    with _mp_worker.open_ledger(kind, target, ORIGIN, SEED) as ledger:
        stored = list(ledger.entries())
        acked = [(index, b"crash entry %d" % i) for i, index in acks.items()]
        assert stored[: len(acked)] == acked, "an acknowledged append is missing or moved"
        extra = stored[len(acked) :]
        may_land = [(len(acked), b"crash entry %d" % i) for i in in_flight]
        assert extra in ([], may_land)
        assert ledger.size() == len(stored)
        after = audit_log(ledger, [verifier])
        assert after.ok, after.problems
        # The killed writer holds no lock: the next appends go through at once. On
        # PostgreSQL its in-flight append may have been submitted (committed) without
        # being integrated yet: then the next append integrates it, once, first.
        first = ledger.append([b"after the crash"]).first_index
        ledger.append([b"and once more"])
        final = list(ledger.entries())
        assert final[: len(acked)] == acked
        assert final[len(acked) : first] in ([], may_land)
        assert [d for _, d in final[first:]] == [b"after the crash", b"and once more"]
        assert audit_log(ledger, [verifier]).ok
