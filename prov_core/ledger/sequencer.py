"""The sequencer: one process integrates every writer's appends to a PostgreSQL ledger.

DESIGN.md's "a sequencer integrating pending entries every few milliseconds,
as Trillian and Tessera do". Without it, each writer of a
:class:`~prov_core.ledger.postgres.PostgresLedger` commits its own
submission and the writers take turns integrating them (group append): two
PostgreSQL transactions and a lock hand-off per append, which on a small
machine costs more CPU than the database work itself (``docs/scaling.md``).
With it, a writer sends its entries to the sequencer over one TCP
connection and waits for the answer; the sequencer gathers whatever has
arrived, appends it all in one transaction under one signed checkpoint
(:meth:`~prov_core.ledger.postgres.PostgresLedger.append_requests`: the
writers' lock, flushed before anyone is answered) and answers every writer
with its indices and that checkpoint. While it writes, the next batch piles
up.

Run it next to the database (``provgate log serve``) and point the workers
at it with ``PROVGATE_LEDGER_SEQUENCER=host:port`` besides
``PROVGATE_LEDGER_URL``: they then open a :class:`SequencedLedger`, which
reads from PostgreSQL as before and sends its appends (of up to
``group_limit`` entries, outside ``reserve()``) to the sequencer.

The sequencer is an accelerator, never a dependency. Every request carries
16 random bytes chosen by its writer, stored with the entries; a writer
that gets no answer (the sequencer is down, restarted, answered with an
error or took too long) *settles* its request in the database
(:meth:`~prov_core.ledger.postgres.PostgresLedger.withdraw_request`: it
either finds where the request landed or marks it withdrawn, so that no
sequencer appends it later) and, if nothing was appended, appends through
group append itself. An append is never lost, never stored twice, and
fails only when PostgreSQL itself cannot be reached.

Anyone who can connect to the sequencer can append, as anyone who can
connect to the database can: it listens on 127.0.0.1 unless told
otherwise; put it where only the workers reach it.

Wire format (big-endian)::

    request  = u32 length, b"A", id (16 bytes), u32 count, count x (u32 length, leaf)
    answer   = u32 length, b"K", id, u64 first_index, u64 size, checkpoint note
             | u32 length, b"E", id (16 zero bytes if the request did not parse), UTF-8 message

Answers come in the order of the requests on a connection and name the
request they answer; a writer checks that, and that the checkpoint is of
its log, before it believes one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Sequence
from typing import Any

from prov_core.errors import InputError, LedgerError
from prov_core.ledger.base import MAX_BATCH, Appended, check_leaves
from prov_core.ledger.checkpoint import CheckpointSigner
from prov_core.ledger.postgres import PostgresLedger

__all__ = ["DEFAULT_PORT", "SequencedLedger", "SequencerServer", "parse_address"]

DEFAULT_PORT = 7465
"""DEFAULT_PORT is the sequencer's TCP port when an address names none."""

_log = logging.getLogger(__name__)
_U32 = struct.Struct(">I")
_ANSWER = struct.Struct(">QQ")
_MAX_FRAME = 64 * 1024 * 1024  # one request: up to group_limit envelopes
_ID = 16
_NO_ID = bytes(_ID)  # the id of an answer to a request that did not parse


def parse_address(address: str) -> tuple[str, int]:
    """parse_address splits ``host:port`` or ``[v6 address]:port`` (the port defaults to 7465).

    Port 0 is "any free port" (for ``provgate log serve``).
    """
    text = address.strip()
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        host, port = text, str(DEFAULT_PORT)
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if not host or (":" in host and not bracketed) or not port.isdigit() or int(port) > 65535:
        raise InputError(f"a sequencer address is host:port or [v6 address]:port, not {address!r}")
    return host, int(port)


def _encode_request(rid: bytes, leaves: Sequence[bytes]) -> bytes:
    parts = [b"A", rid, _U32.pack(len(leaves))]
    for leaf in leaves:
        parts += (_U32.pack(len(leaf)), leaf)
    body = b"".join(parts)
    return _U32.pack(len(body)) + body


def _decode_request(body: bytes) -> tuple[bytes, list[bytes]]:
    """_decode_request parses a request body; ValueError if it is malformed."""
    if len(body) < 1 + _ID + 4 or body[:1] != b"A":
        raise ValueError("not a provgate sequencer request")
    rid = body[1 : 1 + _ID]
    (count,) = _U32.unpack_from(body, 1 + _ID)
    at = 1 + _ID + 4
    leaves = []
    for _ in range(count):
        (size,) = _U32.unpack_from(body, at)
        at += 4
        if at + size > len(body):
            raise ValueError("a request's leaf runs past its end")
        leaves.append(body[at : at + size])
        at += size
    if at != len(body) or not leaves:
        raise ValueError("a request's leaves do not fill it")
    return rid, leaves


def _frame(kind: bytes, body: bytes) -> bytes:
    return _U32.pack(1 + len(body)) + kind + body


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("the sequencer closed the connection")
        buf += chunk
    return bytes(buf)


class _Client:
    """_Client is one writer's connection to the sequencer, as the server sees it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def answer(self, rid: bytes, result: Appended | BaseException) -> bool:
        """answer sends the answer to request ``rid``; False if the writer cannot take it.

        The socket does not block: a writer with one request in flight always
        has room for its answer, so one that has none is not reading them and
        is hung up on (it settles its requests itself) rather than holding up
        everyone else's.
        """
        if isinstance(result, Appended):
            body = rid + _ANSWER.pack(result.first_index, result.size) + result.checkpoint_note
            frame = _frame(b"K", body)
        else:
            frame = _frame(b"E", rid + str(result).encode("utf-8", "replace"))
        try:
            return self.sock.send(frame) == len(frame)
        except OSError:
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


_Request = tuple[_Client, bytes, list[bytes]]


class SequencerServer:
    """SequencerServer takes appends over TCP and integrates them in batches (module docstring).

    ``ledger`` is the PostgreSQL ledger it writes, with the key that signs
    the checkpoints; the server owns it from here on and closes it. Bind
    with ``port=0`` to get a free port (:attr:`address`). :meth:`start` runs
    it in a background thread, :meth:`serve_forever` in this one.

    One thread does everything: it waits for requests, reads every request
    that has arrived, appends them as one batch (up to ``max_batch``
    entries), answers them, and looks again. Requests that arrive while a
    batch is being written wait in the kernel's socket buffers and make the
    next batch. (Writing the next batch on a second connection while one
    commits was measured and dropped: smaller batches, more CPU per entry;
    docs/scaling.md.)
    """

    def __init__(
        self,
        ledger: PostgresLedger,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        max_batch: int = 4096,
    ) -> None:
        if max_batch < 1:
            raise InputError("max_batch must be >= 1")
        self.ledger = ledger
        self.max_batch = min(max_batch, MAX_BATCH)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=128)
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: list[_Request] = []
        self._failure: Exception | None = None
        self._count_lock = threading.Lock()
        self.batches = 0
        """batches counts the transactions written so far."""
        self.appended = 0
        """appended counts the requests appended so far."""

    @property
    def address(self) -> tuple[str, int]:
        """address is the ``(host, port)`` the server listens on."""
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> SequencerServer:
        """start serves in a background thread and returns."""
        self._thread = threading.Thread(target=self._serve, name="provgate-sequencer", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """serve_forever serves until :meth:`close` is called (from another thread or a signal).

        Raises LedgerError if the server stopped on an error of its own.
        """
        self.start()
        self._stopped.wait()
        if self._failure is not None:
            raise LedgerError(f"the sequencer stopped: {self._failure}") from self._failure

    def close(self) -> None:
        """close stops serving (after the batch being written) and closes the ledger."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)
        self._hang_up()
        self._selector.close()
        for sock in (self._wake_r, self._wake_w):
            sock.close()
        # Requests read but not written get no answer: their writers settle them.
        self.ledger.close()
        self._stopped.set()

    def __enter__(self) -> SequencerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        try:
            while not self._stopping.is_set():
                # Block only while nothing is waiting to be written.
                for key, _ in self._selector.select(timeout=0 if self._pending else 1.0):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        return
                    else:
                        self._read(key.data)
                if self._pending:
                    batch, self._pending = self._pending, []
                    self._integrate(batch)
        except Exception as exc:  # a bug: stop answering; the writers fall back to group append
            _log.exception("the sequencer stopped")
            self._failure = exc
            self._hang_up()  # so that writers settle now instead of timing out
            self._stopped.set()

    def _hang_up(self) -> None:
        """_hang_up closes the listener and every writer's connection."""
        for key in list(self._selector.get_map().values()):
            if isinstance(key.data, _Client):
                key.data.close()
        self._listener.close()

    # -- network ---------------------------------------------------------------

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)  # read when ready; an answer that does not fit hangs up
        self._selector.register(sock, selectors.EVENT_READ, _Client(sock))

    def _read(self, client: _Client) -> None:
        try:
            chunk = client.sock.recv(1 << 20)
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(client)
            return
        buf = client.buffer
        buf += chunk
        while len(buf) >= 4:
            (size,) = _U32.unpack_from(buf)
            if size > _MAX_FRAME:
                client.answer(_NO_ID, InputError(f"a request of {size} bytes is over {_MAX_FRAME}"))
                self._drop(client)
                return
            if len(buf) < 4 + size:
                return
            body = bytes(buf[4 : 4 + size])
            del buf[: 4 + size]
            try:
                rid, leaves = _decode_request(body)
            except (ValueError, struct.error) as exc:
                client.answer(_NO_ID, InputError(f"malformed request: {exc}"))
                self._drop(client)
                return
            try:
                check_leaves(leaves)
            except InputError as exc:  # well framed: refuse this one, keep the connection
                if not client.answer(rid, exc):
                    self._drop(client)
                    return
                continue
            self._pending.append((client, rid, leaves))

    def _drop(self, client: _Client) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.sock)
        client.close()

    # -- integration -------------------------------------------------------------

    def _integrate(self, pending: list[_Request]) -> None:
        """_integrate appends ``pending`` in batches of up to max_batch entries and answers."""
        while pending:
            count, cut = 0, 0
            while cut < len(pending) and (
                cut == 0 or count + len(pending[cut][2]) <= self.max_batch
            ):
                count += len(pending[cut][2])
                cut += 1
            batch, pending = pending[:cut], pending[cut:]
            results: Sequence[Appended | BaseException]
            try:
                results = self.ledger.append_requests([(rid, leaves) for _, rid, leaves in batch])
            except (LedgerError, InputError) as exc:
                results = [exc] * len(batch)
            except Exception as exc:  # e.g. the checkpoint signer; the writers settle and go on
                _log.exception("the sequencer could not append a batch")
                results = [LedgerError(f"the sequencer could not append: {exc}")] * len(batch)
            with self._count_lock:  # counted before anyone hears of it
                self.batches += 1
                self.appended += sum(isinstance(result, Appended) for result in results)
            for (client, rid, _), result in zip(batch, results, strict=True):
                if not client.answer(rid, result):
                    self._drop(client)


class _Unreachable(OSError):
    """_Unreachable: the sequencer could not be connected to (nothing was sent)."""


class SequencedLedger(PostgresLedger):
    """SequencedLedger is a PostgresLedger whose appends go through a sequencer.

    Everything but :meth:`append` is PostgresLedger's. An append of up to
    :attr:`group_limit` entries outside ``reserve()`` is sent to the
    sequencer at ``sequencer`` (``host:port``); when the sequencer does not
    answer it (unreachable, lost, an error, ``timeout`` seconds), the
    request is settled in the database and, if nothing was appended, made
    through group append (the module docstring). ``fallbacks`` counts those.
    After a failed connection it appends without the sequencer for
    :attr:`retry_after` seconds before it tries again.
    """

    retry_after: float = 5.0

    def __init__(
        self,
        url: str,
        origin: str,
        note_signer: CheckpointSigner,
        *,
        sequencer: str,
        timeout: float = 30.0,
        **kwargs: Any,
    ) -> None:
        self.sequencer = sequencer
        self._address = parse_address(sequencer)
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._retry_at = 0.0
        self.fallbacks = 0
        """fallbacks counts the appends made through group append instead."""
        super().__init__(url, origin, note_signer, **kwargs)

    def append(self, leaves: Sequence[bytes]) -> Appended:
        batch = check_leaves(leaves)
        with self._lock:
            if self._closed:
                raise LedgerError(f"ledger {self.url} is closed")
            if self._reserved is not None or len(batch) > self.group_limit:
                return super().append(batch)
            if time.monotonic() < self._retry_at:  # it was unreachable a moment ago
                self.fallbacks += 1
                return super().append(batch)
            rid = os.urandom(_ID)
            try:
                return self._ask(rid, batch)
            except _Unreachable as exc:  # nothing was sent: nothing to settle
                self._retry_at = time.monotonic() + self.retry_after
                why: BaseException = exc
            except (OSError, LedgerError) as exc:
                self._disconnect()
                if isinstance(exc, TimeoutError):  # it is stuck: leave it alone a while
                    self._retry_at = time.monotonic() + self.retry_after
                landed = self._settle(rid, exc)
                if landed is not None:
                    return Appended(landed.first_index, landed.size, landed.checkpoint_note,
                                    len(batch))  # fmt: skip
                why = exc
            except BaseException:  # interrupted: its answer must not be read as the next one's
                self._disconnect()
                with contextlib.suppress(Exception):
                    self._settle(rid, LedgerError("the append was interrupted"))
                raise
            self.fallbacks += 1
            _log.warning(
                "sequencer %s did not append (%s); appending through group append",
                self.sequencer, why,
            )  # fmt: skip
            return super().append(batch)

    def _ask(self, rid: bytes, batch: list[bytes]) -> Appended:
        """_ask sends one request and returns the sequencer's answer (OSError, LedgerError)."""
        sock = self._sock
        if sock is None:
            try:
                sock = socket.create_connection(self._address, timeout=self._connect_timeout)
            except OSError as exc:
                raise _Unreachable(
                    f"cannot connect to {self.sequencer}: {exc.strerror or exc}"
                ) from exc
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self._timeout)
            self._sock = sock
        sock.sendall(_encode_request(rid, batch))
        (size,) = _U32.unpack(_recv_exact(sock, 4))
        if not 1 <= size <= _MAX_FRAME:
            raise ConnectionError(f"the sequencer sent a frame of {size} bytes")
        body = _recv_exact(sock, size)
        if body[1 : 1 + _ID] != rid:
            raise ConnectionError("the sequencer answered another request")
        if body[:1] == b"E":
            raise LedgerError(body[1 + _ID :].decode("utf-8", "replace"))
        at = 1 + _ID + _ANSWER.size
        if body[:1] != b"K" or len(body) <= at:
            raise ConnectionError("the sequencer sent an answer that does not parse")
        first, tree_size = _ANSWER.unpack_from(body, 1 + _ID)
        note = body[at:]
        if not note.startswith(self.origin.encode() + b"\n"):
            raise ConnectionError("the sequencer answered with a checkpoint of another log")
        return Appended(first, tree_size, note, len(batch))

    def _settle(self, rid: bytes, why: BaseException) -> Appended | None:
        """_settle finds where a request landed, or withdraws it (None: nothing appended)."""
        try:
            return self.withdraw_request(rid)
        except LedgerError as exc:
            raise LedgerError(
                f"ledger {self.url}: sequencer {self.sequencer} did not answer an append ({why})"
                f" and the ledger cannot be reached to settle it, so whether it is appended is"
                f" unknown; check the log before appending it again: {exc}"
            ) from exc

    def _disconnect(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        with self._lock:
            self._disconnect()
        super().close()

    def __repr__(self) -> str:
        return (
            f"SequencedLedger({self.url!r}, origin={self.origin!r}, sequencer={self.sequencer!r})"
        )
