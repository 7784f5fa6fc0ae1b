"""The sequencer (prov_core.ledger.sequencer): appends sent over TCP, integrated in batches.

Everything is real: the server listens on 127.0.0.1, the writers are
SequencedLedgers or raw sockets speaking the wire format of the module
docstring, and each test has its own fresh PostgreSQL database (the
``postgres_url`` fixture). The sequencer is an accelerator, never a
dependency: whatever happens to it, every append completes, no acknowledged
append is lost and none is stored twice.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prov_core.errors import InputError, LedgerError
from prov_core.ledger import NoteSigner, NoteVerifier, audit_log, open_checkpoint
from prov_core.ledger._postgres_schema import WRITERS_LOCK
from prov_core.ledger.base import MAX_LEAF_BYTES, Appended
from prov_core.ledger.merkle import check_inclusion, leaf_hash
from prov_core.ledger.postgres import PostgresLedger
from prov_core.ledger.sequencer import (
    DEFAULT_PORT,
    SequencedLedger,
    SequencerServer,
    parse_address,
)

from . import _mp_worker
from .conftest import ORIGIN, SEED, LedgerFactory, admin, lock_waiters
from .contract import BATCHES, FailingSigner, LedgerContract, fill

REPO = Path(__file__).resolve().parents[2]
_U32 = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024  # the module docstring's limit on one request


# -- helpers ------------------------------------------------------------------------


def wait_until(what: str, check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (the kernel's pick; free when returned)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def address_of(server: SequencerServer) -> str:
    host, port = server.address
    return f"{host}:{port}"


def request_frame(rid: bytes, leaves: list[bytes]) -> bytes:
    """One request in the wire format: u32 length, b"A", id, u32 count, (u32 length, leaf)*."""
    body = b"A" + rid + _U32.pack(len(leaves))
    body += b"".join(_U32.pack(len(leaf)) + leaf for leaf in leaves)
    return _U32.pack(len(body)) + body


def frame(body: bytes) -> bytes:
    return _U32.pack(len(body)) + body


def recv_exact(sock: socket.socket, size: int) -> bytes | None:
    buf = b""
    while len(buf) < size:
        try:
            chunk = sock.recv(size - len(buf))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return None
        buf += chunk
    return buf


class Raw:
    """A writer speaking the wire format itself, on a connection of its own."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=30)
        self.answered = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self) -> tuple[bytes, bytes] | None:
        """The next answer as (kind, rest), or None when the server closed the connection."""
        head = recv_exact(self.sock, 4)
        if head is None:
            return None
        (size,) = _U32.unpack(head)
        assert 1 <= size <= MAX_FRAME, size
        body = recv_exact(self.sock, size)
        assert body is not None, "the server closed the connection in the middle of an answer"
        self.answered = body[1:17]  # the id of the request it answers
        return body[:1], body[17:]

    def ask(self, rid: bytes, leaves: list[bytes]) -> tuple[bytes, bytes] | None:
        self.send(request_frame(rid, leaves))
        answer = self.answer()
        assert answer is None or self.answered == rid, "the answer names another request"
        return answer

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ok(answer: tuple[bytes, bytes] | None) -> tuple[int, int, bytes]:
    """The (first index, size, checkpoint) of a K answer."""
    assert answer is not None, "the server closed the connection instead of answering"
    kind, body = answer
    assert kind == b"K", body
    first, size = struct.unpack_from(">QQ", body)
    return first, size, body[16:]


def count_submissions(url: str, where: str) -> int:
    with admin(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM ledger_submissions WHERE {where}").fetchone()
    return int(row[0])


@pytest.fixture
def server(postgres_url: str, signer: NoteSigner) -> Iterator[SequencerServer]:
    """A sequencer of the test's database, serving on a free port of 127.0.0.1."""
    with SequencerServer(PostgresLedger(postgres_url, ORIGIN, signer), port=0) as srv:
        yield srv


# -- the contract -------------------------------------------------------------------


class TestSequencedLedger(LedgerContract):
    """The Ledger contract, every append made through a live sequencer on the same database."""

    @pytest.fixture
    def ledger_factory(
        self, postgres_url: str, signer: NoteSigner, server: SequencerServer
    ) -> LedgerFactory:
        return lambda: SequencedLedger(postgres_url, ORIGIN, signer, sequencer=address_of(server))

    def test_appends_go_through_the_sequencer(
        self, ledger_factory: LedgerFactory, server: SequencerServer, verifier: NoteVerifier
    ) -> None:
        with ledger_factory() as ledger, ledger_factory() as other:
            assert isinstance(ledger, SequencedLedger)
            assert isinstance(other, SequencedLedger)
            fill(ledger)
            # One writer at a time: each request is a batch of its own.
            assert (server.appended, server.batches) == (len(BATCHES), len(BATCHES))
            got = other.append([b"from another writer"])
            assert (got.first_index, got.size) == (21, 22)
            assert (server.appended, server.batches) == (len(BATCHES) + 1, len(BATCHES) + 1)
            assert ledger.fallbacks == other.fallbacks == 0
            assert [s for s, _ in ledger.checkpoints()] == [1, 4, 5, 13, 15, 16, 21, 22]
            assert audit_log(ledger, [verifier]).ok

    def test_failed_append_is_rolled_back(
        self,
        ledger_factory: LedgerFactory,
        postgres_url: str,
        server: SequencerServer,
        signer: NoteSigner,
        verifier: NoteVerifier,
    ) -> None:
        """The sequencer's signer fails: its writer settles the request and appends itself.

        Only when the writer's own signer fails too does the append fail, taking nothing.
        """
        theirs = FailingSigner(signer.name, signer._key)
        server.ledger.note_signer = theirs
        with ledger_factory() as ledger:
            assert isinstance(ledger, SequencedLedger)
            mine = FailingSigner(signer.name, signer._key)
            ledger.note_signer = mine
            ledger.append([b"a", b"b", b"c"])
            theirs.fail = True
            got = ledger.append([b"d", b"e"])
            assert (got.first_index, got.size, got.count) == (3, 5, 2)
            assert (ledger.fallbacks, server.appended) == (1, 1)
            assert ledger.append([b"f"]).first_index == 5  # the sequencer again
            assert (ledger.fallbacks, server.appended) == (1, 2)
            theirs.fail = mine.fail = True
            with pytest.raises(RuntimeError, match="signing service down"):
                ledger.append([b"g"])
            assert ledger.fallbacks == 2
            assert ledger.size() == 6
            assert ledger.append([b"h"]).first_index == 6
            assert [d for _, d in ledger.entries()] == [b"a", b"b", b"c", b"d", b"e", b"f", b"h"]
            assert count_submissions(postgres_url, "first_idx IS NULL") == 0
            assert audit_log(ledger, [verifier]).ok

    def test_closed(self, ledger_factory: LedgerFactory) -> None:
        """An append on a closed SequencedLedger is refused, not sent to the sequencer."""
        ledger = ledger_factory()
        ledger.close()
        try:
            with pytest.raises(LedgerError):
                ledger.latest_checkpoint()
            with pytest.raises(LedgerError):
                ledger.append([b"x"])
        finally:
            ledger.close()  # the connection to the sequencer the append opened


# -- many writers ----------------------------------------------------------------------

WRITERS = 8
EACH = 500


@pytest.mark.slow
def test_eight_processes_append_through_one_sequencer(
    postgres_url: str, server: SequencerServer, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(WRITERS) as pool:
        results = pool.starmap(
            _mp_worker.append_many_sequenced,
            [(postgres_url, ORIGIN, SEED, address_of(server), w, EACH) for w in range(WRITERS)],
        )
    total = WRITERS * EACH
    assert [fallbacks for _, fallbacks in results] == [0] * WRITERS
    assert server.appended == total  # none fell back
    assert server.batches < total, "no two appends were integrated together"
    indices = [[index for index, _, _ in got] for got, _ in results]
    assert sorted(i for r in indices for i in r) == list(range(total)), "a gap or a duplicate"
    for r in indices:
        assert r == sorted(r)  # each writer's appends land in its order
    with PostgresLedger(postgres_url, ORIGIN, signer) as ledger:
        rows = dict(ledger.entries())
        assert list(rows) == list(range(total))
        assert ledger.size() == total
        stored = dict(ledger.checkpoints())
        heads: dict[int, bytes] = {}
        for w, (got, _) in enumerate(results):
            for i, (index, size, note) in enumerate(got):
                data = b"worker %d entry %d" % (w, i)
                assert rows[index] == data  # stored where the writer was told
                assert index < size
                assert stored[size] == note
                if size not in heads:
                    heads[size] = open_checkpoint(note, [verifier], origin=ORIGIN).root
                proof = ledger.prove_inclusion(index, size)
                check_inclusion(index, size, leaf_hash(data), proof, heads[size])
        assert len(stored) == server.batches == len(heads)
        report = audit_log(ledger, [verifier])
        assert report.ok, report.problems
        assert (report.entries, report.verified_size) == (total, total)


class Writer(threading.Thread):
    """Appends single entries until stopped; keeps what each append returned.

    ``log`` holds ``(leaf, index, size, checkpoint, fell back)`` per append.
    """

    def __init__(self, ledger: SequencedLedger, name: bytes) -> None:
        super().__init__(daemon=True)
        self.ledger, self.tag = ledger, name
        self.log: list[tuple[bytes, int, int, bytes, bool]] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.start()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                leaf = b"%s entry %d" % (self.tag, len(self.log))
                before = self.ledger.fallbacks
                got = self.ledger.append([leaf])
                fell = self.ledger.fallbacks > before
                self.log.append((leaf, got.first_index, got.size, got.checkpoint_note, fell))
        except BaseException as exc:
            self.error = exc

    def check(self) -> None:
        assert self.error is None, repr(self.error)


def stop_all(writers: list[Writer]) -> None:
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(120)
        assert not w.is_alive(), "a writer hangs"
        w.check()


def check_log(url: str, signer: NoteSigner, verifier: NoteVerifier, writers: list[Writer]) -> None:
    """Every acknowledged append is stored once, where its writer was told; nothing else is."""
    acked = [entry for w in writers for entry in w.log]
    with PostgresLedger(url, ORIGIN, signer) as ledger:
        stored = list(ledger.entries())
        assert [i for i, _ in stored] == list(range(len(stored)))
        rows = dict(stored)
        assert len({index for _, index, _, _, _ in acked}) == len(acked), "two told one index"
        for leaf, index, _, _, _ in acked:
            assert rows.get(index) == leaf, "an acknowledged append is missing or moved"
        assert len(stored) == len(acked), "something was stored that nobody was told about"
        checkpoints = dict(ledger.checkpoints())
        for _, index, size, note, _ in acked:
            assert index < size
            assert checkpoints[size] == note
        for w in writers:  # each writer's appends land in its order
            mine = [index for _, index, _, _, _ in w.log]
            assert mine == sorted(mine)
        assert count_submissions(url, "first_idx IS NULL") == 0
        report = audit_log(ledger, [verifier])
        assert report.ok, report.problems
        assert report.entries == len(acked)


# -- the sequencer dies ------------------------------------------------------------------


class SequencerProcess:
    """``python -m tests.ledger._mp_worker serve``: a sequencer in a process of its own."""

    def __init__(self, url: str, port: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.ledger._mp_worker", "serve", url, ORIGIN, SEED.hex(),
             str(port)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        line = self.line()
        assert line.startswith("listening "), line
        self.port = int(line.split()[1])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def line(self) -> str:
        try:
            line = self.lines.get(timeout=60)
        except queue.Empty:
            pytest.fail("the sequencer process printed nothing in 60 s")
        assert line is not None, f"the sequencer process exited ({self.proc.wait(30)})"
        return line

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(30) == -signal.SIGKILL

    def stop(self) -> int:
        """SIGTERM; returns how many requests it appended."""
        self.proc.send_signal(signal.SIGTERM)
        word, appended, *_ = self.line().split()
        assert word == "appended"
        assert self.proc.wait(30) == 0
        return int(appended)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self.reader.join(30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.mark.slow
def test_sequencer_killed_mid_run(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    """SIGKILL the sequencer while four writers append through it, then start it again.

    The writers go on through group append (settling the requests in flight:
    those the sequencer committed are found where they landed, the others are
    withdrawn and appended again), and once it is back they use it again
    after ``retry_after``.
    """
    PostgresLedger(postgres_url, ORIGIN, signer).close()  # the schema, once
    first = SequencerProcess(postgres_url)
    second: SequencerProcess | None = None
    address = f"127.0.0.1:{first.port}"
    ledgers = [SequencedLedger(postgres_url, ORIGIN, signer, sequencer=address) for _ in range(4)]
    for ledger in ledgers:
        ledger.retry_after = 0.2
    writers = [Writer(ledger, b"writer %d" % w) for w, ledger in enumerate(ledgers)]

    def every(check: Callable[[Writer, int], bool], since: list[int]) -> Callable[[], bool]:
        def all_writers() -> bool:
            for w in writers:
                w.check()
            return all(check(w, s) for w, s in zip(writers, since, strict=True))

        return all_writers

    try:
        wait_until(
            "the writers append through the sequencer",
            every(lambda w, _: len(w.log) >= 50, [0] * 4),
        )
        first.kill()
        killed = [len(w.log) for w in writers]
        wait_until(
            "every writer appended without the sequencer",
            every(lambda w, s: len(w.log) >= s + 20 and any(e[4] for e in w.log[s:]), killed),
        )
        restarted = [len(w.log) for w in writers]
        second = SequencerProcess(postgres_url, first.port)
        wait_until(
            "every writer is back on the sequencer",
            every(
                lambda w, s: len(w.log) >= s + 20 and not any(e[4] for e in w.log[-20:]),
                restarted,
            ),
        )
        stop_all(writers)
        appended_after = second.stop()
    finally:
        for w in writers:
            w.stop.set()
        for ledger in ledgers:
            ledger.close()
        first.close()
        if second is not None:
            second.close()
    for w, upto in zip(writers, killed, strict=True):
        assert not any(e[4] for e in w.log[:upto]), "an append fell back before the kill"
        assert w.ledger.fallbacks >= 1
    # Every append after the restart that did not fall back went through the new sequencer.
    back = sum(not e[4] for w, s in zip(writers, restarted, strict=True) for e in w.log[s:])
    assert appended_after == back >= 4 * 20
    check_log(postgres_url, signer, verifier, writers)


@pytest.mark.slow
def test_sequencer_database_connection_killed_mid_run(
    postgres_url: str, server: SequencerServer, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    """pg_terminate_backend hits the sequencer's own connection again and again.

    Its ledger reconnects; the requests of a batch it could not write get an
    error and their writers settle them. Every append completes, exactly once.
    """
    ledgers = [
        SequencedLedger(postgres_url, ORIGIN, signer, sequencer=address_of(server))
        for _ in range(3)
    ]
    writers = [Writer(ledger, b"writer %d" % w) for w, ledger in enumerate(ledgers)]

    def appended(at_least: int) -> Callable[[], bool]:
        def check() -> bool:
            for w in writers:
                w.check()
            return server.appended >= at_least

        return check

    kills = 0
    try:
        wait_until("the writers append", appended(50))
        for _ in range(8):
            conn = server.ledger._conn
            if conn is not None and not conn.closed:
                with admin(postgres_url) as db:
                    row = db.execute(
                        "SELECT pg_terminate_backend(%s, 5000)", (conn.info.backend_pid,)
                    ).fetchone()
                kills += bool(row[0])
            wait_until("the sequencer appends again", appended(server.appended + 20))
        stop_all(writers)
        assert kills >= 4, "the sequencer's connection was not terminated"
        ledger = ledgers[0]  # the sequencer reconnected: it still takes appends
        fallbacks, before = ledger.fallbacks, server.appended
        done = ledger.append([b"after"])
        assert (ledger.fallbacks, server.appended) == (fallbacks, before + 1)
        writers[0].log.append((b"after", done.first_index, done.size, done.checkpoint_note, False))
    finally:
        for w in writers:
            w.stop.set()
        for ledger in ledgers:
            ledger.close()
    check_log(postgres_url, signer, verifier, writers)


# -- settling ----------------------------------------------------------------------------


def test_a_withdrawn_request_is_not_appended(
    postgres_url: str, signer: NoteSigner, server: SequencerServer
) -> None:
    """A request settled (withdrawn) before it reaches the sequencer gets E; nothing is stored.

    Twice: with a fresh sequencer (it reads the stored ids first), then with
    one that wrote last (it writes in one round trip, which conflicts).
    """
    with PostgresLedger(postgres_url, ORIGIN, signer) as writer, Raw(server.address) as raw:
        for attempt in range(2):
            rid = os.urandom(16)
            assert writer.withdraw_request(rid) is None
            answer = raw.ask(rid, [b"withdrawn %d" % attempt])
            assert answer is not None
            assert answer[0] == b"E"
            assert b"withdrawn" in answer[1]
            assert ok(raw.ask(os.urandom(16), [b"kept %d" % attempt]))[0] == attempt
        (again,) = writer.append_requests([(rid, [b"withdrawn 1"])])
        assert isinstance(again, LedgerError)
        assert "withdrawn" in str(again)
        assert writer.withdraw_request(rid) is None  # still withdrawn, still nothing
        assert [d for _, d in writer.entries()] == [b"kept 0", b"kept 1"]
        assert server.appended == 2


def test_withdrawing_an_appended_request_returns_where_it_landed(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    with (
        PostgresLedger(postgres_url, ORIGIN, signer) as sequencer,
        PostgresLedger(postgres_url, ORIGIN, signer) as writer,
    ):
        sequencer.append_requests([(os.urandom(16), [b"before"])])
        rid = os.urandom(16)
        (got,) = sequencer.append_requests([(rid, [b"a", b"b"])])
        assert isinstance(got, Appended)
        assert (got.first_index, got.size, got.count) == (1, 3, 2)
        landed = writer.withdraw_request(rid)
        assert landed is not None
        assert (landed.first_index, landed.size) == (1, 3)
        assert landed.checkpoint_note == got.checkpoint_note == writer.checkpoint(3)
        assert writer.withdraw_request(rid) == landed  # settling again changes nothing
        (again,) = sequencer.append_requests([(rid, [b"a", b"b"])])
        assert again == got  # stored once: the same landing, not a new entry
        assert [d for _, d in writer.entries()] == [b"before", b"a", b"b"]
        assert [s for s, _ in writer.checkpoints()] == [1, 3]
        head = open_checkpoint(got.checkpoint_note, [verifier], origin=ORIGIN)
        for i, leaf in ((1, b"a"), (2, b"b")):
            check_inclusion(i, 3, leaf_hash(leaf), writer.prove_inclusion(i, 3), head.root)
        assert audit_log(writer, [verifier]).ok


def test_stored_ids_in_a_batch_are_skipped_and_the_rest_share_one_checkpoint(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    with PostgresLedger(postgres_url, ORIGIN, signer) as sequencer:
        old = os.urandom(16)
        (first,) = sequencer.append_requests([(old, [b"old"])])
        gone = os.urandom(16)
        assert sequencer.withdraw_request(gone) is None
        new = [os.urandom(16) for _ in range(3)]
        results = sequencer.append_requests(
            [
                (new[0], [b"x"]),
                (old, [b"old"]),
                (new[1], [b"y1", b"y2"]),
                (gone, [b"gone"]),
                (new[2], [b"z"]),
            ]
        )
        x, again, y, withdrawn, z = results
        assert again == first
        assert isinstance(withdrawn, LedgerError)
        appended = [x, y, z]
        assert all(isinstance(r, Appended) for r in appended), results
        assert [(r.first_index, r.count) for r in appended] == [(1, 1), (2, 2), (4, 1)]
        assert {(r.size, r.checkpoint_note) for r in appended} == {(5, sequencer.checkpoint(5))}
        assert [s for s, _ in sequencer.checkpoints()] == [1, 5]
        assert [d for _, d in sequencer.entries()] == [b"old", b"x", b"y1", b"y2", b"z"]
        head = open_checkpoint(sequencer.checkpoint(5), [verifier], origin=ORIGIN)
        for i, leaf in enumerate([b"old", b"x", b"y1", b"y2", b"z"]):
            check_inclusion(i, 5, leaf_hash(leaf), sequencer.prove_inclusion(i, 5), head.root)
        assert audit_log(sequencer, [verifier]).ok


class DropAnswer(threading.Thread):
    """A hop between one writer and the sequencer that passes the request on and loses the answer.

    The sequencer appends the request; the writer sees its connection close.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(daemon=True)
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(30)
        self.dropped: tuple[bytes, bytes] | None = None
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def run(self) -> None:
        client, _ = self.listener.accept()
        client.settimeout(30)
        with client, Raw(self.upstream) as up:
            head = recv_exact(client, 4)
            assert head is not None
            body = recv_exact(client, _U32.unpack(head)[0])
            assert body is not None
            up.send(head + body)
            self.dropped = up.answer()
        self.listener.close()


def test_an_answer_lost_after_the_append_is_found_by_settling(
    postgres_url: str, signer: NoteSigner, server: SequencerServer, verifier: NoteVerifier
) -> None:
    hop = DropAnswer(server.address)
    with SequencedLedger(postgres_url, ORIGIN, signer, sequencer=hop.address) as ledger:
        got = ledger.append([b"landed"])
        hop.join(30)
        assert ok(hop.dropped) == (0, 1, got.checkpoint_note)  # the sequencer had appended it
        assert (got.first_index, got.size, got.count) == (0, 1, 1)
        assert ledger.fallbacks == 0  # found where it landed, not appended again
        assert server.appended == 1
        assert [d for _, d in ledger.entries()] == [b"landed"]
        assert ledger.latest_checkpoint() == got.checkpoint_note
        assert audit_log(ledger, [verifier]).ok


def test_a_sequencer_that_does_not_answer_is_settled_and_bypassed(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    """A sequencer that takes the request and never answers: after ``timeout`` the writer
    withdraws the request and appends through group append."""
    with socket.create_server(("127.0.0.1", 0)) as hole:  # accepts (backlog), never answers
        port = hole.getsockname()[1]
        with SequencedLedger(
            postgres_url, ORIGIN, signer, sequencer=f"127.0.0.1:{port}", timeout=0.5
        ) as ledger:
            got = ledger.append([b"x"])
            assert (got.first_index, got.size) == (0, 1)
            assert ledger.fallbacks == 1
            assert [d for _, d in ledger.entries()] == [b"x"]
            assert audit_log(ledger, [verifier]).ok
    assert count_submissions(postgres_url, "first_idx = -1") == 1  # settled: withdrawn


# -- bad input -------------------------------------------------------------------------

RID = bytes(range(16))
BAD_FRAMES = {
    "empty frame": frame(b""),
    "not a request": frame(b"Z" + RID + _U32.pack(1) + _U32.pack(1) + b"x"),
    "no id": frame(b"A" + RID[:7]),
    "empty request": request_frame(RID, []),
    "leaf runs past the end": frame(b"A" + RID + _U32.pack(1) + _U32.pack(100) + b"xyz"),
    "fewer leaves than counted": frame(b"A" + RID + _U32.pack(3) + _U32.pack(1) + b"x"),
    "trailing bytes": frame(request_frame(RID, [b"x"])[4:] + b"junk"),
    "over the size limit": _U32.pack(MAX_FRAME + 1),
}


@pytest.mark.parametrize("bad", list(BAD_FRAMES.values()), ids=list(BAD_FRAMES))
def test_bad_frames_are_refused_and_the_server_keeps_serving(
    postgres_url: str, signer: NoteSigner, server: SequencerServer, bad: bytes
) -> None:
    with Raw(server.address) as good, Raw(server.address) as evil:
        assert ok(good.ask(os.urandom(16), [b"before"]))[0] == 0
        evil.send(bad)
        answer = evil.answer()
        assert answer is None or (answer[0] == b"E" and answer[1]), answer
        assert evil.answer() is None  # the framing is lost: the connection is closed
        assert ok(good.ask(os.urandom(16), [b"after"]))[0] == 1
    with SequencedLedger(postgres_url, ORIGIN, signer, sequencer=address_of(server)) as ledger:
        assert ledger.append([b"writer"]).first_index == 2
        assert ledger.fallbacks == 0
        assert [d for _, d in ledger.entries()] == [b"before", b"after", b"writer"]
    assert count_submissions(postgres_url, "true") == 3  # nothing of the bad request


def test_a_leaf_over_the_entry_limit_is_refused(
    postgres_url: str, signer: NoteSigner, server: SequencerServer
) -> None:
    """A well-framed request whose leaf is over MAX_LEAF_BYTES gets E; the connection stays."""
    with Raw(server.address) as raw:
        answer = raw.ask(os.urandom(16), [b"x" * (MAX_LEAF_BYTES + 1)])
        assert answer is not None
        assert answer[0] == b"E"
        assert b"larger than" in answer[1]
        assert ok(raw.ask(os.urandom(16), [b"fine"]))[:2] == (0, 1)
    with PostgresLedger(postgres_url, ORIGIN, signer) as ledger:
        assert [d for _, d in ledger.entries()] == [b"fine"]


def test_a_writer_that_hangs_up_mid_request_appends_nothing(
    postgres_url: str, signer: NoteSigner, server: SequencerServer
) -> None:
    whole = request_frame(os.urandom(16), [b"never"])
    with Raw(server.address) as quitter:
        quitter.send(whole[:-2])
    with Raw(server.address) as good:
        assert ok(good.ask(os.urandom(16), [b"kept"]))[:2] == (0, 1)
    with PostgresLedger(postgres_url, ORIGIN, signer) as ledger:
        assert [d for _, d in ledger.entries()] == [b"kept"]


def test_a_bad_request_fails_only_itself(server: SequencerServer) -> None:
    """A well-formed request batched with a bad one (here: an id sent twice) is appended.

    The three requests arrive in one read, so the sequencer integrates them as one batch;
    only the id's second copy gets E.
    """
    twin = os.urandom(16)
    with Raw(server.address) as raw:
        raw.send(
            request_frame(os.urandom(16), [b"innocent"])
            + request_frame(twin, [b"twin 1"])
            + request_frame(twin, [b"twin 2"])
        )
        answers = [raw.answer() for _ in range(3)]
    assert answers[0] is not None
    assert answers[0][0] == b"K", answers[0]


def test_a_burst_is_integrated_in_batches_of_max_batch(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    """Requests that arrive together are cut into batches of at most max_batch entries
    (a larger request makes a batch of its own), each under one checkpoint."""
    sizes = [1, 1, 2, 1, 5, 1]
    ledger = PostgresLedger(postgres_url, ORIGIN, signer)
    with SequencerServer(ledger, port=0, max_batch=3) as server, Raw(server.address) as raw:
        raw.send(
            b"".join(
                request_frame(os.urandom(16), [b"r%d e%d" % (r, i) for i in range(n)])
                for r, n in enumerate(sizes)
            )
        )
        got = [ok(raw.answer()) for _ in sizes]
        assert [(first, size) for first, size, _ in got] == [
            (0, 2), (1, 2), (2, 5), (4, 5), (5, 10), (10, 11)
        ]  # fmt: skip
        assert server.batches == 4
        assert server.appended == len(sizes)
    with PostgresLedger(postgres_url, ORIGIN, signer) as reader:
        stored = dict(reader.checkpoints())
        assert list(stored) == [2, 5, 10, 11]
        for _, size, note in got:
            assert stored[size] == note
        assert audit_log(reader, [verifier]).ok
    with PostgresLedger(postgres_url, ORIGIN, signer) as unused, pytest.raises(InputError):
        SequencerServer(unused, port=0, max_batch=0)


# -- an unreachable sequencer -------------------------------------------------------


def test_an_unreachable_sequencer_is_bypassed_then_retried(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    port = free_port()  # nothing listens there
    address = f"127.0.0.1:{port}"
    with SequencedLedger(postgres_url, ORIGIN, signer, sequencer=address) as ledger:
        ledger.retry_after = 3600.0
        assert ledger.append([b"a"]).first_index == 0  # refused: group append
        assert ledger.fallbacks == 1
        with socket.create_server(("127.0.0.1", port)) as listener:
            listener.setblocking(False)
            assert ledger.append([b"b"]).first_index == 1
            assert ledger.append([b"c", b"d"]).first_index == 2
            assert ledger.fallbacks == 3
            with pytest.raises(BlockingIOError):
                listener.accept()  # no connection was attempted within retry_after
    with SequencedLedger(postgres_url, ORIGIN, signer, sequencer=address) as ledger:
        ledger.retry_after = 0.05
        assert ledger.append([b"e"]).first_index == 4
        assert ledger.fallbacks == 1
        sequencer = PostgresLedger(postgres_url, ORIGIN, signer)
        with SequencerServer(sequencer, port=port) as server:

            def through_the_sequencer() -> bool:
                before = ledger.fallbacks
                ledger.append([b"poll"])
                return ledger.fallbacks == before

            wait_until("the writer uses the sequencer again", through_the_sequencer)
            fallbacks, appended = ledger.fallbacks, server.appended
            assert appended == 1
            got = ledger.append([b"f"])
            assert (ledger.fallbacks, server.appended) == (fallbacks, 2)
        stored = list(ledger.entries())
        assert [i for i, _ in stored] == list(range(len(stored)))
        assert [d for _, d in stored[:5]] == [b"a", b"b", b"c", b"d", b"e"]
        assert stored[-1] == (got.first_index, b"f")
        assert audit_log(ledger, [verifier]).ok


# -- the sequencer's signer ------------------------------------------------------------


def test_a_failing_sequencer_signer_does_not_hold_the_writers_lock(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    """The sequencer's first batch fails to sign after it read the head: it lets go of the
    writers' lock, so the writer's fallback appends instead of waiting for it."""
    theirs = FailingSigner(signer.name, signer._key)
    sequencer = PostgresLedger(postgres_url, ORIGIN, theirs)
    with (
        SequencerServer(sequencer, port=0) as server,
        SequencedLedger(
            postgres_url, ORIGIN, signer, sequencer=address_of(server), lock_timeout=2
        ) as ledger,
    ):
        theirs.fail = True
        got = ledger.append([b"x"])
        assert (got.first_index, ledger.fallbacks) == (0, 1)
        assert audit_log(ledger, [verifier]).ok


# -- addresses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:7000", ("127.0.0.1", 7000)),
        (" seq.internal:1 ", ("seq.internal", 1)),
        ("seq.internal", ("seq.internal", DEFAULT_PORT)),
        ("[::1]:7000", ("::1", 7000)),
        ("[::1]", ("::1", DEFAULT_PORT)),
    ],
)
def test_parse_address(text: str, parsed: tuple[str, int]) -> None:
    assert parse_address(text) == parsed


@pytest.mark.parametrize("text", ["", ":7000", "host:", "host:65536", "host:http", "host:-1"])
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(InputError, match="host:port"):
        parse_address(text)


def test_parse_address_refuses_a_bare_ipv6_address() -> None:
    with pytest.raises(InputError, match=r"\[v6 address\]:port"):
        parse_address("::1")


def test_port_zero_is_any_free_port() -> None:
    assert parse_address("127.0.0.1:0") == ("127.0.0.1", 0)


# -- the review's findings -------------------------------------------------------------


def test_a_lost_batch_whose_first_request_was_withdrawn_is_not_reported_written(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    """The sequencer's write of [A, B] is lost with its session before it commits, and A's
    writer withdraws A meanwhile: the withdrawn row must not read as "the batch committed"
    (B would be told an index and a checkpoint the log never had)."""
    seq = PostgresLedger(postgres_url, ORIGIN, signer)
    writer = PostgresLedger(postgres_url, ORIGIN, signer)
    seq.append_requests([(os.urandom(16), [b"warm"])])  # it keeps the head: one round trip next
    holder = admin(postgres_url)
    holder.execute(f"SELECT pg_advisory_lock({WRITERS_LOCK})")  # e.g. a reserve() block
    a, b = os.urandom(16), os.urandom(16)
    out: dict[str, Any] = {}

    def write() -> None:
        try:
            out["results"] = seq.append_requests([(a, [b"a"]), (b, [b"b"])])
        except LedgerError as exc:
            out["error"] = exc

    thread = threading.Thread(target=write)
    thread.start()
    try:
        old = seq._conn.info.backend_pid  # type: ignore[union-attr]
        wait_until("the batch waits", lambda: old in lock_waiters(postgres_url))
        with admin(postgres_url) as db:
            db.execute("SELECT pg_terminate_backend(%s, 5000)", (old,))
        wait_until(
            "the lost batch is being looked up",
            lambda: any(p != old for p in lock_waiters(postgres_url)),
        )
        assert writer.withdraw_request(a) is None  # A's writer got no answer: it settles
    finally:
        holder.execute(f"SELECT pg_advisory_unlock({WRITERS_LOCK})")
        thread.join(60)
    results = out.get("results")
    if results is not None:  # redone the long way: A refused, B appended where it says
        assert isinstance(results[0], LedgerError)
        landed = results[1]
        assert isinstance(landed, Appended)
        assert writer.entry(landed.first_index) == b"b"
        assert writer.checkpoint(landed.size) == landed.checkpoint_note
    else:  # or the whole batch refused: then B was not appended either
        assert writer.withdraw_request(b) is None
    assert b"a" not in [d for _, d in writer.entries()]
    assert audit_log(writer, [verifier]).ok
    holder.close()
    seq.close()
    writer.close()


def test_an_interrupted_append_does_not_shift_the_next_answers(
    postgres_url: str, signer: NoteSigner, server: SequencerServer
) -> None:
    """An append interrupted while it waits (Ctrl-C, a task timeout raised by a signal
    handler) leaves no request in flight on the kept connection: the next append gets its
    own index, not the interrupted one's."""
    with SequencedLedger(postgres_url, ORIGIN, signer, sequencer=address_of(server)) as ledger:
        ledger.append([b"warm"])
        holder = admin(postgres_url)
        holder.execute(f"SELECT pg_advisory_lock({WRITERS_LOCK})")  # the sequencer is slow

        def interrupt(*_: object) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        try:
            with pytest.raises(KeyboardInterrupt):
                ledger.append([b"interrupted"])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            holder.execute(f"SELECT pg_advisory_unlock({WRITERS_LOCK})")
            holder.close()
        for leaf in (b"second", b"third"):
            got = ledger.append([leaf])
            assert ledger.entry(got.first_index) == leaf
            assert ledger.checkpoint(got.size) == got.checkpoint_note
        stored = [d for _, d in ledger.entries()]
        assert stored.count(b"interrupted") <= 1


def test_a_writer_reset_mid_batch_or_not_reading_does_not_stop_the_sequencer(
    postgres_url: str, signer: NoteSigner, server: SequencerServer
) -> None:
    """A writer whose connection is reset while its batch is written, and one that sends
    requests and never reads the answers, are hung up on; the sequencer keeps serving."""
    holder = admin(postgres_url)
    holder.execute(f"SELECT pg_advisory_lock({WRITERS_LOCK})")
    reset = socket.create_connection(server.address)
    reset.sendall(request_frame(os.urandom(16), [b"reset"]))
    backend = server.ledger._conn.info.backend_pid  # type: ignore[union-attr]
    wait_until("the batch waits", lambda: backend in lock_waiters(postgres_url))
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reset.close()  # RST while it is written
    holder.execute(f"SELECT pg_advisory_unlock({WRITERS_LOCK})")
    holder.close()
    deaf = socket.create_connection(server.address)
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    burst = b"".join(request_frame(os.urandom(16), [b"deaf %d" % i]) for i in range(3000))
    threading.Thread(target=lambda: suppress_oserror(deaf.sendall, burst), daemon=True).start()
    for n in range(3):  # new connections (one may get the reset one's fd) are served
        with Raw(server.address) as raw:
            first, size, _ = ok(raw.ask(os.urandom(16), [b"after %d" % n]))
            assert first < size
    deaf.close()
    with SequencedLedger(postgres_url, ORIGIN, signer, sequencer=address_of(server)) as ledger:
        ledger.append([b"last"])
        assert ledger.fallbacks == 0


def suppress_oserror(fn: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(OSError):
        fn(*args)


def test_a_failed_withdrawal_leaves_the_handle_usable(
    postgres_url: str, signer: NoteSigner
) -> None:
    """withdraw_request cancelled in its transaction (here by a statement timeout) rolls
    back: the handle's next reads and settles work."""
    ledger = PostgresLedger(postgres_url, ORIGIN, signer)
    ledger.append([b"x"])
    conn = ledger._conn
    assert conn is not None
    conn.execute("SET statement_timeout = 1")
    conn.execute("SET lock_timeout = 0")
    with admin(postgres_url) as db:
        db.execute("BEGIN")
        db.execute("LOCK TABLE ledger_submissions IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(LedgerError):
            ledger.withdraw_request(os.urandom(16))
        db.execute("ROLLBACK")
    conn.execute("SET statement_timeout = 0")
    assert ledger.size() == 1
    assert ledger.withdraw_request(os.urandom(16)) is None
    assert ledger.latest_checkpoint() is not None
    ledger.close()


def test_the_server_listens_on_ipv6(postgres_url: str, signer: NoteSigner) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = SequencerServer(PostgresLedger(postgres_url, ORIGIN, signer), "::1", 0)
    except OSError as exc:  # IPv6 disabled in the kernel
        pytest.skip(f"cannot listen on ::1: {exc}")
    with server, Raw(server.address) as raw:
        assert ok(raw.ask(os.urandom(16), [b"v6"]))[:2] == (0, 1)
