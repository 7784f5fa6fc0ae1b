"""Per-sample ids of tables: the ``provgate-row/v1`` row encoding and its RFC 9162 leaf hash.

The encoding (exact bytes in ``docs/digests.md``)::

    row    = column*   (columns sorted by the UTF-8 bytes of their names, "_prov_id" left out)
    column = u32le(len(name)) || name (UTF-8) || tag (1 byte) || value
    value  = ""                              tag N  null (any type)
           | 0x00 or 0x01                    tag B  boolean
           | 8 bytes IEEE 754 binary64, LE   tag F  float16/32/64 widened exactly;
                                                    -0.0 as +0.0, any NaN as 0x7ff8000000000000
           | u32le(len(text)) || text        tag I  integer of any width, ASCII decimal
                                             tag M  decimal, shortest text (1.10 -> "1.1")
                                             tag D  date: days since 1970-01-01
                                             tag T  timestamp without time zone: nanoseconds
                                             tag Z  timestamp with a time zone: UTC nanoseconds
                                             tag H  time of day: nanoseconds since midnight
                                             tag U  duration: nanoseconds
           | u32le(len(bytes)) || bytes      tag S  string (UTF-8)
                                             tag Y  binary (any width)

A row id is its RFC 9162 leaf hash, ``SHA-256(0x00 || row)``, 32 bytes: the
value the dataset's Merkle tree has at level 0 (see :mod:`prov_core._samples`).
Decimal texts are canonical: no leading
zeros, ``-`` only for negatives. Integers, decimals, dates and times are
therefore independent of the Arrow width and unit they arrive in (int32 ``7``
and int64 ``7`` agree; ``timestamp[s]`` and ``timestamp[ms]`` of one instant
agree), while the tags keep kinds apart (``1``, ``1.0``, ``"1"`` and ``true``
differ, and null differs from ``""``). Dictionary columns are encoded as their
values. Lists, structs, maps, unions, intervals and extension types are
refused with :class:`~prov_core.errors.CanonicalizationError`.

Everything is vectorized with ``pyarrow.compute``: each column becomes a binary
array of its encoded cells, the cells are joined per row (the leaf prefix
``0x00`` comes first, so each cell is exactly the bytes to hash), and only the
hashing is a loop in C-level ``map`` calls, one SHA-256 call per row and one
per tree node. Rows are processed in batches so memory stays bounded.

Small tables (under :data:`PARALLEL_MIN_ROWS` rows) are hashed in this
process: the encoding of one batch (pyarrow, which releases the GIL) overlaps
with the hashing of the previous one, and the ids are sorted in prefix buckets
on a thread while the tree is hashed over the buckets already sorted. Larger
tables are hashed by worker processes (:class:`prov_core._samples.HashPool`,
one per CPU up to four): batches of rows are encoded on the pool's threads and
hashed in its processes, then the sorted ids are cut into blocks of
:data:`TREE_BLOCK_IDS` (aligned whole subtrees) whose roots the processes
compute while the next prefix bucket is sorted; the root is taken over the
block roots. Ids and roots are the same bytes either way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from prov_core._samples import (
    ID_ALGORITHM,
    ID_SIZE,
    HashPool,
    Job,
    SampleSet,
    hash_pool,
    root_of_level,
)
from prov_core.errors import CanonicalizationError, FormatError, InputError, VerificationError
from prov_core.ledger import merkle

__all__ = [
    "ALGORITHM",
    "ROW_ENCODING",
    "ROW_ID_COLUMN",
    "add_row_ids",
    "encode_rows",
    "read_table",
    "row_id",
    "row_ids",
    "row_ids_blob",
    "sample_set_of_batches",
    "sample_set_of_table",
    "sorted_ids_and_root",
]

ROW_ENCODING = "provgate-row/v1"
ALGORITHM = ID_ALGORITHM
ROW_ID_COLUMN = "_prov_id"

BATCH_ROWS = 1 << 17
"""BATCH_ROWS rows are encoded at once: it bounds memory and lets encoding overlap hashing."""

SORT_BUCKETS = 8
"""SORT_BUCKETS prefix buckets are sorted one after the other while earlier ones are hashed."""

PARALLEL_MIN_ROWS = 1 << 18
"""PARALLEL_MIN_ROWS: from this many rows (or ids) on, worker processes hash.

Below it, starting them (about 0.1 s of CPU each) would cost about what they save.
"""

PARALLEL_BATCH_ROWS = 1 << 16
"""PARALLEL_BATCH_ROWS rows make one job for a worker process (about 5 MB of encoded rows)."""

TREE_BLOCK_IDS = 1 << 16
"""TREE_BLOCK_IDS sorted ids (a power of two) make one subtree whose root is one job."""

_BUCKET_MIN_IDS = 1 << 16  # below this many ids, one sort is cheaper than bucketing
_LEAF = b"\x00"  # RFC 9162 §2.1.1 leaf prefix

_BIN = pa.large_binary()
_CANONICAL_NAN = pa.scalar(float("nan"), pa.float64())  # 0x7ff8000000000000 on every IEEE platform
_ZERO = pa.scalar(0.0, pa.float64())
_EMPTY = pa.scalar(b"", _BIN)
_NS_ZEROS = {"s": "000000000", "ms": "000000", "us": "000", "ns": ""}


def _u32le(n: int) -> bytes:
    return n.to_bytes(4, "little")


def _text_ns(values: pa.Array, unit: str) -> pa.Array:
    """_text_ns returns the decimal text of int64 ``values`` in ``unit``, scaled to nanoseconds.

    Scaling is done on the text (appending zeros), so no value can overflow.
    """
    text = pc.cast(values, pa.string())
    zeros = _NS_ZEROS[unit]
    if not zeros:
        return text
    scaled = pc.binary_join_element_wise(text, pa.scalar(zeros), "")
    return pc.if_else(pc.equal(values, 0), pa.scalar("0"), scaled)


_DECIMAL_TRAILING = r"^(-?[0-9]+)\.([0-9]*?)0*$"


def _decimal_text(arr: pa.Array, name: str) -> pa.Array:
    if arr.type.scale < 0:
        raise CanonicalizationError(
            f"column {name!r}: decimal with negative scale ({arr.type}) is not supported"
        )
    text = pc.cast(arr, pa.string())
    if arr.type.scale == 0:
        return pc.if_else(pc.equal(text, "-0"), pa.scalar("0"), text)
    text = pc.replace_substring_regex(text, _DECIMAL_TRAILING, r"\1.\2")
    text = pc.replace_substring_regex(text, r"\.$", "")
    return pc.if_else(pc.equal(text, "-0"), pa.scalar("0"), text)


def _payload(arr: pa.Array, name: str) -> tuple[bytes, pa.Array | None, bool]:
    """_payload returns (tag, value bytes or None for an all-null column, length-prefixed?)."""
    t = arr.type
    if pa.types.is_dictionary(t):
        return _payload(arr.dictionary_decode(), name)
    if pa.types.is_null(t):
        return b"N", None, False
    if pa.types.is_boolean(t):
        return b"B", pc.if_else(arr, pa.scalar(b"\x01", _BIN), pa.scalar(b"\x00", _BIN)), False
    if pa.types.is_integer(t):
        return b"I", pc.cast(arr, pa.string()), True
    if pa.types.is_floating(t):
        f = arr if t == pa.float64() else pc.cast(arr, pa.float64())
        f = pc.if_else(pc.equal(f, _ZERO), _ZERO, f)  # -0.0 == 0.0: both become +0.0
        f = pc.if_else(pc.is_nan(f), _CANONICAL_NAN, f)
        return b"F", pc.cast(f.view(pa.binary(8)), _BIN), False
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return b"S", arr, True
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    ):
        return b"Y", arr, True
    if pa.types.is_decimal(t):
        return b"M", _decimal_text(arr, name), True
    if pa.types.is_date32(t):
        return b"D", pc.cast(arr.view(pa.int32()), pa.string()), True
    if pa.types.is_date64(t):
        try:
            days = pc.cast(arr, pa.date32())
        except pa.ArrowInvalid as exc:
            raise CanonicalizationError(
                f"column {name!r}: date64 value that is not a whole day: {exc}"
            ) from None
        return b"D", pc.cast(days.view(pa.int32()), pa.string()), True
    if pa.types.is_timestamp(t):
        tag = b"T" if t.tz is None else b"Z"
        return tag, _text_ns(arr.view(pa.int64()), t.unit), True
    if pa.types.is_time32(t):
        return b"H", _text_ns(pc.cast(arr.view(pa.int32()), pa.int64()), t.unit), True
    if pa.types.is_time64(t):
        return b"H", _text_ns(arr.view(pa.int64()), t.unit), True
    if pa.types.is_duration(t):
        return b"U", _text_ns(arr.view(pa.int64()), t.unit), True
    raise CanonicalizationError(
        f"column {name!r} has type {t}, which {ROW_ENCODING} does not encode "
        "(nested, interval and extension types are refused); flatten or cast it first"
    )


def _encode_column(name: str, arr: pa.Array, prefix: bytes = b"") -> pa.Array:
    """_encode_column returns ``prefix`` + the encoded cell of every row of one column."""
    name_bytes = name.encode("utf-8")
    head = prefix + _u32le(len(name_bytes)) + name_bytes
    null_cell = pa.scalar(head + b"N", _BIN)
    tag, values, prefixed = _payload(arr, name)
    if values is None:
        return pa.nulls(len(arr), _BIN).fill_null(null_cell)
    values = pc.cast(values, _BIN)
    parts = [pa.scalar(head + tag, _BIN)]
    if prefixed:
        lengths = pc.binary_length(values)
        if (
            len(lengths)
            and pc.max(lengths).as_py() is not None
            and pc.max(lengths).as_py() >= 1 << 32
        ):
            raise CanonicalizationError(f"column {name!r} has a value of 4 GiB or more")
        parts.append(pc.cast(pc.cast(lengths, pa.uint32()).view(pa.binary(4)), _BIN))
    parts.append(values)
    return pc.binary_join_element_wise(*parts, _EMPTY).fill_null(null_cell)


def _columns(table: pa.Table) -> list[str]:
    try:
        names = [n for n in table.column_names if n != ROW_ID_COLUMN]
    except UnicodeDecodeError:
        raise CanonicalizationError("a column name is not valid UTF-8") from None
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise CanonicalizationError(f"duplicate column names {dup}: rows have no canonical form")
    try:
        return sorted(names, key=lambda n: n.encode("utf-8"))
    except UnicodeEncodeError:
        raise CanonicalizationError("a column name is not valid Unicode") from None


def encode_rows(table: pa.Table) -> pa.Array:
    """encode_rows returns the ``provgate-row/v1`` bytes of every row (``large_binary``)."""
    return _encode(table, b"")


def _encode(table: pa.Table, prefix: bytes) -> pa.Array:
    """_encode returns ``prefix || row`` for every row; the prefix rides on the first cell."""
    names = _columns(table)
    n = table.num_rows
    if not names:
        return pa.nulls(n, _BIN).fill_null(pa.scalar(prefix, _BIN))
    try:
        cells = [
            _encode_column(c, table.column(c).combine_chunks(), prefix if i == 0 else b"")
            for i, c in enumerate(names)
        ]
        if len(cells) == 1:
            return cells[0]
        return pc.binary_join_element_wise(*cells, _EMPTY)
    except pa.ArrowException as exc:
        raise CanonicalizationError(f"rows cannot be encoded: {exc}") from exc


def _encode_leaves(table: pa.Table) -> pa.Array:
    """_encode_leaves returns the RFC 9162 leaf data of every row: ``0x00 || row``."""
    return _encode(table, _LEAF)


_sha256 = hashlib.sha256
_digest = type(hashlib.sha256(b"")).digest


def _hash_cells(cells: pa.Array) -> bytes:
    """_hash_cells returns SHA-256 of each value of a binary array, concatenated (32 bytes each).

    ``to_pylist`` then ``map`` over the C calls: measured faster than hashing
    ``memoryview`` slices of the Arrow data buffer, whose per-slice objects
    cost more than the ``bytes`` that ``to_pylist`` makes.
    """
    return b"".join(map(_digest, map(_sha256, cells.to_pylist())))


def _batches(table: pa.Table, size: int) -> Iterator[pa.Table]:
    n = table.num_rows
    for start in range(0, n, size):
        yield table.slice(start, min(size, n - start))  # a table without columns does not clamp


def _values(arr: pa.Array) -> memoryview:
    """_values returns the bytes of all values of a binary or string array, end to end."""
    width = 8 if pa.types.is_large_binary(arr.type) or pa.types.is_large_string(arr.type) else 4
    offsets = memoryview(arr.buffers()[1]).cast("q" if width == 8 else "i")
    start, end = offsets[arr.offset], offsets[arr.offset + len(arr)]
    data = arr.buffers()[2]
    return memoryview(data)[start:end] if data is not None else memoryview(b"")


def _leaf_job(batch: pa.Table) -> Job:
    """_leaf_job encodes a batch of rows as a worker job: the struct format and the leaves."""
    leaves = _encode_leaves(batch)
    lengths = pc.cast(pc.binary_length(leaves), pa.string())
    fmt = pc.binary_join_element_wise(lengths, pa.scalar("s"), "")
    return b"L", b"=" + bytes(_values(fmt)), _values(leaves)


def _row_ids_in_processes(
    table: pa.Table, pool: HashPool, progress: Callable[[int], None] | None
) -> bytes:
    batches = list(_batches(table, PARALLEL_BATCH_ROWS))
    futures = [pool.submit(partial(_leaf_job, b)) for b in batches]
    out: list[bytes] = []
    for batch, future in zip(batches, futures, strict=True):
        out.append(future.result())
        if progress is not None:
            progress(batch.num_rows)
    return b"".join(out)


def row_ids_blob(table: pa.Table, progress: Callable[[int], None] | None = None) -> bytes:
    """row_ids_blob returns the id of every row, in row order, concatenated (32 bytes each).

    ``progress``, if given, is called with the number of rows of each batch
    whose ids are done, in row order.
    """
    _columns(table)  # refuse duplicate names before any work
    with hash_pool(table.num_rows, PARALLEL_MIN_ROWS) as pool:
        return _row_ids_blob(table, pool, progress)


def _row_ids_blob(
    table: pa.Table, pool: HashPool | None, progress: Callable[[int], None] | None
) -> bytes:
    """_row_ids_blob hashes in ``pool``'s processes, or here while a thread encodes ahead."""
    if pool is not None:
        return _row_ids_in_processes(table, pool, progress)
    out: list[bytes] = []
    with ThreadPoolExecutor(max_workers=1) as encoder:
        batches = _batches(table, BATCH_ROWS)
        pending = None
        first = next(batches, None)
        if first is not None:
            pending = encoder.submit(_encode_leaves, first)
        while pending is not None:
            rows = pending.result()
            nxt = next(batches, None)
            pending = encoder.submit(_encode_leaves, nxt) if nxt is not None else None
            out.append(_hash_cells(rows))
            if progress is not None:
                progress(len(rows))
    return b"".join(out)


def row_ids(table: pa.Table) -> list[bytes]:
    """row_ids returns one 32-byte id per row, in row order."""
    blob = row_ids_blob(table)
    return [blob[i : i + ID_SIZE] for i in range(0, len(blob), ID_SIZE)]


def _ids_array(blob: bytes) -> pa.Array:
    return pa.Array.from_buffers(
        pa.binary(ID_SIZE), len(blob) // ID_SIZE, [None, pa.py_buffer(blob)]
    )


def _to_bytes(ids: pa.Array) -> bytes:
    """_to_bytes returns the data of a ``fixed_size_binary(32)`` array as one ``bytes``."""
    data = ids.buffers()[1]
    if data is None:
        return b""
    start = ids.offset * ID_SIZE
    return bytes(data.slice(start, len(ids) * ID_SIZE).to_pybytes())


def _sort_key(ids: pa.Array) -> pa.Array:
    """_sort_key returns the first 8 bytes of each id as a big-endian ``uint64``."""
    head = pc.cast(pc.binary_slice(ids, 0, 8), pa.binary())
    return pc.cast(pc.binary_reverse(head), pa.binary(8)).view(pa.uint64())


def _sort(ids: pa.Array, key: pa.Array) -> bytes:
    """_sort returns ``ids`` in ascending byte order, concatenated.

    Arrow sorts by the big-endian uint64 of the first 8 bytes, then by the
    whole id on ties: the same order as sorting the bytes, about 3x faster than
    sorting ``fixed_size_binary`` alone.
    """
    if len(ids) < 2:
        return _to_bytes(ids)
    order = pc.sort_indices(
        pa.table({"k": key, "id": ids}), sort_keys=[("k", "ascending"), ("id", "ascending")]
    )
    return _to_bytes(pc.take(ids, order))


def _sorted_buckets(ids: pa.Array, buckets: int) -> Iterator[bytes]:
    """_sorted_buckets yields the sorted ids of each prefix bucket, lowest prefix first.

    Bucket ``b`` of ``buckets`` (a power of two) holds the ids whose top bits
    equal ``b``; their concatenation in order is the whole sorted list.
    """
    key = _sort_key(ids)
    if buckets == 1:
        yield _sort(ids, key)
        return
    top = pc.shift_right(key, pa.scalar(64 - (buckets.bit_length() - 1), pa.uint64()))
    for b in range(buckets):
        mask = pc.equal(top, pa.scalar(b, pa.uint64()))
        yield _sort(pc.filter(ids, mask), pc.filter(key, mask))


def sorted_ids_and_root(blob: bytes) -> tuple[bytes, bytes]:
    """sorted_ids_and_root returns the ids of ``blob`` sorted, and the RFC 9162 root over them.

    The ids are the tree's level-0 hashes.
    """
    with hash_pool(len(blob) // ID_SIZE, PARALLEL_MIN_ROWS) as pool:
        return _sorted_ids_and_root(blob, pool)


def _sorted_ids_and_root(blob: bytes, pool: HashPool | None) -> tuple[bytes, bytes]:
    """_sorted_ids_and_root sorts in prefix buckets and hashes blocks of the sorted ids.

    A thread sorts the next bucket while the blocks of :data:`TREE_BLOCK_IDS`
    ids already sorted are hashed, here or in ``pool``'s processes. Each block
    starts at a multiple of its power-of-two size, so its root is a node of the
    whole tree, and the root over the block roots (the last block may be
    short) is the root over all ids (RFC 9162 §2.1.1).
    """
    n = len(blob) // ID_SIZE
    if n == 0:
        return b"", merkle.EMPTY_ROOT
    ids = _ids_array(blob)
    buckets = SORT_BUCKETS if n >= _BUCKET_MIN_IDS else 1
    block = TREE_BLOCK_IDS * ID_SIZE
    parts: list[bytes] = []
    roots: list[bytes | Future[bytes]] = []

    def root(level: bytes) -> bytes | Future[bytes]:
        if pool is None:
            return root_of_level(level)
        return pool.submit(partial(_tree_job, level))

    carry = b""
    with ThreadPoolExecutor(max_workers=1) as sorter_thread:
        sorter = _sorted_buckets(ids, buckets)
        pending = sorter_thread.submit(next, sorter, None)
        while (part := pending.result()) is not None:
            pending = sorter_thread.submit(next, sorter, None)
            parts.append(part)
            level = carry + part if carry else part
            whole = len(level) // block * block
            roots.extend(root(level[i : i + block]) for i in range(0, whole, block))
            carry = level[whole:]
    if carry:
        roots.append(root(carry))
    tops = b"".join(r if isinstance(r, bytes) else r.result() for r in roots)
    return b"".join(parts), root_of_level(tops)


def _tree_job(level: bytes) -> Job:
    return b"T", level, b""


def sample_set_of_table(table: pa.Table) -> SampleSet:
    """sample_set_of_table returns the row ids of ``table``, sorted, with their Merkle root.

    A ``_prov_id`` column is verified first (see :func:`add_row_ids`). Large
    tables are hashed in worker processes (see the module docstring).
    """
    _columns(table)  # refuse duplicate names before any work
    with hash_pool(table.num_rows, PARALLEL_MIN_ROWS) as pool:
        blob = _row_ids_blob(table, pool, None)
        if ROW_ID_COLUMN in table.column_names:
            _verify_column(table, blob)
        sorted_blob, root = _sorted_ids_and_root(blob, pool)
    return SampleSet(sorted_blob, leaf_encoding=ROW_ENCODING, root=root)


def sample_set_of_batches(batches: Iterable[pa.Table | pa.RecordBatch]) -> SampleSet:
    """sample_set_of_batches is :func:`sample_set_of_table` of rows that arrive in batches.

    The set is the same as that of the batches' concatenation (row ids do not
    depend on how rows are grouped), without holding the rows together: only
    their ids, 32 bytes each. A batch with a ``_prov_id`` column has it
    verified first.
    """
    parts: list[bytes] = []
    for batch in batches:
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        blob = row_ids_blob(table)
        if ROW_ID_COLUMN in table.column_names:
            _verify_column(table, blob)
        parts.append(blob)
    sorted_blob, root = sorted_ids_and_root(b"".join(parts))
    return SampleSet(sorted_blob, leaf_encoding=ROW_ENCODING, root=root)


def _first_false(equal: pa.ChunkedArray | pa.Array) -> int:
    """_first_false returns the index of the first false or null value, or -1."""
    ok = pc.fill_null(equal, False)
    if pc.all(ok).as_py():
        return -1
    return int(pc.index(ok, False).as_py())


def _verify_column(table: pa.Table, blob: bytes) -> None:
    col = table.column(ROW_ID_COLUMN)
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        hexes = pa.Array.from_buffers(
            pa.binary(2 * ID_SIZE), len(col), [None, pa.py_buffer(blob.hex().encode())]
        )
        bad = _first_false(
            pc.equal(pc.cast(pc.utf8_lower(col), pa.large_binary()), pc.cast(hexes, _BIN))
        )
    elif pa.types.is_fixed_size_binary(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        bad = _first_false(pc.equal(pc.cast(col, _BIN), pc.cast(_ids_array(blob), _BIN)))
    else:
        raise CanonicalizationError(
            f"column {ROW_ID_COLUMN!r} has type {t}; expected fixed_size_binary(32) or hex strings"
        )
    if bad >= 0:
        raise VerificationError(
            f"row {bad}: {ROW_ID_COLUMN} does not match the row's contents "
            f"({ROW_ENCODING}); the table was changed after its ids were added"
        )


def row_id(row: pa.Table | Mapping[str, Any]) -> bytes:
    """row_id returns the id of one row: a one-row table, or a mapping of column to value.

    A mapping's values are typed as ``pyarrow.array([value])`` infers them (a
    Python ``int`` is an integer, ``float`` a float, ``str`` a string); pass a
    ``pyarrow.Scalar`` (``pa.scalar(7, pa.int16())``) to give a column its
    table's type where inference would differ. The id is what
    :func:`row_ids` gives that row in any table, and what a membership proof proves.
    """
    if isinstance(row, pa.Table):
        table = row
    else:
        try:
            table = pa.table(
                {
                    name: pa.array([v.as_py()], v.type) if isinstance(v, pa.Scalar) else [v]
                    for name, v in row.items()
                }
            )
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise CanonicalizationError(f"row cannot be made into a table: {exc}") from exc
    if table.num_rows != 1:
        raise InputError(f"row_id takes one row, got a table of {table.num_rows}")
    return row_ids_blob(table)


def add_row_ids(table: pa.Table) -> pa.Table:
    """add_row_ids returns ``table`` with a ``_prov_id`` column, ``fixed_size_binary(32)``.

    A table that already has ``_prov_id`` is returned unchanged once every id
    is checked against its row (a mismatch raises
    :class:`~prov_core.errors.VerificationError` naming the row).
    """
    blob = row_ids_blob(table)
    if ROW_ID_COLUMN in table.column_names:
        _verify_column(table, blob)
        return table
    ids = _ids_array(blob)
    return table.append_column(pa.field(ROW_ID_COLUMN, pa.binary(ID_SIZE), nullable=False), ids)


# --- reading files --------------------------------------------------------------------------


def _reader(suffix: str) -> Callable[[str], pa.Table] | None:
    # Each reader module is imported only when its format is read.
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return cast("Callable[[str], pa.Table]", pq.read_table)
    if suffix == ".csv":
        import pyarrow.csv as pcsv

        return cast("Callable[[str], pa.Table]", pcsv.read_csv)
    if suffix in (".jsonl", ".ndjson"):
        import pyarrow.json as pjson

        return cast("Callable[[str], pa.Table]", pjson.read_json)
    return None


def read_table(path: str | os.PathLike[str]) -> pa.Table:
    """read_table reads a Parquet (.parquet, .pq), CSV (.csv) or JSON Lines (.jsonl, .ndjson) file.

    A missing or unreadable file raises :class:`~prov_core.errors.InputError`;
    bytes that do not parse, or a header with a name twice, raise
    :class:`~prov_core.errors.FormatError` naming the file and, where the
    parser tells it, the line.
    """
    p = Path(path)
    reader = _reader(p.suffix.lower())
    if reader is None:
        raise InputError(f"{p}: not a table file (expected .parquet, .pq, .csv, .jsonl or .ndjson)")
    if not p.is_file():
        if not p.exists():
            raise InputError(f"{p}: no such file")
        raise InputError(f"{p}: not a regular file")
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    try:
        table = reader(os.fspath(p))
        names = table.column_names  # pyarrow decodes the names here: they may not be UTF-8
    except (pa.ArrowException, ValueError, UnicodeError, IndexError, OverflowError) as exc:
        raise FormatError(f"{p}: malformed {p.suffix.lstrip('.').upper()}: {exc}") from exc
    except OSError as exc:  # pyarrow reports some parse failures as OSError
        raise FormatError(f"{p}: cannot be read as {p.suffix.lstrip('.').upper()}: {exc}") from exc
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise FormatError(f"{p}: column names appear twice: {dup}")
    return table
