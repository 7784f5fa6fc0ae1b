"""Outputs hashed as they are written: the stored bytes' BLAKE3 without a second read.

A step that writes its output through :func:`open_output` gets the file's
BLAKE3 from the bytes on their way to disk; a later digest of that file by
this process (:func:`~prov_core.digest.digest_path` with ``reuse_written=True``,
which adapters use for the outputs they record) takes it from here instead of
reading the file again::

    with open_output(path) as f:  # a binary file object: write, tell, flush
        pq.write_table(table, f)
    f.result.blake3  # == provgate digest PATH, taken from the bytes written

How the digest is kept equal to the bytes stored:

1. The bytes go to a fresh temporary file beside ``path`` (``O_EXCL``), only
   appended to: the sink cannot seek, truncate or read, and hands out no file
   descriptor, so the file is the written bytes in order. Each chunk is
   written in the caller's thread (``os.write``, looping on short writes) and
   then hashed in a worker thread, in the same order; BLAKE3 releases the GIL,
   so hashing overlaps the caller's next piece of work. Only immutable
   ``bytes`` are handed to the worker; anything else is copied first.
2. :meth:`HashingSink.close` (leaving the ``with`` block normally) waits for the
   worker, checks that the file holds exactly as many bytes as were hashed,
   renames it over ``path`` and notes the file's identity (device, inode, size,
   modification and change times, read after the rename) with its digest.
   Any later change to the file, or a new file on the same inode, must then
   carry a later change time: file systems with multigrain timestamps (Linux
   6.13+: ext4, XFS, Btrfs, tmpfs) guarantee that once the change time was
   read, which is probed once per device; elsewhere ``close`` waits until the
   clock the file system stamps change times with has moved past it (at most
   one tick, a few milliseconds). (A writer racing the sink on the
   same path from another thread or process during ``close`` is not covered.)
3. A write that fails, an exception inside the ``with`` block, or a sink
   dropped without ``close`` discards the temporary file: nothing is renamed
   and nothing is noted, so no record can name those bytes.
4. :func:`written_digest` returns a noted digest only while the file's current
   identity is the noted one; otherwise (the file was changed, replaced or
   touched since) ``None``, and callers read the file as usual. Verification
   (:func:`prov_core.nodes.verify_node`, the gate, ``provgate verify``) never
   uses it: it always reads the stored bytes.

:func:`copy_into` collects a file into a pipeline's zone the same way: the
copy is made in the kernel (``copy_file_range``) chunk by chunk, and the
worker hashes each chunk read back from the *destination* while the next one
is copied, so the digest is of the bytes stored, not of the source.

The noted digests live in this process only (at most :data:`MAX_NOTED`, oldest
dropped first), and only for files of :data:`NOTE_MIN_SIZE` or more; another
process, or this one after a restart, reads the file, as it reads small ones.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import queue
import secrets
import stat
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple

import blake3

from prov_core.errors import InputError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "MAX_NOTED",
    "NOTE_MIN_SIZE",
    "HashingSink",
    "WrittenFile",
    "copy_into",
    "open_output",
    "written_digest",
]

MAX_NOTED = 65536
"""MAX_NOTED is how many written files' digests this process keeps (oldest dropped first)."""

NOTE_MIN_SIZE = 4 << 20
"""NOTE_MIN_SIZE: smaller files are not noted, and are read when digested: reading one
back costs less than what noting may (a wait of up to one clock tick, see close)."""

_COALESCE = 1 << 20  # small writes are gathered up to 1 MiB before they go to disk
_SMALL = 256 << 10  # writes below 256 KiB are gathered; larger ones go straight through
_COPY_CHUNK = 8 << 20  # copy_into copies and hashes 8 MiB at a time
_BATCH = 8 << 20  # the worker is handed about 8 MiB at a time (one wake-up each)
_QUEUE_DEPTH = 4  # batches waiting for the hashing worker (back-pressure beyond)
# Linux stamps file times from CLOCK_REALTIME_COARSE (5; not in the time module).
_COARSE_CLOCK = 5 if sys.platform == "linux" else time.CLOCK_REALTIME
_MAX_WAIT_NS = 50_000_000  # a change time further ahead (a remote file system's clock): not noted


class WrittenFile(NamedTuple):
    """WrittenFile is a file a sink stored: its path, its BLAKE3 (hex) and its size."""

    path: str
    blake3: str
    size: int


class _Identity(NamedTuple):
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Identity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


_noted: OrderedDict[tuple[int, int], tuple[_Identity, str]] = OrderedDict()
_noted_lock = threading.Lock()


def _note(identity: _Identity, digest: str) -> None:
    key = (identity.dev, identity.ino)
    with _noted_lock:
        _noted[key] = (identity, digest)
        _noted.move_to_end(key)
        while len(_noted) > MAX_NOTED:
            _noted.popitem(last=False)


def written_digest(st: os.stat_result) -> str | None:
    """written_digest returns the BLAKE3 noted when a sink stored the file ``st`` describes.

    ``st`` is a fresh ``os.stat`` of the file. ``None`` unless this process
    stored that very file through :func:`open_output` or :func:`copy_into` and
    its device, inode, size, modification and change times are still the ones
    noted then (see the module docstring).
    """
    if not stat.S_ISREG(st.st_mode):
        return None
    identity = _Identity.of(st)
    with _noted_lock:
        found = _noted.get((identity.dev, identity.ino))
    if found is None or found[0] != identity:
        return None
    return found[1]


def _write_error(path: str, exc: OSError) -> InputError:
    reason = exc.strerror or exc.__class__.__name__
    return InputError(f"{path}: cannot write: {reason}; nothing was stored or recorded")


_Item = bytes | tuple[int, int, int]  # bytes, or (fd, offset, length) of the stored file


class _Hasher:
    """_Hasher hashes chunks in order: in batches of about 8 MiB on a worker thread.

    The worker starts with the first full batch; a file that never fills one is
    hashed in the caller's thread when the digest is asked for.
    """

    def __init__(self) -> None:
        self._hasher = blake3.blake3()
        self._batch: list[_Item] = []
        self._batched = 0
        self._queue: queue.Queue[list[_Item] | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def put(self, item: _Item, size: int) -> None:
        """put hashes ``item`` (``size`` bytes) after every earlier one."""
        if self._error is not None:  # the worker stopped; raise it in the caller's thread
            raise self._error
        self._batch.append(item)
        self._batched += size
        if self._batched >= _BATCH:
            if self._queue is None:
                self._queue = queue.Queue(_QUEUE_DEPTH)
                self._thread = threading.Thread(target=self._run, name="provgate-sink", daemon=True)
                self._thread.start()
            self._queue.put(self._batch)
            self._batch, self._batched = [], 0

    def _run(self) -> None:
        assert self._queue is not None
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain, so the caller never blocks on a full queue
            try:
                self._hash(batch)
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc

    def _hash(self, batch: list[_Item]) -> None:
        for item in batch:
            if isinstance(item, bytes):
                self._hasher.update(item)
                continue
            fd, offset, length = item  # a region of the stored file, read back
            view = memoryview(bytearray(min(length, _COPY_CHUNK)))
            while length:
                n = os.preadv(fd, [view[: min(length, len(view))]], offset)
                if n == 0:
                    raise OSError(0, "the file is shorter than the bytes copied into it")
                self._hasher.update(view[:n])
                offset += n
                length -= n

    def hexdigest(self) -> str:
        """hexdigest waits for every chunk put so far and returns the BLAKE3 (hex)."""
        self._finish()
        if self._error is not None:
            raise self._error
        self._hash(self._batch)
        self._batch = []
        return str(self._hasher.hexdigest())

    def stop(self) -> None:
        """stop ends the worker without waiting for a digest (the write is abandoned)."""
        self._error = self._error or InputError("the write was abandoned")
        self._batch = []
        self._finish()

    def _finish(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None


class HashingSink(io.BufferedIOBase):
    """HashingSink is a binary, write-only, append-only file that hashes what it stores.

    Made by :func:`open_output`; see the module docstring for the guarantees.
    ``result`` is the :class:`WrittenFile` once :meth:`close` has stored the file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        target = Path(path)
        if not target.name:
            raise InputError(f"{os.fspath(path)!r}: an output needs a file name")
        self._path = str(target)
        self._tmp = str(target.with_name(f".{target.name}.{secrets.token_hex(6)}.provgate-tmp"))
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)  # read: copy_into
        try:
            self._fd = os.open(self._tmp, flags | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as exc:
            raise _write_error(self._path, exc) from exc
        self._position = 0
        self._pending = bytearray()
        self._hasher = _Hasher()
        self._failed = False
        self._done = False
        self._pid = os.getpid()
        self.result: WrittenFile | None = None

    @property
    def name(self) -> str:
        """name is the path the file is stored at when the sink is closed."""
        return self._path

    @property
    def mode(self) -> str:
        return "wb"

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        self._check_open()
        return self._position

    def write(self, data: ReadableBuffer) -> int:
        """write stores all of ``data`` (after what was written before) and hashes it."""
        self._check_open()
        chunk = data if type(data) is bytes else bytes(memoryview(data))  # frozen for the worker
        n = len(chunk)
        if n < _SMALL:
            self._pending += chunk
            if len(self._pending) >= _COALESCE:
                self._flush_pending()
        else:
            self._flush_pending()
            self._store(chunk)
        self._position += n
        return n

    def flush(self) -> None:
        """flush hands every byte written so far to the operating system."""
        if not self._done:
            self._check_open()
            self._flush_pending()

    def close(self) -> None:
        """close stores the file at its path and notes its digest; an error discards it."""
        if self._done:
            return
        try:
            self._check_open()
            self._flush_pending()
            digest = self._hasher.hexdigest()
            written = os.fstat(self._fd).st_size
            if written != self._position:
                raise InputError(
                    f"{self._path}: {written} bytes are stored but {self._position} were "
                    "written; another writer changed the file, so it is not stored"
                )
            os.replace(self._tmp, self._path)
            identity = _Identity.of(os.fstat(self._fd))  # after the rename: its ctime
        except OSError as exc:
            self._abort()
            raise _write_error(self._path, exc) from exc
        except BaseException:
            self._abort()
            raise
        os.close(self._fd)
        self._done = True
        super().close()
        if identity.size >= NOTE_MIN_SIZE and (
            _ctime_moves_after_stat(os.path.dirname(self._path) or ".", identity.dev)
            or _wait_past(identity.ctime_ns)
        ):
            _note(identity, digest)
        self.result = WrittenFile(self._path, digest, identity.size)

    def abort(self) -> None:
        """abort discards everything written: nothing is stored at the path, nothing noted."""
        if not self._done:
            self._abort()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:  # never store a file nobody closed: discard it
        if not getattr(self, "_done", True):
            self._abort()

    # -- internals

    def _check_open(self) -> None:
        if self._done:
            raise ValueError(f"I/O operation on a closed output ({self._path})")
        if os.getpid() != self._pid:  # a forked child has the sink but not its worker
            raise InputError(
                f"{self._path}: this output was opened in process {self._pid}; write and "
                "close it there (a forked process cannot finish its digest)"
            )
        if self._failed:
            raise InputError(f"{self._path}: an earlier write failed; the output is discarded")

    def _flush_pending(self) -> None:
        if self._pending:
            chunk = bytes(self._pending)
            self._pending.clear()
            self._store(chunk)

    def _store(self, chunk: bytes) -> None:
        try:
            _write_all(self._fd, chunk)
        except OSError as exc:
            self._failed = True
            raise _write_error(self._path, exc) from exc
        self._put(chunk, len(chunk))

    def _put(self, item: _Item, size: int) -> None:
        try:
            self._hasher.put(item, size)
        except BaseException:
            self._failed = True
            raise

    def _copy_from(self, src_fd: int, length: int) -> None:
        """_copy_from appends ``length`` bytes of ``src_fd`` (from its offset 0) in the kernel."""
        self._check_open()
        self._flush_pending()
        offset = 0
        while offset < length:
            start = self._position
            try:
                n = _copy_range(src_fd, self._fd, offset, min(_COPY_CHUNK, length - offset))
            except OSError as exc:
                self._failed = True
                raise _write_error(self._path, exc) from exc
            if n == 0:
                self._failed = True
                raise InputError(
                    f"{self._path}: the source ended after {offset} of {length} bytes "
                    "(it shrank while being copied); nothing was stored"
                )
            self._position += n
            offset += n
            self._put((self._fd, start, n), n)  # hashed as read back from the stored file

    def _abort(self) -> None:
        self._done = True
        self._failed = True
        if os.getpid() != self._pid:  # a forked child: leave the parent's file and worker
            with contextlib.suppress(OSError):
                os.close(self._fd)
            io.BufferedIOBase.close(self)
            return
        self._hasher.stop()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)
        io.BufferedIOBase.close(self)


def _copy_range(src_fd: int, dst_fd: int, offset: int, count: int) -> int:
    """_copy_range copies ``count`` bytes of ``src_fd`` at ``offset`` to ``dst_fd``'s end."""
    if hasattr(os, "copy_file_range"):
        try:
            return os.copy_file_range(src_fd, dst_fd, count, offset)
        except OSError as exc:  # not supported here (another file system, an old kernel)
            if exc.errno not in _NO_COPY_RANGE:
                raise
    data = os.pread(src_fd, count, offset)
    _write_all(dst_fd, data)
    return len(data)


def _write_all(fd: int, data: bytes) -> None:
    """_write_all writes all of ``data`` to ``fd``, looping on short writes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_NO_COPY_RANGE = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})


_ctime_moves: dict[int, bool] = {}


def _ctime_moves_after_stat(directory: str, dev: int) -> bool:
    """_ctime_moves_after_stat tells whether, on device ``dev``, a change made after the
    change time was read always gets a later one (Linux multigrain timestamps, since
    6.13, or a fine clock): then the sink's own ``fstat`` after the rename is enough and
    :func:`_wait_past` is not needed. Probed once per device in this process: three
    times over, a write right after an ``fstat`` must move the change time."""
    known = _ctime_moves.get(dev)
    if known is not None:
        return known
    probe = os.path.join(directory, f".provgate-ctime-probe-{secrets.token_hex(6)}")
    moves = False
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0))
        try:
            moves = os.fstat(fd).st_dev == dev
            for _ in range(3):
                before = os.fstat(fd).st_ctime_ns
                os.write(fd, b"p")
                moves = moves and os.fstat(fd).st_ctime_ns > before
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError:
        return False  # not known: wait instead, and probe again next time
    _ctime_moves[dev] = moves
    return moves


def _wait_past(ctime_ns: int) -> bool:
    """_wait_past returns True once the file-system clock reads later than ``ctime_ns``.

    Change times are stamped from a coarse clock (a few milliseconds a tick on
    Linux); past the tick, any change to the file gets a later change time
    than the one noted, so :func:`written_digest` sees it. A change time more
    than 50 ms ahead (a file system with its own clock) returns False at once:
    such a file is not noted, and is read when it is digested.
    """
    now = time.clock_gettime_ns(_COARSE_CLOCK)
    if ctime_ns - now > _MAX_WAIT_NS:
        return False
    while now <= ctime_ns:
        time.sleep(0.0005)
        now = time.clock_gettime_ns(_COARSE_CLOCK)
    return True


def open_output(path: str | os.PathLike[str]) -> HashingSink:
    """open_output opens ``path`` for writing through a :class:`HashingSink`.

    Use it as a context manager: leaving the block normally stores the file at
    ``path`` (replacing a file there, as ``open(path, "wb")`` would, but
    atomically: readers see the old file or the new one) and sets
    ``result``; an exception discards it. Failures raise
    :class:`~prov_core.errors.InputError` naming the path.
    """
    return HashingSink(path)


def copy_into(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> WrittenFile:
    """copy_into copies file ``source`` to ``destination``, hashing the bytes stored there.

    The copy is made in the kernel where it can be; the digest is of the
    destination's bytes, read back chunk by chunk while the next chunk is
    copied. Raises :class:`~prov_core.errors.InputError` for a missing or
    unreadable source (nothing is stored then) or a failed write.
    """
    src = os.fspath(source)
    try:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror
        raise InputError(f"{src}: cannot read: {reason}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{src}: not a regular file")
        with open_output(destination) as sink:
            sink._copy_from(fd, st.st_size)
    finally:
        os.close(fd)
    assert sink.result is not None
    return sink.result
