"""Reading back what an offline W&B run wrote: the records of its transaction log.

An offline run keeps everything it would send (config, summary, artifacts with
their manifests and metadata) in ``run-<id>.wandb``, which ``wandb sync`` later
replays. wandb 0.31 ships no Python reader for it, so this is one, for the tests
only. The file is a 7-byte header (``:W&B``, magic 0xBEE1 little-endian,
version 0) followed by LevelDB's log format (leveldb doc/log_format.md):
32 KiB blocks of chunks, each ``crc32 (4, LE) | length (2, LE) | type (1) |
data``, type FULL=1, FIRST=2, MIDDLE=3, LAST=4, a block's tail shorter than a
chunk header zero-filled. W&B's CRC is zlib's CRC-32 over the type byte and the
data. Each reassembled record is a ``wandb_internal.Record`` protobuf.

The log is complete only once wandb-core has closed it, which is later than
``wandb.finish()`` returning (see :func:`finished_records`); a complete log ends
with the run's ``exit`` record, which :func:`read_finished` checks.
"""

from __future__ import annotations

import struct
import threading
import zlib
from pathlib import Path
from typing import Any

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[Any]:
    """read_records returns every Record of a transaction log, in order; a bad CRC,
    header or framing raises ValueError."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    if not data.startswith(HEADER):
        raise ValueError(f"{path}: not a W&B transaction log (header {data[:7]!r})")
    records: list[Any] = []
    pos, pending = len(HEADER), b""
    while pos < len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER:  # zero-filled block tail
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + CHUNK_HEADER])
        chunk = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind == 0 and length == 0:  # preallocated, unwritten
            continue
        if zlib.crc32(bytes([kind]) + chunk) != crc or len(chunk) != length:
            raise ValueError(f"{path}: corrupt chunk ending at offset {pos}")
        if kind not in (FULL, FIRST, MIDDLE, LAST):
            raise ValueError(f"{path}: unknown chunk type {kind} ending at offset {pos}")
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def of_type(records: list[Any], kind: str) -> list[Any]:
    """of_type returns the payloads of the records of one type (``artifact``, ``summary``...)."""
    return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]


def read_finished(path: Path) -> list[Any]:
    """read_finished is :func:`read_records` of a log W&B has finished writing: one without
    the run's ``exit`` record fails, saying so, instead of being read as a short log."""
    records = read_records(path)
    if not of_type(records, "exit"):
        kinds = [r.WhichOneof("record_type") for r in records]
        raise AssertionError(
            f"{path} is not complete: no exit record among its {len(records)} records "
            f"{kinds}; read it after the run is finished and W&B's service has exited "
            "(finished_records, or the training process's end)"
        )
    return records


def finished_records(run: Any, *, timeout: float = 120.0) -> list[Any]:
    """finished_records returns the records of ``run``, a finished run of this process,
    once wandb-core has written all of them.

    Leaving ``with wandb.init()`` (``run.finish()``) returns once wandb-core has
    handled the run's exit record, but the log's records still sit in the
    writer's in-memory block: they reach the file when wandb-core closes the
    run's stream, which it does on the finish message ``finish()`` sends last,
    without waiting for an answer. ``wandb.teardown()`` sends the teardown
    message after it (wandb-core handles a connection's messages in order,
    closing the stream first) and waits for wandb-core to exit. The wait is
    bounded by ``timeout`` seconds; the next ``wandb.init()`` starts a new
    service.
    """
    import wandb

    path = Path(run.settings.sync_file)
    failed: list[BaseException] = []

    def teardown() -> None:
        try:
            wandb.teardown()
        except BaseException as exc:  # SystemExit: wandb-core exited with an error
            failed.append(exc)

    waiter = threading.Thread(target=teardown, name="wandb-teardown", daemon=True)
    waiter.start()
    waiter.join(timeout)
    if waiter.is_alive():
        raise AssertionError(
            f"wandb-core did not exit within {timeout:.0f} s of wandb.teardown(), "
            f"so {path} may not be complete; its log is in {path.parent / 'logs'}"
        )
    if failed:
        raise AssertionError(f"wandb.teardown() failed: {failed[0]!r}") from failed[0]
    return read_finished(path)
