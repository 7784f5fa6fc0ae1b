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
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any

from prov_core.errors import FormatError, InputError, ProofError

if TYPE_CHECKING:
    from prov_core.ledger import merkle

# prov_core.ledger is imported on first use, not here: importing the package loads the
# whole ledger (checkpoints, cryptography), and ``provgate digest`` needs none of it.

__all__ = [
    "FILE_SAMPLE_ENCODING",
    "ID_ALGORITHM",
    "ID_SIZE",
    "MembershipProof",
    "Neighbour",
    "NonMembershipProof",
    "SampleProof",
    "SampleSet",
    "check_sample_proof",
    "file_id_of_digest",
    "prove_sample",
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
    from prov_core.ledger import merkle

    return merkle.root_of(_split(sorted_ids))


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
