"""The Ledger protocol: what every storage backend of the log must do.

A ledger is an append-only list of entries (the bytes of DSSE envelopes) and
the RFC 9162 Merkle tree over them, with a signed checkpoint for every tree
head it has had. Backends are storage only: hashing, proofs and formats live
in :mod:`~prov_core.ledger.merkle` and :mod:`~prov_core.ledger.checkpoint`,
and :class:`BaseLedger` derives proofs and receipts from the few storage
methods. A new backend subclasses :class:`BaseLedger` (or implements
:class:`Ledger` from scratch), sets ``kind``, and runs the shared contract
suite in ``tests/ledger/contract.py``.

The implementer's contract:

- **Construction** takes the log's ``origin`` (the first line of its
  checkpoints) and a :class:`~prov_core.ledger.checkpoint.NoteSigner` that
  signs them. Opening existing storage made for another origin, or storage
  that is not a provgate ledger, raises :class:`~prov_core.errors.ConfigError`
  naming it.
- **append(leaves)** is atomic for the whole batch. It assigns consecutive
  0-based indices, stores the entries, the subtrees they complete
  (:func:`~prov_core.ledger.merkle.new_subtrees`) and a checkpoint signed for
  a size that includes them, and commits all of it or nothing; it returns
  only once that is durable. The :class:`Appended` it returns names the
  indices and that checkpoint. A backend may integrate the appends of several
  concurrent writers in one transaction under one checkpoint (the PostgreSQL
  ledger does, ``docs/scaling.md``): the checkpoint's size is then that of
  the whole batch, and each append's entries stay consecutive. Appends from
  one thread land in the order they were made. Writers in other threads or
  processes must get gap-free, unique, ordered indices: a backend re-reads
  the stored size inside its write transaction and never trusts a cached
  one. An empty batch or a leaf that is not ``bytes`` is an
  :class:`~prov_core.errors.InputError`. An append that raises took nothing
  unless its error says the outcome is unknown.
- **size()** is the size of the latest checkpoint, the committed head.
- **entry(i)**, **entries(start, stop)** return stored bytes as they are, in
  index order; ``entries`` yields ``(index, bytes)`` for the rows actually
  stored, so an auditor sees gaps and extra rows. An index outside
  ``0..size-1`` is an :class:`~prov_core.errors.InputError`.
- **read_subtrees(ids)** is the :class:`~prov_core.ledger.merkle.SubtreeReader`
  of the stored tree; a stored hash that is missing raises
  :class:`~prov_core.errors.LedgerIntegrityError`.
- **checkpoint(size)**, **latest_checkpoint()**, **checkpoints()** return the
  stored signed notes, byte for byte as signed.
- Storage failures raise :class:`~prov_core.errors.LedgerError` (``raise ...
  from`` the driver's exception); nothing else escapes.
- **reserve()** is a context manager that takes the log's write lock and
  yields the index the next append will get. Until that append (the first in
  the block, from the same thread) commits, no other writer can append, so
  the index can be written somewhere the record must name before the record
  exists (a snapshot commit's metadata). Leaving the block without appending
  releases the lock and takes nothing: no gap. Hold it briefly: other
  writers wait (up to their busy timeout) while it is held.
- **close()** releases the storage; ledgers are context managers.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Protocol, Self, runtime_checkable

from prov_core.errors import InputError
from prov_core.ledger import merkle
from prov_core.ledger.checkpoint import CheckpointSigner, format_receipt

__all__ = ["MAX_BATCH", "MAX_LEAF_BYTES", "Appended", "BaseLedger", "Ledger"]

MAX_LEAF_BYTES = 16 * 1024 * 1024
"""MAX_LEAF_BYTES bounds one entry: an envelope is kilobytes, never megabytes."""
MAX_BATCH = 1_000_000
"""MAX_BATCH bounds the leaves of one append (one transaction)."""


@dataclass(frozen=True, slots=True)
class Appended:
    """Appended reports one append: its ``count`` entries and the checkpoint they landed under.

    The entries are at ``first_index .. first_index + count - 1``;
    ``checkpoint_note`` is the signed checkpoint of tree ``size``, the first
    checkpoint that includes them (``size >= first_index + count``: larger when
    the backend integrated other writers' appends in the same batch).
    """

    first_index: int
    size: int
    checkpoint_note: bytes
    count: int

    @property
    def indices(self) -> range:
        """indices is the range of indices the append assigned."""
        return range(self.first_index, self.first_index + self.count)


@runtime_checkable
class Ledger(Protocol):
    """Ledger is the append-only, tamper-evident log (the contract is the module docstring)."""

    kind: ClassVar[str]
    origin: str

    def append(self, leaves: Sequence[bytes]) -> Appended: ...
    def size(self) -> int: ...
    def entry(self, index: int) -> bytes: ...
    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]: ...
    def read_subtrees(self, ids: Sequence[tuple[int, int]]) -> list[bytes]: ...
    def checkpoint(self, size: int) -> bytes: ...
    def latest_checkpoint(self) -> bytes | None: ...
    def checkpoints(self) -> Iterator[tuple[int, bytes]]: ...
    def prove_inclusion(self, index: int, size: int | None = None) -> list[bytes]: ...
    def prove_consistency(self, old: int, new: int | None = None) -> list[bytes]: ...
    def receipt(self, index: int, size: int | None = None) -> bytes: ...
    def reserve(self) -> AbstractContextManager[int]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BaseLedger(abc.ABC):
    """BaseLedger derives proofs, receipts and the context manager from the storage methods."""

    kind: ClassVar[str] = ""
    origin: str
    note_signer: CheckpointSigner

    @abc.abstractmethod
    def append(self, leaves: Sequence[bytes]) -> Appended:
        """append adds a batch of entries in one transaction (see the module docstring)."""

    @abc.abstractmethod
    def size(self) -> int:
        """size returns the size of the latest checkpoint."""

    @abc.abstractmethod
    def entry(self, index: int) -> bytes:
        """entry returns the stored bytes of entry ``index``."""

    @abc.abstractmethod
    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        """entries yields the stored ``(index, bytes)`` rows, start <= index < stop, in order."""

    @abc.abstractmethod
    def read_subtrees(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        """read_subtrees returns the stored hashes of the complete subtrees ``(level, n)``."""

    @abc.abstractmethod
    def checkpoint(self, size: int) -> bytes:
        """checkpoint returns the stored signed checkpoint note for tree ``size``."""

    @abc.abstractmethod
    def latest_checkpoint(self) -> bytes | None:
        """latest_checkpoint returns the newest checkpoint note, or None for an empty log."""

    @abc.abstractmethod
    def checkpoints(self) -> Iterator[tuple[int, bytes]]:
        """checkpoints yields every stored ``(size, note)`` in increasing size."""

    @abc.abstractmethod
    def reserve(self) -> AbstractContextManager[int]:
        """reserve holds the write lock and yields the next index (see the module docstring)."""

    @abc.abstractmethod
    def close(self) -> None:
        """close releases the storage; later calls fail with LedgerError."""

    def prove_inclusion(self, index: int, size: int | None = None) -> list[bytes]:
        """prove_inclusion returns the RFC 9162 inclusion proof of entry ``index`` at ``size``.

        ``size`` defaults to the current size; it must be <= the current size.
        """
        return merkle.prove_inclusion(index, self._size_arg(size), self)

    def prove_consistency(self, old: int, new: int | None = None) -> list[bytes]:
        """prove_consistency returns the RFC 9162 consistency proof from ``old`` to ``new``."""
        return merkle.prove_consistency(old, self._size_arg(new), self)

    def receipt(self, index: int, size: int | None = None) -> bytes:
        """receipt returns a tlog-proof@v1 for entry ``index`` against the checkpoint ``size``."""
        size = self._size_arg(size)
        if not 0 <= index < size:
            raise InputError(f"no entry {index} in the log of size {size}")
        note = self.checkpoint(size)
        return format_receipt(index, merkle.prove_inclusion(index, size, self), note)

    def _size_arg(self, size: int | None) -> int:
        current = self.size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise InputError(f"tree size {size} is outside 0..{current} of log {self.origin}")
        return size

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_leaves(leaves: Sequence[bytes]) -> list[bytes]:
    """check_leaves returns the batch as a list, or raises InputError for an unusable one."""
    if isinstance(leaves, bytes | bytearray | str):  # type: ignore[unreachable]
        raise InputError("append takes a sequence of entries, not one bytes value")
    batch = list(leaves)
    if not batch:
        raise InputError("append needs at least one entry")
    if len(batch) > MAX_BATCH:
        raise InputError(f"append takes at most {MAX_BATCH} entries at once")
    for i, leaf in enumerate(batch):
        if type(leaf) is not bytes:
            raise InputError(f"entry {i} of the batch is {type(leaf).__name__}, not bytes")
        if len(leaf) > MAX_LEAF_BYTES:
            raise InputError(f"entry {i} of the batch is larger than {MAX_LEAF_BYTES} bytes")
    return batch
