"""RFC 9162 Merkle trees: hashing, proofs and their verification.

The vocabulary, after Go's ``golang.org/x/mod/sumdb/tlog``:

- A *leaf hash* is ``SHA-256(0x00 || data)`` and a *node hash* is
  ``SHA-256(0x01 || left || right)`` (RFC 9162 §2.1.1). Every hash is 32 bytes.
- A *subtree* ``(level, n)`` is the complete subtree of ``2**level`` leaves
  covering leaf indices ``[n << level, (n + 1) << level)``; level 0 is the leaf
  hashes themselves. A log of size ``s`` has stored every complete subtree
  that fits in ``[0, s)`` and no other: appending leaf ``i`` creates the
  subtrees listed by :func:`new_subtrees`.
- Storage hides behind :class:`SubtreeReader`, one method that returns the
  hashes of the subtrees asked for. Every function here that needs stored
  hashes asks for all of them in one call, so a database backend answers a
  proof with one round trip.

Proving functions raise :class:`~prov_core.errors.InputError` when asked for
something that cannot exist (an index outside the tree). Checking functions
return ``None`` or raise :class:`~prov_core.errors.ProofError`; a malformed
request (index >= size, old size > new size) is a ``ProofError`` too, with a
message that starts ``invalid arguments:`` so it cannot be mistaken for a
proof that was checked and failed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Protocol

from prov_core.errors import InputError, ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "MemoryTree",
    "SubtreeReader",
    "check_consistency",
    "check_inclusion",
    "leaf_hash",
    "new_subtrees",
    "node_hash",
    "prove_consistency",
    "prove_inclusion",
    "root_of",
    "tree_root",
]

_sha256 = hashlib.sha256

HASH_SIZE = 32
"""HASH_SIZE is the size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT = _sha256(b"").digest()
"""EMPTY_ROOT is the root of the empty tree: SHA-256 of no bytes (RFC 9162 §2.1.1)."""


def leaf_hash(data: bytes) -> bytes:
    """leaf_hash returns the hash of a leaf holding ``data``: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()  # RFC 9162 §2.1.1: MTH({d(0)}) = HASH(0x00 || d(0))


def node_hash(left: bytes, right: bytes) -> bytes:
    """node_hash returns the hash of an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(
        b"\x01" + left + right
    ).digest()  # RFC 9162 §2.1.1: HASH(0x01 || MTH(l) || MTH(r))


class SubtreeReader(Protocol):
    """SubtreeReader is the storage a tree is read from.

    ``read_subtrees(ids)`` returns, in order, the hash of each complete subtree
    ``(level, n)`` in ``ids``. It is only asked for subtrees that exist in the
    tree it stores. A reader that cannot return one of them must raise (a
    :class:`~prov_core.errors.ProvgateError`), never return a shorter list.
    """

    def read_subtrees(self, ids: Sequence[tuple[int, int]]) -> list[bytes]: ...


def _split(n: int) -> int:
    """_split returns the largest power of two smaller than n, for n >= 2 (RFC 9162 §2.1.1: k)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_ids(lo: int, hi: int, out: list[tuple[int, int]]) -> int:
    """_range_ids appends to out the complete subtrees whose hashes make MTH(D[lo:hi]).

    The range must be one that the RFC 9162 recursion produces: ``lo`` a
    multiple of the largest power of two <= ``hi - lo``. Those subtrees are the
    binary decomposition of ``hi - lo``, largest first. It returns how many ids
    it appended.
    """
    count = 0
    start = lo
    width = hi - lo
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
            count += 1
    return count


def _fold(hashes: Sequence[bytes]) -> bytes:
    """_fold returns the root of consecutive complete subtrees, largest (leftmost) first.

    MTH(D[lo:hi]) splits at the largest power of two, so the rightmost, smallest
    subtrees are combined first.
    """
    root = hashes[-1]
    for h in reversed(hashes[:-1]):
        root = node_hash(h, root)
    return root


def _ranges_hashes(ranges: Sequence[tuple[int, int]], reader: SubtreeReader) -> list[bytes]:
    """_ranges_hashes returns MTH(D[lo:hi]) for each range, reading all stored hashes at once."""
    ids: list[tuple[int, int]] = []
    counts = [_range_ids(lo, hi, ids) for lo, hi in ranges]
    hashes = reader.read_subtrees(ids) if ids else []
    if len(hashes) != len(ids):
        raise ProofError(f"storage returned {len(hashes)} hashes for {len(ids)} subtrees")
    out: list[bytes] = []
    pos = 0
    for c in counts:
        out.append(_fold(hashes[pos : pos + c]))
        pos += c
    return out


def new_subtrees(
    index: int, leaf_hash: bytes, reader: SubtreeReader
) -> list[tuple[int, int, bytes]]:
    """new_subtrees returns the complete subtrees that appending leaf ``index`` creates.

    The list starts with ``(0, index, leaf_hash)`` and continues up the tree:
    when ``index`` ends in ``k`` one bits, the new leaf completes ``k`` more
    subtrees, each combining a stored left sibling with the subtree just made.
    The reader is asked for those ``k`` siblings, which must already be stored
    (the tree has size ``index``).
    """
    if index < 0:
        raise InputError(f"invalid leaf index {index}: must be >= 0")
    siblings: list[tuple[int, int]] = []
    n, level = index, 0
    while n & 1:
        siblings.append((level, n - 1))
        n >>= 1
        level += 1
    left = reader.read_subtrees(siblings) if siblings else []
    if len(left) != len(siblings):
        raise ProofError(f"storage returned {len(left)} hashes for {len(siblings)} subtrees")
    out = [(0, index, leaf_hash)]
    h = leaf_hash
    for (lvl, sib_n), sib in zip(siblings, left, strict=True):
        h = node_hash(sib, h)
        out.append((lvl + 1, sib_n >> 1, h))
    return out


def tree_root(size: int, reader: SubtreeReader) -> bytes:
    """tree_root returns MTH(D[0:size]), the root of the first ``size`` leaves.

    It reads the complete subtrees of the binary decomposition of ``size``
    (one per one bit) and folds them right to left. ``tree_root(0, r)`` is
    :data:`EMPTY_ROOT` and reads nothing.
    """
    if size < 0:
        raise InputError(f"invalid tree size {size}: must be >= 0")
    if size == 0:
        return EMPTY_ROOT  # RFC 9162 §2.1.1: MTH({}) = HASH()
    return _ranges_hashes([(0, size)], reader)[0]


def prove_inclusion(index: int, size: int, reader: SubtreeReader) -> list[bytes]:
    """prove_inclusion returns PATH(index, D[0:size]), leaf sibling first (RFC 9162 §2.1.3.1).

    It raises :class:`~prov_core.errors.InputError` unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise InputError(f"no leaf {index} in a tree of size {size}: need 0 <= index < size")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:  # RFC 9162 §2.1.3.1: PATH(m, D[n]) for n > 1
        k = _split(hi - lo)
        if index < lo + k:  # m < k: PATH(m, D[0:k]) : MTH(D[k:n])
            ranges.append((lo + k, hi))
            hi = lo + k
        else:  # m >= k: PATH(m - k, D[k:n]) : MTH(D[0:k])
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()  # the recursion emits the deepest sibling first
    return _ranges_hashes(ranges, reader)


def prove_consistency(old: int, new: int, reader: SubtreeReader) -> list[bytes]:
    """prove_consistency returns PROOF(old, D[0:new]) (RFC 9162 §2.1.4.1).

    It raises :class:`~prov_core.errors.InputError` unless ``0 < old <= new``;
    the proof between equal sizes is empty.
    """
    if not 0 < old <= new:
        raise InputError(f"no consistency proof from size {old} to size {new}: need 0 < old <= new")
    ranges: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, new, old, True
    while True:  # RFC 9162 §2.1.4.1: SUBPROOF(m, D[lo:hi], b)
        n = hi - lo
        if m == n:
            if not complete:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
                ranges.append((lo, hi))
            break  # SUBPROOF(m, D[m], true) = {}
        k = _split(n)
        if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            ranges.append((lo + k, hi))
            hi = lo + k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            ranges.append((lo, lo + k))
            lo += k
            m -= k
            complete = False
    ranges.reverse()
    return _ranges_hashes(ranges, reader)


def check_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """check_inclusion verifies that ``proof`` proves leaf ``index`` in the tree ``(size, root)``.

    It returns None or raises :class:`~prov_core.errors.ProofError`
    (RFC 9162 §2.1.3.2). Arguments that cannot describe a leaf of the tree
    (``index >= size``, negative numbers) raise ProofError whose message starts
    ``invalid arguments:``.
    """
    if index < 0 or size < 0 or index >= size:  # RFC 9162 §2.1.3.2 step 1
        raise ProofError(f"invalid arguments: leaf index {index} is not in a tree of size {size}")
    if len(leaf_hash) != HASH_SIZE or len(root) != HASH_SIZE:
        raise ProofError(f"leaf hash and root must be {HASH_SIZE} bytes")
    fn, sn = index, size - 1  # step 2
    r = leaf_hash  # step 3
    for p in proof:  # step 4
        if len(p) != HASH_SIZE:
            raise ProofError(f"inclusion proof has a {len(p)}-byte hash, want {HASH_SIZE}")
        if sn == 0:  # step 4a
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:  # step 4b
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # step 4c
        sn >>= 1
    if sn != 0:  # step 5
        raise ProofError("inclusion proof is shorter than the path to the root")
    if not hmac.compare_digest(r, root):
        raise ProofError(
            f"inclusion proof for leaf {index} does not lead to the root of size {size}"
        )


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def check_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """check_consistency verifies that tree (new_size, new_root) extends (old_size, old_root).

    It returns None or raises :class:`~prov_core.errors.ProofError`
    (RFC 9162 §2.1.4.2). Equal sizes need an empty proof and equal roots.
    ``old_size > new_size``, negative sizes and ``old_size == 0`` (every tree
    extends the empty one, so such a proof says nothing and is refused, as
    transparency-dev/merkle does) raise ProofError whose message starts
    ``invalid arguments:``.
    """
    if old_size < 0 or new_size < 0 or old_size > new_size:
        raise ProofError(
            f"invalid arguments: old size {old_size} and new size {new_size}: need old <= new"
        )
    if old_size == 0:
        raise ProofError(
            "invalid arguments: a consistency proof from the empty tree proves nothing"
        )
    if old_size == new_size:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if not hmac.compare_digest(old_root, new_root):
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return
    if not proof:  # RFC 9162 §2.1.4.2 step 1
        raise ProofError("consistency proof is empty")
    for p in proof:
        if len(p) != HASH_SIZE:
            raise ProofError(f"consistency proof has a {len(p)}-byte hash, want {HASH_SIZE}")
    path = list(proof)
    if _is_pow2(old_size):  # step 2
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:  # step 6a
            raise ProofError("consistency proof is longer than needed")
        if fn & 1 or fn == sn:  # step 6b
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # step 6c
        sn >>= 1
    if sn != 0:  # step 7
        raise ProofError("consistency proof is shorter than needed")
    if not hmac.compare_digest(fr, old_root):
        raise ProofError(f"consistency proof does not lead to the root of size {old_size}")
    if not hmac.compare_digest(sr, new_root):
        raise ProofError(f"consistency proof does not lead to the root of size {new_size}")


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """root_of returns MTH of the leaves whose hashes are given, computed level by level.

    An odd node at the end of a level moves up unchanged, which gives exactly
    the RFC 9162 tree (the left subtree is always the largest power of two).
    This is the fast path for large per-sample trees; it stores nothing.
    """
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    sha = _sha256
    while len(level) > 1:
        nxt = [
            sha(b"\x01" + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)
        ]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class Frontier:
    """Frontier is the right edge (compact range) of a tree: the roots of its complete subtrees.

    It holds one hash per one bit of the size, so :meth:`append` and
    :meth:`root` cost O(log n). Feeding every leaf hash of a log in order gives
    the root at every size in one pass, which is how an auditor checks every
    checkpoint of a log.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """__init__ makes a frontier of ``size`` leaves from its subtree hashes, largest first."""
        if size < 0 or len(hashes) != size.bit_count():
            raise InputError(
                f"a frontier of size {size} needs {max(size, 0).bit_count()} hashes, "
                f"got {len(hashes)}"
            )
        self._size = size
        self._hashes = list(hashes)

    @classmethod
    def from_reader(cls, size: int, reader: SubtreeReader) -> Frontier:
        """from_reader loads the frontier of a stored tree of ``size`` leaves in one read."""
        ids: list[tuple[int, int]] = []
        _range_ids(0, size, ids)
        hashes = reader.read_subtrees(ids) if ids else []
        return cls(size, hashes)

    @property
    def size(self) -> int:
        """size is the number of leaves appended so far."""
        return self._size

    def hashes(self) -> list[bytes]:
        """hashes returns the hashes of the complete subtrees of the right edge, largest first."""
        return list(self._hashes)

    def copy(self) -> Frontier:
        """copy returns an independent frontier with the same contents."""
        return Frontier(self._size, self._hashes)

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """append adds a leaf and returns the subtrees it completes, like :func:`new_subtrees`."""
        index = self._size
        out = [(0, index, leaf_hash)]
        h = leaf_hash
        n, level = index, 0
        stack = self._hashes
        while n & 1:
            h = node_hash(stack.pop(), h)
            n >>= 1
            level += 1
            out.append((level, n, h))
        stack.append(h)
        self._size = index + 1
        return out

    def append_stored(self, leaf_hash: bytes) -> bytes:
        """append_stored adds a leaf and returns what its entry stores (``entries.hashes``).

        The leaf hash, then the hash of each subtree the leaf completes, level
        by level, concatenated: subtree ``(L, n)`` is bytes ``32 L .. 32 L + 31``
        of the entry of leaf ``((n + 1) << L) - 1``.
        """
        created = self.append(leaf_hash)
        return leaf_hash if len(created) == 1 else b"".join([c[2] for c in created])

    def root(self) -> bytes:
        """root returns MTH of all leaves appended so far (:data:`EMPTY_ROOT` when none)."""
        if not self._hashes:
            return EMPTY_ROOT
        return _fold(self._hashes)


class MemoryTree:
    """MemoryTree is a tree held in memory: every complete subtree, level by level.

    It is a :class:`SubtreeReader` for itself. :meth:`extend` hashes a batch
    one level at a time, so a tree of a million leaves builds in about a
    second; proofs are then O(log n).
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        """__init__ makes a tree of the given leaf hashes (each 32 bytes)."""
        self._levels: list[list[bytes]] = [[]]
        self.extend(leaf_hashes)

    @classmethod
    def from_data(cls, leaves: Iterable[bytes]) -> MemoryTree:
        """from_data makes a tree whose leaves hold the given bytes (see :func:`leaf_hash`)."""
        return cls([leaf_hash(d) for d in leaves])

    @property
    def size(self) -> int:
        """size is the number of leaves."""
        return len(self._levels[0])

    def append(self, leaf_hash: bytes) -> int:
        """append adds one leaf hash and returns its index."""
        index = self.size
        self.extend((leaf_hash,))
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """extend adds leaf hashes in order, then the subtrees they complete, level by level."""
        batch = list(leaf_hashes)
        if not all(type(h) is bytes and len(h) == HASH_SIZE for h in batch):
            raise InputError(f"leaf hashes must be {HASH_SIZE}-byte bytes values")
        levels = self._levels
        levels[0].extend(batch)
        sha = _sha256
        lvl = 0
        while len(levels[lvl]) >= 2:
            below = levels[lvl]
            if len(levels) == lvl + 1:
                levels.append([])
            above = levels[lvl + 1]
            start, stop = len(above), len(below) // 2
            if stop > start:
                left = below[2 * start : 2 * stop : 2]
                right = below[2 * start + 1 : 2 * stop : 2]
                above.extend(
                    [sha(b"\x01" + a + b).digest() for a, b in zip(left, right, strict=True)]
                )
            lvl += 1

    def read_subtrees(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        """read_subtrees returns the stored hashes of complete subtrees (level, n)."""
        levels = self._levels
        try:
            out = []
            for level, n in ids:
                if level < 0 or n < 0:
                    raise IndexError(n)
                out.append(levels[level][n])
        except IndexError:
            raise InputError(
                f"the tree of size {self.size} has no subtree among {list(ids)}"
            ) from None
        return out

    def leaf_hash(self, index: int) -> bytes:
        """leaf_hash returns the hash of leaf ``index``."""
        if not 0 <= index < self.size:
            raise InputError(f"no leaf {index} in a tree of size {self.size}")
        return self._levels[0][index]

    def root(self, size: int | None = None) -> bytes:
        """root returns MTH of the first ``size`` leaves (all of them by default)."""
        return tree_root(self._size_arg(size), self)

    def prove_inclusion(self, index: int, size: int | None = None) -> list[bytes]:
        """prove_inclusion returns the inclusion proof of leaf ``index`` in the tree of ``size``."""
        return prove_inclusion(index, self._size_arg(size), self)

    def prove_consistency(self, old: int, new: int | None = None) -> list[bytes]:
        """prove_consistency returns the consistency proof from size ``old`` to ``new``."""
        return prove_consistency(old, self._size_arg(new), self)

    def _size_arg(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise InputError(f"tree size {size} is outside 0..{self.size}")
        return size
