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
"""

from __future__ import annotations

import struct
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
