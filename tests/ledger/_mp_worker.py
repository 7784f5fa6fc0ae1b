"""Writer processes of the multi-process ledger tests (importable by 'spawn', runnable by -m)."""

from __future__ import annotations

import os
import signal
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from prov_core.ledger import NoteSigner, SQLiteLedger
from prov_core.ledger.base import BaseLedger


def open_ledger(kind: str, target: str, origin: str, seed: bytes) -> BaseLedger:
    """open_ledger opens the SQLite file or PostgreSQL database ``target``.

    ``sequenced``: ``target`` is ``"URL HOST:PORT"``, a PostgreSQL database and
    the sequencer to append through.
    """
    signer = NoteSigner(origin, Ed25519PrivateKey.from_private_bytes(seed))
    if kind == "sequenced":
        from prov_core.ledger.sequencer import SequencedLedger

        url, address = target.rsplit(" ", 1)
        return SequencedLedger(url, origin, signer, sequencer=address)
    if kind == "postgres":
        from prov_core.ledger.postgres import PostgresLedger

        return PostgresLedger(target, origin, signer)
    return SQLiteLedger(target, origin, signer)


def append_many(path: str, origin: str, seed: bytes, worker: int, count: int) -> list[int]:
    """append_many appends ``count`` single entries to SQLite and returns the indices given."""
    return [index for index, _, _ in append_many_to("sqlite", path, origin, seed, worker, count)]


def append_many_to(
    kind: str, target: str, origin: str, seed: bytes, worker: int, count: int
) -> list[tuple[int, int, bytes]]:
    """append_many_to appends ``count`` single entries; returns what each append returned.

    That is ``(index, size, checkpoint note)``: the entry's index and the
    checkpoint it landed under.
    """
    got = []
    with open_ledger(kind, target, origin, seed) as ledger:
        for i in range(count):
            done = ledger.append([b"worker %d entry %d" % (worker, i)])
            assert list(done.indices) == [done.first_index]
            got.append((done.first_index, done.size, done.checkpoint_note))
    return got


def crash_writer(kind: str, target: str, origin: str, seed: bytes, report: str) -> None:
    """crash_writer appends until killed, reporting each attempt and acknowledgement.

    Before append ``i`` it writes ``try i``; once the append returned, ``ack i index``.
    Each line is one unbuffered write, so a SIGKILL loses at most the line in flight.
    """
    fd = os.open(report, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with open_ledger(kind, target, origin, seed) as ledger:
        i = 0
        while True:
            os.write(fd, b"try %d\n" % i)
            index = ledger.append([b"crash entry %d" % i]).first_index
            os.write(fd, b"ack %d %d\n" % (i, index))
            i += 1


def append_many_sequenced(
    target: str, origin: str, seed: bytes, sequencer: str, worker: int, count: int
) -> tuple[list[tuple[int, int, bytes]], int]:
    """append_many_sequenced appends ``count`` single entries through the sequencer.

    Returns what each append returned, ``(index, size, checkpoint note)``, and
    how many appends fell back to group append.
    """
    from prov_core.ledger.sequencer import SequencedLedger

    signer = NoteSigner(origin, Ed25519PrivateKey.from_private_bytes(seed))
    got = []
    with SequencedLedger(target, origin, signer, sequencer=sequencer) as ledger:
        for i in range(count):
            done = ledger.append([b"worker %d entry %d" % (worker, i)])
            assert list(done.indices) == [done.first_index]
            got.append((done.first_index, done.size, done.checkpoint_note))
        return got, ledger.fallbacks


def serve(target: str, origin: str, seed: bytes, port: int) -> None:
    """serve runs a sequencer of the PostgreSQL ledger ``target`` on 127.0.0.1 until SIGTERM.

    It prints ``listening PORT`` once it accepts connections and, when stopped,
    ``appended N batches M``.
    """
    from prov_core.ledger.postgres import PostgresLedger
    from prov_core.ledger.sequencer import SequencerServer

    signer = NoteSigner(origin, Ed25519PrivateKey.from_private_bytes(seed))
    server = SequencerServer(PostgresLedger(target, origin, signer), "127.0.0.1", port)
    signal.signal(signal.SIGTERM, lambda *_: server.close())
    print(f"listening {server.address[1]}", flush=True)
    server.serve_forever()
    server.close()
    print(f"appended {server.appended} batches {server.batches}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":  # python -m tests.ledger._mp_worker serve URL ORIGIN SEEDHEX PORT
        serve(sys.argv[2], sys.argv[3], bytes.fromhex(sys.argv[4]), int(sys.argv[5]))
    else:  # python -m tests.ledger._mp_worker KIND TARGET ORIGIN SEEDHEX REPORT
        crash_writer(sys.argv[1], sys.argv[2], sys.argv[3], bytes.fromhex(sys.argv[4]), sys.argv[5])
