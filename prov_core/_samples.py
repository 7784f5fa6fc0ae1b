"""Sample sets: sorted 32-byte sample ids, their RFC 9162 root, and (non-)membership proofs.

A sample's id IS its RFC 9162 leaf hash (SHA-256; ``leaf = SHA-256(0x00 || data)``):

- a table row's id is ``SHA-256(0x00 || row)`` where ``row`` is its
  ``provgate-row/v1`` encoding (:mod:`prov_core._rows`);
- a file's id is ``SHA-256(0x00 || blake3)`` where ``blake3`` is the 32-byte
  BLAKE3 digest of its bytes (``provgate-file/v1``): :func:`file_id_of_digest`.

A dataset is committed to by the RFC 9162 Merkle tree whose level-0 hashes are
the ids in ascending byte order, duplicates kept and adjacent, and whose nodes
are ``SHA-256(0x01 || left || right)`` (:mod:`prov_core.ledger.merkle` does the
hashing and the proofs). The ids are not hashed again: the root is
``merkle.root_of(sorted ids)``. So anyone holding a row's bytes checks it with
standard RFC 9162 tooling: the leaf hash of those bytes is the id, and the
id's inclusion proof leads to the root.

Because the leaves are sorted, absence is provable: an id that is not in the
set falls between two adjacent leaves ``i`` and ``i + 1`` (or before leaf 0,
or after the last leaf), and inclusion proofs of those neighbours, with the
adjacency of their indices and the order ``left < id < right``, show that
there is no room for it. That rests on the tree really being sorted, which is
what the signer of the root asserts by naming the leaf encoding; anyone
holding the ids can recompute the root to check it.

Proofs have a JSON form (``to_json`` / :func:`sample_proof_from_json`) with
every hash as lowercase hex; it is parsed strictly.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import repeat
from typing import IO, TYPE_CHECKING, Any

from prov_core.errors import FormatError, InputError, ProofError, ProvgateError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from prov_core.ledger import merkle

# The worker processes import this module (see "hashing in bulk" below): modules only the
# caller's side needs (subprocess, threads, logging, json) are imported where used, so a
# worker starts fast.

# prov_core.ledger is imported on first use, not here: importing the package loads the
# whole ledger (checkpoints, cryptography), and ``provgate digest`` needs none of it.

__all__ = [
    "FILE_SAMPLE_ENCODING",
    "HASH_PROCESSES_ENV",
    "ID_ALGORITHM",
    "ID_SIZE",
    "MAX_HASH_PROCESSES",
    "HashPool",
    "MembershipProof",
    "Neighbour",
    "NonMembershipProof",
    "SampleProof",
    "SampleSet",
    "check_sample_proof",
    "file_id_of_digest",
    "hash_messages",
    "hash_pool",
    "hash_processes",
    "prove_sample",
    "root_of_level",
    "sample_proof_from_json",
    "sorted_root",
]

ID_SIZE = 32
"""ID_SIZE is the size in bytes of every sample id."""

ID_ALGORITHM = "sha256"
"""ID_ALGORITHM is the ``algorithm`` of every sample set: ids are RFC 9162 SHA-256 leaf hashes."""

FILE_SAMPLE_ENCODING = "provgate-file/v1"
"""FILE_SAMPLE_ENCODING names file samples: id = SHA-256(0x00 || the file's 32-byte BLAKE3)."""

_sha256 = hashlib.sha256


def file_id_of_digest(blake3_digest: bytes | str) -> bytes:
    """file_id_of_digest returns a file's sample id from its BLAKE3 (32 bytes or 64 hex digits).

    The id is the RFC 9162 leaf hash of the digest bytes: ``SHA-256(0x00 || digest)``.
    """
    return _sha256(b"\x00" + _as_id(blake3_digest, "BLAKE3 digest")).digest()


def _split(blob: bytes) -> list[bytes]:
    return [blob[i : i + ID_SIZE] for i in range(0, len(blob), ID_SIZE)]


def sorted_root(sorted_ids: bytes) -> bytes:
    """sorted_root returns the RFC 9162 root whose level-0 hashes are the given ids, in order."""
    if not sorted_ids:
        from prov_core.ledger import merkle

        return merkle.EMPTY_ROOT
    return root_of_level(sorted_ids)


def _as_id(value: bytes | str, what: str = "sample id") -> bytes:
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise InputError(f"{what} {value!r} is not hex") from None
    else:
        raw = bytes(value)
    if len(raw) != ID_SIZE:
        raise InputError(
            f"{what} must be {ID_SIZE} bytes ({2 * ID_SIZE} hex digits), got {len(raw)}"
        )
    return raw


class SampleSet:
    """SampleSet is the sorted ids of a dataset's samples, their count and Merkle root.

    Every id is an RFC 9162 leaf hash, so ``algorithm`` is always ``"sha256"``;
    ``leaf_encoding`` names the leaf data (``provgate-row/v1`` for table rows,
    ``provgate-file/v1`` for files). The ids are held as one ``bytes`` of
    ``count * 32`` bytes.
    """

    __slots__ = ("_blob", "_tree", "algorithm", "leaf_encoding", "root")

    def __init__(self, sorted_ids: bytes, *, leaf_encoding: str, root: bytes | None = None) -> None:
        """__init__ takes ids already sorted and concatenated; use :meth:`of_ids` otherwise.

        ``root``, when given, must be the root of those ids (a caller that has
        just computed it saves the work); it is not checked.
        """
        if len(sorted_ids) % ID_SIZE:
            raise InputError(f"sample ids must be {ID_SIZE} bytes each")
        self._blob = bytes(sorted_ids)
        self._tree: merkle.MemoryTree | None = None
        self.algorithm = ID_ALGORITHM
        self.leaf_encoding = leaf_encoding
        self.root = sorted_root(self._blob) if root is None else root

    @classmethod
    def of_ids(cls, ids: Iterable[bytes], *, leaf_encoding: str) -> SampleSet:
        """of_ids sorts sample ids (leaf hashes, 32 bytes each; duplicates kept) into a set.

        The ids must already be leaf hashes (:func:`prov_core.digest.row_ids`,
        :func:`file_id_of_digest`); for files use :meth:`of_files`, which takes
        their BLAKE3 digests.
        """
        items = sorted(ids)
        if any(len(i) != ID_SIZE for i in items):
            raise InputError(f"sample ids must be {ID_SIZE} bytes each")
        return cls(b"".join(items), leaf_encoding=leaf_encoding)

    @classmethod
    def of_files(cls, blake3_digests: Iterable[bytes | str]) -> SampleSet:
        """of_files makes the ``provgate-file/v1`` set of files from their BLAKE3 digests.

        Each digest is 32 bytes or 64 hex digits (``FileDigest.blake3``); one
        sample per file, id ``SHA-256(0x00 || digest)``.
        """
        return cls.of_ids(
            map(file_id_of_digest, blake3_digests), leaf_encoding=FILE_SAMPLE_ENCODING
        )

    @property
    def count(self) -> int:
        """count is the number of samples, duplicates included."""
        return len(self._blob) // ID_SIZE

    def sorted_ids(self) -> bytes:
        """sorted_ids returns the ids concatenated in ascending order."""
        return self._blob

    def ids(self) -> list[bytes]:
        """ids returns the ids in ascending order."""
        return _split(self._blob)

    def id_at(self, index: int) -> bytes:
        """id_at returns the id of leaf ``index``."""
        if not 0 <= index < self.count:
            raise InputError(f"no sample {index} in a set of {self.count}")
        return self._blob[index * ID_SIZE : (index + 1) * ID_SIZE]

    def bisect(self, sample_id: bytes) -> int:
        """bisect returns the first index whose id is >= ``sample_id`` (``count`` if none)."""
        b, lo, hi = self._blob, 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if b[mid * ID_SIZE : (mid + 1) * ID_SIZE] < sample_id:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def __contains__(self, sample_id: object) -> bool:
        if not isinstance(sample_id, bytes | str):
            return False
        sid = _as_id(sample_id)
        i = self.bisect(sid)
        return i < self.count and self.id_at(i) == sid

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return (
            f"SampleSet(count={self.count}, root={self.root.hex()}, "
            f"algorithm={self.algorithm!r}, leaf_encoding={self.leaf_encoding!r})"
        )

    def summary(self) -> dict[str, Any]:
        """summary returns ``{"count", "algorithm", "leafEncoding", "root"}`` (root in hex)."""
        return {
            "count": self.count,
            "algorithm": self.algorithm,
            "leafEncoding": self.leaf_encoding,
            "root": self.root.hex(),
        }

    def tree(self) -> merkle.MemoryTree:
        """tree returns the whole Merkle tree, built on first use and kept for further proofs.

        Its level-0 hashes are the ids themselves.
        """
        from prov_core.ledger import merkle

        if self._tree is None:
            self._tree = merkle.MemoryTree(self.ids())
        return self._tree


@dataclass(frozen=True)
class MembershipProof:
    """MembershipProof shows that ``sample_id`` is leaf ``index`` of the tree ``(count, root)``."""

    sample_id: bytes
    index: int
    count: int
    root: bytes
    path: tuple[bytes, ...]
    algorithm: str
    leaf_encoding: str

    def to_json(self) -> dict[str, Any]:
        """to_json returns the proof as JSON-ready data, hashes in hex."""
        return {
            "type": "membership",
            "id": self.sample_id.hex(),
            "index": self.index,
            "count": self.count,
            "root": self.root.hex(),
            "path": [p.hex() for p in self.path],
            "algorithm": self.algorithm,
            "leafEncoding": self.leaf_encoding,
        }


@dataclass(frozen=True)
class Neighbour:
    """Neighbour is a leaf next to an absent id: its id, index and inclusion path."""

    sample_id: bytes
    index: int
    path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """to_json returns ``{"id", "index", "path"}`` in hex."""
        return {
            "id": self.sample_id.hex(),
            "index": self.index,
            "path": [p.hex() for p in self.path],
        }


@dataclass(frozen=True)
class NonMembershipProof:
    """NonMembershipProof shows that ``sample_id`` is not in the sorted tree ``(count, root)``.

    ``left`` is the greatest leaf below the id and ``right`` the least above
    it; one of them is ``None`` at either end, both for the empty set.
    """

    sample_id: bytes
    count: int
    root: bytes
    left: Neighbour | None
    right: Neighbour | None
    algorithm: str
    leaf_encoding: str

    def to_json(self) -> dict[str, Any]:
        """to_json returns the proof as JSON-ready data, hashes in hex."""
        return {
            "type": "non-membership",
            "id": self.sample_id.hex(),
            "count": self.count,
            "root": self.root.hex(),
            "left": None if self.left is None else self.left.to_json(),
            "right": None if self.right is None else self.right.to_json(),
            "algorithm": self.algorithm,
            "leafEncoding": self.leaf_encoding,
        }


SampleProof = MembershipProof | NonMembershipProof


def prove_sample(sample_set: SampleSet, sample_id: bytes | str) -> SampleProof:
    """prove_sample proves that ``sample_id`` is in the set (membership) or is not (non-membership).

    ``sample_id`` is the sample's id, i.e. its RFC 9162 leaf hash
    (:func:`prov_core.digest.row_id`, :func:`prov_core.digest.file_id`), as 32
    bytes or 64 hex digits; anything else raises :class:`~prov_core.errors.InputError`.
    """
    sid = _as_id(sample_id)
    n = sample_set.count
    i = sample_set.bisect(sid)
    common = {
        "count": n,
        "root": sample_set.root,
        "algorithm": sample_set.algorithm,
        "leaf_encoding": sample_set.leaf_encoding,
    }
    if i < n and sample_set.id_at(i) == sid:
        path = tuple(sample_set.tree().prove_inclusion(i))
        return MembershipProof(sample_id=sid, index=i, path=path, **common)  # type: ignore[arg-type]

    def neighbour(j: int) -> Neighbour:
        return Neighbour(sample_set.id_at(j), j, tuple(sample_set.tree().prove_inclusion(j)))

    left = neighbour(i - 1) if i > 0 else None
    right = neighbour(i) if i < n else None
    return NonMembershipProof(sample_id=sid, left=left, right=right, **common)  # type: ignore[arg-type]


def _check_leaf(what: str, nb: Neighbour, count: int, root: bytes) -> None:
    from prov_core.ledger import merkle

    try:
        merkle.check_inclusion(nb.index, count, nb.sample_id, nb.path, root)
    except ProofError as exc:
        raise ProofError(f"{what} neighbour (leaf {nb.index}): {exc}") from exc


def check_sample_proof(proof: SampleProof, root: bytes | str, count: int) -> bool:
    """check_sample_proof verifies ``proof`` against a trusted root and sample count.

    It returns True for a valid proof (membership or non-membership, as the
    proof's type says) and raises :class:`~prov_core.errors.ProofError`
    otherwise; it never returns False.
    """
    from prov_core.ledger import merkle

    trusted = _as_id(root, "root") if isinstance(root, str) else bytes(root)
    if proof.algorithm != ID_ALGORITHM:
        raise ProofError(
            f"proof is for {proof.algorithm!r} ids; provgate sample ids are RFC 9162 "
            f"{ID_ALGORITHM!r} leaf hashes (recompute the proof from the sample set)"
        )
    # 1. The proof must be about the tree the caller trusts.
    if proof.count != count:
        raise ProofError(f"proof is for {proof.count} samples, the trusted root has {count}")
    if not hmac.compare_digest(proof.root, trusted):
        raise ProofError(f"proof is for root {proof.root.hex()}, not the trusted {trusted.hex()}")
    sid = proof.sample_id
    if len(sid) != ID_SIZE:
        raise ProofError(f"sample id must be {ID_SIZE} bytes, got {len(sid)}")
    if isinstance(proof, MembershipProof):
        # 2. Membership: the id is a leaf of the tree at the stated index.
        merkle.check_inclusion(proof.index, count, sid, proof.path, trusted)
        return True
    left, right = proof.left, proof.right
    # 2. The empty set contains nothing: no neighbours, and the root is the empty root.
    if count == 0:
        if left is not None or right is not None:
            raise ProofError("non-membership proof in an empty set has neighbours")
        if not hmac.compare_digest(trusted, merkle.EMPTY_ROOT):
            raise ProofError("an empty set must have the empty root")
        return True
    if left is None and right is None:
        raise ProofError("non-membership proof names no neighbour in a non-empty set")
    # 3. Order: left < id < right (strict, so the id is neither neighbour).
    if left is not None and not left.sample_id < sid:
        raise ProofError("left neighbour is not below the absent id")
    if right is not None and not sid < right.sample_id:
        raise ProofError("right neighbour is not above the absent id")
    # 4. Adjacency: the neighbours are consecutive leaves, or the first/last leaf.
    if left is None and right is not None and right.index != 0:
        raise ProofError(
            f"the only neighbour must be leaf 0 when the id is below it, not {right.index}"
        )
    if right is None and left is not None and left.index != count - 1:
        raise ProofError(
            f"the only neighbour must be the last leaf ({count - 1}) when the id is above it, "
            f"not {left.index}"
        )
    if left is not None and right is not None and right.index != left.index + 1:
        raise ProofError(f"neighbours are leaves {left.index} and {right.index}, not adjacent")
    # 5. Both neighbours are in the tree at those indices.
    if left is not None:
        _check_leaf("left", left, count, trusted)
    if right is not None:
        _check_leaf("right", right, count, trusted)
    return True


# --- JSON form --------------------------------------------------------------------------------


def _field(doc: Mapping[str, Any], key: str, kind: type) -> Any:
    if key not in doc:
        raise FormatError(f"sample proof lacks {key!r}")
    value = doc[key]
    if kind is int and (type(value) is not int or value < 0):
        raise FormatError(f"sample proof {key!r} must be a non-negative integer")
    if kind is not int and not isinstance(value, kind):
        raise FormatError(f"sample proof {key!r} must be a {kind.__name__}")
    return value


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * ID_SIZE or value != value.lower():
        raise FormatError(f"sample proof {what} must be {2 * ID_SIZE} lowercase hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise FormatError(
            f"sample proof {what} must be {2 * ID_SIZE} lowercase hex digits"
        ) from None


def _path(value: Any, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > 64:
        raise FormatError(f"sample proof {what} must be a list of at most 64 hashes")
    return tuple(map(_hex32, value, repeat(what)))


def _only(doc: Mapping[str, Any], keys: Sequence[str], what: str) -> None:
    extra = sorted(set(doc) - set(keys))
    if extra:
        raise FormatError(f"{what} has unknown fields {extra}")


def _neighbour(value: Any, side: str) -> Neighbour | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FormatError(f"sample proof {side!r} must be an object or null")
    _only(value, ("id", "index", "path"), f"sample proof {side!r}")
    return Neighbour(
        sample_id=_hex32(_field(value, "id", str), f"{side}.id"),
        index=_field(value, "index", int),
        path=_path(_field(value, "path", list), f"{side}.path"),
    )


def sample_proof_from_json(doc: Mapping[str, Any] | str | bytes) -> SampleProof:
    """sample_proof_from_json parses the JSON form of a proof strictly; errors are FormatError."""
    import json

    if isinstance(doc, str | bytes):
        try:
            doc = json.loads(doc)
        except (ValueError, RecursionError) as exc:
            raise FormatError(f"sample proof is not JSON: {exc}") from None
    if not isinstance(doc, Mapping):
        raise FormatError("sample proof must be a JSON object")
    kind = _field(doc, "type", str)
    common = {
        "sample_id": _hex32(_field(doc, "id", str), "id"),
        "count": _field(doc, "count", int),
        "root": _hex32(_field(doc, "root", str), "root"),
        "algorithm": _field(doc, "algorithm", str),
        "leaf_encoding": _field(doc, "leafEncoding", str),
    }
    base = ("type", "id", "count", "root", "algorithm", "leafEncoding")
    if kind == "membership":
        _only(doc, (*base, "index", "path"), "membership proof")
        return MembershipProof(
            index=_field(doc, "index", int), path=_path(_field(doc, "path", list), "path"), **common
        )
    if kind == "non-membership":
        _only(doc, (*base, "left", "right"), "non-membership proof")
        for side in ("left", "right"):
            if side not in doc:
                raise FormatError(f"sample proof lacks {side!r}")
        return NonMembershipProof(
            left=_neighbour(doc["left"], "left"), right=_neighbour(doc["right"], "right"), **common
        )
    raise FormatError(f"sample proof type must be 'membership' or 'non-membership', not {kind!r}")


# --- hashing in bulk: in this process or in worker processes -------------------------------
#
# A Python-level SHA-256 call costs about half a microsecond, almost all of it call
# overhead, and a million-row table needs two million of them (one per id, one per tree
# node). That work is split across worker processes (HashPool) for large inputs. A
# worker is a fresh interpreter started with subprocess (fork + exec), never a fork of
# the caller: the caller is often a Dagster, Airflow or Prefect worker with threads and
# locks that a bare fork would copy mid-use. It is not multiprocessing's "spawn"
# either, which re-imports the caller's __main__ in every child (an orchestrator's whole
# CLI, or a user's unguarded script run again) and needs POSIX semaphores. The worker
# imports this module only (the standard library and prov_core.errors; no pyarrow) and
# answers jobs on a pipe: it starts in ~0.1 s, ~50 ms of CPU.

HASH_PROCESSES_ENV = "PROVGATE_HASH_PROCESSES"
"""HASH_PROCESSES_ENV names the variable that caps the hashing worker processes (0: none)."""

MAX_HASH_PROCESSES = 4
"""MAX_HASH_PROCESSES caps the workers: beyond it, encoding rows in the caller is the limit."""

_NODE = b"\x01"  # RFC 9162 §2.1.1 node prefix
_NODE_CHUNK = 1 << 16  # tree nodes hashed per step: bounds the Python objects alive
_digest = type(_sha256(b"")).digest
_THREADS_PER_WORKER = 2  # one job hashed while the next is prepared


def hash_messages(fmt: bytes, data: bytes | memoryview) -> bytes:
    """hash_messages returns the SHA-256 of each message in ``data``, concatenated (32 bytes each).

    ``fmt`` is a :mod:`struct` format with one ``<length>s`` per message, in
    order (``b"=71s70s72s"``): it cuts ``data`` into the messages in one C call.
    """
    return b"".join(map(_digest, map(_sha256, struct.Struct(fmt).unpack(data))))


def _level_up(level: bytes) -> bytes:
    """_level_up returns the level above ``level`` (concatenated 32-byte hashes).

    Each pair becomes ``SHA-256(0x01 || h[2i] || h[2i+1])``; an odd last hash
    moves up unchanged, which gives RFC 9162's tree (§2.1.1) level by level.
    """
    n = len(level) // ID_SIZE
    pairs = n // 2
    out: list[bytes] = []
    for start in range(0, pairs, _NODE_CHUNK):
        k = min(_NODE_CHUNK, pairs - start)
        chunk = struct.Struct("=" + f"{2 * ID_SIZE}s" * k).unpack_from(level, start * 2 * ID_SIZE)
        out.append(b"".join(map(_digest, map(_sha256, map(_NODE.__add__, chunk)))))
    if n & 1:
        out.append(level[-ID_SIZE:])
    return b"".join(out)


def root_of_level(level: bytes) -> bytes:
    """root_of_level returns the RFC 9162 root of the tree above ``level``, a non-empty level.

    ``level`` is hashes concatenated, 32 bytes each: the leaf hashes (sample
    ids) or any level of an RFC 9162 tree. A block of ``2**k`` leaves that
    starts at a multiple of ``2**k`` is a whole subtree, so the root over many
    leaves is ``root_of_level`` over the roots of such blocks in order (the last
    one may be short): that is how the work is split between processes.
    """
    if len(level) < ID_SIZE or len(level) % ID_SIZE:
        raise InputError(f"a tree level must be one or more {ID_SIZE}-byte hashes")
    while len(level) > ID_SIZE:
        level = _level_up(level)
    return level


# The worker protocol, on the worker's stdin and stdout (integers little-endian):
#   on start, worker -> caller: _HELLO
#   job,      caller -> worker: kind (1 byte) || u64 len(a) || u64 len(b) || a || b
#   reply,    worker -> caller: b"+" || u64 len || result, or b"!" || u64 len || error text
# kind b"L": a is a struct format, b the messages; result hash_messages(a, b).
# kind b"T": a is a tree level, b empty;            result root_of_level(a) (32 bytes).
# The worker exits when its stdin closes.
_HELLO = b"provgate-hash/1\n"
_JOB = struct.Struct("<cQQ")
_REPLY = struct.Struct("<cQ")
_JOBS: dict[bytes, Callable[[bytes, bytes], bytes]] = {
    b"L": hash_messages,
    b"T": lambda a, _b: root_of_level(a),
}

Job = tuple[bytes, bytes, bytes | memoryview]
"""Job is (kind, a, b) as in the worker protocol above."""


def _read(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError(f"pipe closed after {len(data)} of {n} bytes")
    return data


def _serve() -> None:
    """_serve is a worker process's main: it answers jobs until its stdin closes."""
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, never into the replies
    out.write(_HELLO)
    out.flush()
    while head := inp.read(_JOB.size):
        kind, la, lb = _JOB.unpack(head)
        a, b = _read(inp, la), _read(inp, lb)
        try:
            status, body = b"+", _JOBS[kind](a, b)
        except Exception as exc:  # reported to the caller, which raises ProvgateError
            status, body = b"!", f"{type(exc).__name__}: {exc}".encode()
        out.write(_REPLY.pack(status, len(body)))
        out.write(body)
        out.flush()


class _Unavailable(Exception):
    """_Unavailable: no worker process could be started here; the caller hashes in-process."""


class _Worker:
    """_Worker is one worker process; one thread at a time sends it a job and reads the reply.

    Making one starts the process without waiting for it, so the caller can
    prepare its first job meanwhile; the first :meth:`run` waits for its hello.
    """

    def __init__(self) -> None:
        import subprocess
        import tempfile

        if not sys.executable:
            raise _Unavailable("sys.executable is not set")
        # The package root goes on the worker's sys.path, so it imports this very prov_core;
        # -I -S: no PYTHON* variables, current directory, user or site packages in the way.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = (
            f"import sys; sys.path.insert(0, {root!r}); "
            "from prov_core._samples import _serve; _serve()"
        )
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                close_fds=True,
            )
        except (OSError, ValueError) as exc:
            self._stderr.close()
            raise _Unavailable(f"cannot start {sys.executable}: {exc}") from exc
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._in, self._out = self._proc.stdin, self._proc.stdout
        self._ready = False

    def _handshake(self) -> None:
        """_handshake waits for the worker's hello; without it raises _Unavailable."""
        try:
            hello = self._out.read(len(_HELLO))
        except OSError:
            hello = b""
        if hello != _HELLO:
            self.close()
            raise _Unavailable(f"{sys.executable} did not start a hashing worker")
        self._ready = True

    def run(self, kind: bytes, a: bytes, b: bytes | memoryview) -> bytes:
        """run sends one job and returns its result.

        Raises _Unavailable if the worker never started, ProvgateError on any later failure.
        """
        if not self._ready:
            self._handshake()
        try:
            self._in.write(_JOB.pack(kind, len(a), len(b)))
            self._in.write(a)
            self._in.write(b)
            self._in.flush()
            status, n = _REPLY.unpack(_read(self._out, _REPLY.size))
            body = _read(self._out, n)
        except (OSError, ValueError, EOFError) as exc:
            raise ProvgateError(f"a hashing worker process died: {self._death()}") from exc
        if status != b"+":
            raise ProvgateError(f"a hashing worker process failed: {body.decode(errors='replace')}")
        return body

    def _death(self) -> str:
        import subprocess

        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode(errors="replace").strip()
        return f"exit code {code}" + (f": {tail}" if tail else "")

    def close(self) -> None:
        """close ends the worker: its stdin closes, it exits; killed if it does not within 10 s."""
        import subprocess

        for stream in (self._in, self._out):
            with suppress(OSError):
                stream.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()


class HashPool:
    """HashPool runs hashing jobs in ``processes`` worker processes.

    :meth:`submit` takes a function that makes a :data:`Job`. It runs on one of
    the pool's threads, two per worker, so one thread prepares a job (e.g.
    encodes rows with pyarrow, which releases the GIL) while another's job is
    hashed and each worker has its next job waiting. A thread with a job takes
    the next idle worker, sends the job and waits for the reply. The workers
    start with the pool and boot while the first jobs are made; where none can
    start (no usable ``sys.executable``, or it does not answer) jobs are hashed
    on the threads instead, with the same result. A worker that fails or dies
    raises :class:`~prov_core.errors.ProvgateError` from the job's future. Use
    it as a context manager: leaving it ends the workers.
    """

    def __init__(self, processes: int) -> None:
        import queue
        from concurrent.futures import ThreadPoolExecutor

        self._workers: list[_Worker] = []
        self._idle: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()
        for _ in range(processes):
            worker: _Worker | None
            try:
                worker = _Worker()
            except _Unavailable as exc:
                _unavailable(exc)
                worker = None
            else:
                self._workers.append(worker)
            self._idle.put(worker)  # None: a slot that hashes on the thread
        self._threads = ThreadPoolExecutor(
            _THREADS_PER_WORKER * processes, thread_name_prefix="provgate-hash"
        )

    def __enter__(self) -> HashPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, make_job: Callable[[], Job]) -> Future[bytes]:
        """submit runs ``make_job`` on a pool thread, then the job in the next idle worker."""
        return self._threads.submit(self._run, make_job)

    def _run(self, make_job: Callable[[], Job]) -> bytes:
        kind, a, b = make_job()
        worker = self._idle.get()
        try:
            if worker is not None:
                try:
                    return worker.run(kind, a, b)
                except _Unavailable as exc:
                    _unavailable(exc)
                    worker = None
            return _JOBS[kind](a, bytes(b))
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        """close waits for the jobs running, drops those not started, and ends the workers."""
        self._threads.shutdown(wait=True, cancel_futures=True)
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.close()


def _unavailable(exc: _Unavailable) -> None:
    import logging

    logging.getLogger(__name__).info("hashing in this process: %s", exc)


def hash_processes(items: int, threshold: int) -> int:
    """hash_processes returns how many worker processes should hash ``items`` messages.

    0 (hash in this process) below ``threshold`` items or with one CPU; else
    the CPUs this process may use, at most :data:`MAX_HASH_PROCESSES`, or what
    ``$PROVGATE_HASH_PROCESSES`` says (0 or 1: in this process).
    """
    if items < threshold:
        return 0
    env = os.environ.get(HASH_PROCESSES_ENV, "").strip()
    if env:
        if not env.isdigit():
            raise InputError(
                f"{HASH_PROCESSES_ENV}={env!r}: expected a whole number of worker processes "
                "(0 hashes in this process)"
            )
        wanted = int(env)
    else:
        affinity = getattr(os, "sched_getaffinity", None)
        cpus = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
        wanted = min(cpus, MAX_HASH_PROCESSES)
    return wanted if wanted >= 2 else 0


@contextmanager
def hash_pool(items: int, threshold: int) -> Iterator[HashPool | None]:
    """hash_pool yields a HashPool sized by :func:`hash_processes`, or None for in-process."""
    processes = hash_processes(items, threshold)
    if not processes:
        yield None
        return
    with HashPool(processes) as pool:
        yield pool
