"""Content digests: BLAKE3 of bytes, files and directories; per-sample ids of tables.

Every definition here is exact and documented, with its bytes, in
``docs/digests.md``. In short:

- A file's ``blake3`` is BLAKE3 of its bytes (what ``b3sum FILE`` prints).
- A *manifest* is ``b3sum``'s own output, one line per file::

      <64 lowercase hex>  <relative POSIX path>\\n

  sorted by the UTF-8 bytes of the path. A path holding a backslash or a
  newline is written as ``b3sum`` writes it: the line starts with ``\\`` and
  the path has ``\\`` as ``\\\\`` and newline as ``\\n``. So ``b3sum --check``
  reads a manifest back, run from the directory.
- A directory's ``blake3`` is BLAKE3(manifest) and its ``sha256_subject`` is
  SHA-256(manifest): the subject digest in-toto and Sigstore accept. A single
  file's ``blake3`` is the file's own BLAKE3 and its ``sha256_subject`` is
  SHA-256 over the one-line manifest naming the file by its base name.
- Walking a directory: empty directories add nothing; a symbolic link to a
  regular file inside the tree is hashed as that file's bytes under the
  link's own path; any other link (outside the tree, to a directory,
  dangling) and any special file (FIFO, socket, device) is refused with
  :class:`~prov_core.errors.InputError`, as is an unreadable file or a name
  that is not valid UTF-8.

A sample's id is its RFC 9162 leaf hash: ``SHA-256(0x00 || leaf data)``, where
the leaf data is a row's type-aware canonical encoding (``provgate-row/v1``,
:mod:`prov_core._rows`) or a file's 32-byte BLAKE3 (``provgate-file/v1``). The
dataset root is the RFC 9162 root over the ids sorted, the ids being the
tree's level-0 hashes; membership and non-membership proofs live in
:mod:`prov_core._samples`. Both are re-exported here. pyarrow is imported only
when a table is touched, so ``provgate digest`` starts fast.
"""

from __future__ import annotations

import builtins
import hashlib
import mmap
import os
import stat
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import blake3

from prov_core.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

    from prov_core._samples import (
        FILE_SAMPLE_ENCODING,
        MembershipProof,
        NonMembershipProof,
        SampleProof,
        SampleSet,
        check_sample_proof,
        file_id_of_digest,
        prove_sample,
        sample_proof_from_json,
    )

# Start-up time is part of ``provgate digest``: this module imports neither pyarrow nor
# pathlib, dataclasses or json, and loads the sample-set half (prov_core._samples) on
# first use of one of its names.
_SAMPLE_NAMES = frozenset(
    {
        "FILE_SAMPLE_ENCODING",
        "MembershipProof",
        "NonMembershipProof",
        "SampleProof",
        "SampleSet",
        "check_sample_proof",
        "file_id_of_digest",
        "prove_sample",
        "sample_proof_from_json",
    }
)


def __getattr__(name: str) -> Any:
    if name in _SAMPLE_NAMES:
        from prov_core import _samples

        return getattr(_samples, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FILE_SAMPLE_ENCODING",
    "ROW_ENCODING",
    "ROW_ID_COLUMN",
    "TABULAR_SUFFIXES",
    "FileDigest",
    "MembershipProof",
    "NonMembershipProof",
    "Progress",
    "SampleProof",
    "SampleSet",
    "TreeDigest",
    "add_row_ids",
    "check_sample_proof",
    "digest_bytes",
    "digest_file",
    "digest_path",
    "file_id",
    "file_id_of_digest",
    "is_tabular",
    "manifest_bytes",
    "manifest_line",
    "manifest_sha256",
    "prove_sample",
    "read_table",
    "row_id",
    "row_ids",
    "sample_proof_from_json",
    "sample_set_of_batches",
    "sample_set_of_path",
    "sample_set_of_table",
]

Progress = Callable[[int], None]
"""Progress is called with the number of bytes just hashed (an increment, not a total)."""

ROW_ENCODING = "provgate-row/v1"
"""ROW_ENCODING names the canonical row encoding: a row's id is SHA-256(0x00 || encoding)."""

ROW_ID_COLUMN = "_prov_id"
"""ROW_ID_COLUMN is the column :func:`add_row_ids` adds: ``fixed_size_binary(32)``."""

TABULAR_SUFFIXES = (".parquet", ".pq", ".csv", ".jsonl", ".ndjson")
"""TABULAR_SUFFIXES are the file name endings :func:`read_table` reads (case-insensitive)."""

# Files at least this large are hashed by BLAKE3 on all cores from a memory
# map; smaller ones on one thread. Measured on a 2-core machine: at 1 MiB the
# threaded path is ~20% slower (0.55 vs 0.46 ms), at 4 MiB ~1.8x faster
# (1.16 vs 2.11 ms); the crossover lies near 2 MiB.
MULTITHREAD_MIN_SIZE = 2 << 20
_READ_CHUNK = 1 << 20  # single-threaded reads: 1 MiB buffers
_MMAP_STEP = 256 << 20  # threaded hashing with progress: report every 256 MiB


class FileDigest(NamedTuple):
    """FileDigest is one manifest entry: a relative POSIX path, its BLAKE3 (hex), its size."""

    path: str
    blake3: str
    size: int


class TreeDigest(NamedTuple):
    """TreeDigest is the digest of a file or a directory.

    ``blake3`` (hex) is the file's BLAKE3, or BLAKE3 of the manifest for a
    directory; ``sha256_subject`` (hex) is SHA-256 of the manifest, the in-toto
    subject digest; ``files`` are the manifest entries in manifest order;
    ``bytes`` is the total size of the files.
    """

    blake3: str
    sha256_subject: str
    files: list[FileDigest]
    bytes: int
    is_dir: bool = False

    def manifest(self) -> builtins.bytes:
        """manifest returns the exact manifest bytes both digests of a directory are taken over."""
        return manifest_bytes((f.path, f.blake3) for f in self.files)


def digest_bytes(data: bytes | bytearray | memoryview) -> str:
    """digest_bytes returns the BLAKE3 of ``data`` as 64 lowercase hex digits."""
    return blake3.blake3(data).hexdigest()


def manifest_line(path: str, blake3_hex: str) -> bytes:
    """manifest_line returns one ``b3sum`` output line, escaped as ``b3sum`` escapes it.

    A path holding ``\\`` or a newline is written with those as ``\\\\`` and
    ``\\n`` and the line is prefixed with ``\\``; any other path is written as is.
    """
    if "\\" in path or "\n" in path:
        escaped = path.replace("\\", "\\\\").replace("\n", "\\n")
        return f"\\{blake3_hex}  {escaped}\n".encode()
    return f"{blake3_hex}  {path}\n".encode()


def _path_key(entry: tuple[str, str]) -> bytes:
    return entry[0].encode("utf-8")


def manifest_bytes(entries: Iterable[tuple[str, str]]) -> bytes:
    """manifest_bytes returns the manifest of ``(relative path, blake3 hex)`` entries.

    Entries are sorted by the UTF-8 bytes of the path first; the result is
    what ``b3sum`` prints for those files in that order.
    """
    try:
        ordered = sorted(entries, key=_path_key)
    except UnicodeEncodeError as exc:
        raise InputError(f"a manifest path is not valid UTF-8: {exc.object!r}") from None
    return b"".join(manifest_line(p, h) for p, h in ordered)


def manifest_sha256(entries: Iterable[tuple[str, str]]) -> str:
    """manifest_sha256 returns SHA-256 (hex) of :func:`manifest_bytes` of ``entries``."""
    return hashlib.sha256(manifest_bytes(entries)).hexdigest()


def _open_error(path: str | os.PathLike[str], exc: OSError) -> InputError:
    reason = exc.strerror or exc.__class__.__name__
    return InputError(f"{os.fspath(path)}: cannot read: {reason}")


def _hash_file(path: str, size: int, progress: Progress | None) -> str:
    """_hash_file returns the BLAKE3 (hex) of the file at ``path`` whose size is ``size``."""
    try:
        if size >= MULTITHREAD_MIN_SIZE:
            hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
            if progress is None and hasattr(hasher, "update_mmap"):
                hasher.update_mmap(path)
            else:
                with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                    view = memoryview(m)
                    try:
                        for start in range(0, len(view), _MMAP_STEP):
                            part = view[start : start + _MMAP_STEP]
                            hasher.update(part)
                            part.release()
                            if progress is not None:
                                progress(min(_MMAP_STEP, len(view) - start))
                    finally:
                        view.release()
            return str(hasher.hexdigest())
        hasher = blake3.blake3()
        with open(path, "rb", buffering=0) as raw:
            buf = bytearray(_READ_CHUNK)
            chunk = memoryview(buf)
            while n := raw.readinto(buf):
                hasher.update(chunk[:n])
                if progress is not None:
                    progress(n)
        return str(hasher.hexdigest())
    except OSError as exc:
        raise _open_error(path, exc) from exc


def digest_file(path: str | os.PathLike[str], progress: Progress | None = None) -> str:
    """digest_file returns the BLAKE3 (hex) of a regular file's bytes, as ``b3sum`` prints it."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise _missing_or_unreadable(p, exc) from exc
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p}: not a regular file")
    return _hash_file(p, st.st_size, progress)


def _missing_or_unreadable(path: str, exc: OSError) -> InputError:
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{path}: no such file or directory")
    return _open_error(path, exc)


def _check_name(path: str) -> None:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise InputError(
            f"{shown}: file name is not valid UTF-8; rename it (manifests are UTF-8)"
        ) from None


def _walk(root: str, real_root: str) -> list[tuple[str, str, int]]:
    """_walk returns ``(relative posix path, path to read, size)`` for every file under root.

    It follows no directory link; a file link is read only when its target is
    a regular file inside ``real_root``.
    """
    out: list[tuple[str, str, int]] = []
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            raise _open_error(directory, exc) from exc
        for entry in entries:
            rel = prefix + entry.name
            _check_name(rel)
            try:
                if entry.is_symlink():
                    out.append((rel, *_link_target(entry.path, rel, real_root)))
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    out.append((rel, entry.path, entry.stat(follow_symlinks=False).st_size))
                else:
                    raise InputError(
                        f"{entry.path}: not a regular file, directory or link "
                        "(FIFO, socket or device); move it out of the tree"
                    )
            except OSError as exc:
                raise _open_error(entry.path, exc) from exc
    return out


def _link_target(link: str, rel: str, real_root: str) -> tuple[str, int]:
    target = os.path.realpath(link)
    inside = target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)
    if not inside:
        raise InputError(
            f"{link}: symbolic link points outside the tree (to {target}); "
            "provgate does not follow links out of a digested directory"
        )
    try:
        st = os.stat(target)
    except OSError:
        raise InputError(f"{link}: dangling symbolic link") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{link}: symbolic link to a directory or special file; only links to "
            f"regular files inside the tree are followed ({rel})"
        )
    return target, st.st_size


def _content(path: str, size: int, progress: Progress | None, reuse_written: bool) -> str:
    """_content is the BLAKE3 of a file: the one a sink noted as it stored the file
    (``reuse_written``, and the file unchanged since), else read from the file."""
    if reuse_written:
        from prov_core.sink import written_digest

        try:
            st = os.stat(path)
        except OSError as exc:
            raise _open_error(path, exc) from exc
        found = written_digest(st) if st.st_size == size else None
        if found is not None:
            if progress is not None:
                progress(size)
            return found
    return _hash_file(path, size, progress)


def digest_path(
    path: str | os.PathLike[str],
    progress: Progress | None = None,
    *,
    reuse_written: bool = False,
) -> TreeDigest:
    """digest_path returns the digest of a file or a directory tree, streaming its bytes.

    ``progress``, when given, is called with each increment of bytes hashed.
    A missing path, an unreadable file, a link out of the tree or a special
    file raises :class:`~prov_core.errors.InputError` naming it.
    With ``reuse_written``, a file this process stored through
    :func:`prov_core.sink.open_output` (or ``copy_into``), unchanged since, is
    named by the digest taken as it was written instead of being read again
    (:func:`prov_core.sink.written_digest`); verification never sets it.
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise _missing_or_unreadable(p, exc) from exc
    if stat.S_ISREG(st.st_mode):
        name = os.path.basename(os.path.normpath(p)) or p
        _check_name(name)
        b3 = _content(p, st.st_size, progress, reuse_written)
        entry = FileDigest(path=name, blake3=b3, size=st.st_size)
        return TreeDigest(
            blake3=b3,
            sha256_subject=hashlib.sha256(manifest_line(name, b3)).hexdigest(),
            files=[entry],
            bytes=st.st_size,
        )
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{p}: not a regular file or directory")
    listing = _walk(p, os.path.realpath(p))
    listing.sort(key=lambda e: e[0].encode("utf-8"))
    files = [
        FileDigest(rel, _content(src, size, progress, reuse_written), size)
        for rel, src, size in listing
    ]
    manifest = b"".join(manifest_line(f.path, f.blake3) for f in files)
    return TreeDigest(
        blake3=blake3.blake3(manifest).hexdigest(),
        sha256_subject=hashlib.sha256(manifest).hexdigest(),
        files=files,
        bytes=sum(f.size for f in files),
        is_dir=True,
    )


# --- tables: thin wrappers so pyarrow is imported only when a table is used ---


def is_tabular(path: str | os.PathLike[str]) -> bool:
    """is_tabular tells whether ``path`` names a file :func:`read_table` reads (by its suffix)."""
    p = os.fspath(path)
    return p.lower().endswith(TABULAR_SUFFIXES) and not os.path.isdir(p)


def read_table(path: str | os.PathLike[str]) -> pa.Table:
    """read_table reads a Parquet, CSV or JSON Lines file, chosen by its suffix."""
    from prov_core import _rows

    return _rows.read_table(path)


def row_ids(table: pa.Table) -> list[bytes]:
    """row_ids returns one 32-byte id per row, in row order: SHA-256(0x00 || row encoding)."""
    from prov_core import _rows

    return _rows.row_ids(table)


def row_id(row: pa.Table | Mapping[str, Any]) -> bytes:
    """row_id returns the id of one row, to prove it in (or out of) a sample set.

    ``row`` is a one-row table or a mapping of column name to value; give a
    value as a ``pyarrow.Scalar`` to fix its type (``pa.scalar(7, pa.int16())``).
    See :func:`prov_core._rows.row_id`.
    """
    from prov_core import _rows

    return _rows.row_id(row)


def file_id(path: str | os.PathLike[str]) -> bytes:
    """file_id returns the sample id of a file: SHA-256(0x00 || BLAKE3 of its bytes)."""
    from prov_core._samples import file_id_of_digest

    return file_id_of_digest(digest_file(path))


def add_row_ids(table: pa.Table) -> pa.Table:
    """add_row_ids returns ``table`` with a ``_prov_id`` column (``fixed_size_binary(32)``).

    A table that already has ``_prov_id`` is verified instead (see :mod:`prov_core._rows`).
    """
    from prov_core import _rows

    return _rows.add_row_ids(table)


def sample_set_of_table(table: pa.Table) -> SampleSet:
    """sample_set_of_table returns the sorted row ids of ``table`` and their Merkle root.

    Tables of 262,144 rows or more are hashed in worker processes, one per CPU
    up to four (``PROVGATE_HASH_PROCESSES=0`` keeps it in this process); the
    bytes are the same either way. See docs/digests.md, "Worker processes".
    """
    from prov_core import _rows

    return _rows.sample_set_of_table(table)


def sample_set_of_path(
    path: str | os.PathLike[str], tree: TreeDigest, *, per_file: bool = False
) -> SampleSet:
    """sample_set_of_path is the sample set of ``path``, whose digest is ``tree``.

    The rows of a table file (:func:`is_tabular`), unless ``per_file``; else one
    sample per file of the tree.
    """
    if is_tabular(path) and not per_file:
        return sample_set_of_table(read_table(path))
    from prov_core._samples import SampleSet

    return SampleSet.of_files(f.blake3 for f in tree.files)


def sample_set_of_batches(batches: Iterable[pa.Table | pa.RecordBatch]) -> SampleSet:
    """sample_set_of_batches returns the sample set of rows that arrive in batches.

    It equals :func:`sample_set_of_table` of the batches' concatenation (an
    id depends on its row only), holding 32 bytes per row rather than the
    rows: for shards, or a dataset read a batch at a time. A ``_prov_id``
    column is verified.
    """
    from prov_core import _rows

    return _rows.sample_set_of_batches(batches)


def _main(argv: list[str] | None = None) -> int:
    """_main is ``python -m prov_core.digest PATH...``: ``<blake3>  <path>`` lines, as b3sum."""
    from prov_core.errors import ProvgateError

    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.stderr.write("usage: python -m prov_core.digest PATH...\n")
        return 2
    try:
        for a in args:
            sys.stdout.write(f"{digest_path(a).blake3}  {a}\n")
    except ProvgateError as exc:
        sys.stderr.write(f"provgate: error: {exc}\n")
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
