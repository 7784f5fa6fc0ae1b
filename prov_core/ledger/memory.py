"""An in-memory ledger: the same contract as SQLite, for unit tests of callers.

Nothing persists; one process only. It is thread-safe.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

from prov_core.errors import InputError, LedgerError, LedgerIntegrityError
from prov_core.ledger.base import Appended, BaseLedger, check_leaves
from prov_core.ledger.checkpoint import Checkpoint, CheckpointSigner, checkpoint_body
from prov_core.ledger.merkle import Frontier, leaf_hash

__all__ = ["MemoryLedger"]


class MemoryLedger(BaseLedger):
    """MemoryLedger keeps entries, subtree hashes and checkpoints in dicts."""

    kind = "memory"

    def __init__(self, origin: str, note_signer: CheckpointSigner) -> None:
        """__init__ makes an empty log for ``origin`` whose checkpoints ``note_signer`` signs."""
        Checkpoint(origin, 0, bytes(32))  # validates the origin
        self.origin = origin
        self.note_signer = note_signer
        self._lock = threading.RLock()  # reentrant: append() inside reserve()
        self._entries: dict[int, bytes] = {}
        self._subtrees: dict[tuple[int, int], bytes] = {}
        self._checkpoints: dict[int, bytes] = {}
        self._frontier = Frontier()
        self._closed = False

    def append(self, leaves: Sequence[bytes]) -> Appended:
        batch = check_leaves(leaves)
        with self._lock:
            self._check_open()
            frontier = self._frontier.copy()
            first = frontier.size
            new: dict[tuple[int, int], bytes] = {}
            for leaf in batch:
                for level, n, h in frontier.append(leaf_hash(leaf)):
                    new[level, n] = h
            size = frontier.size
            note = self.note_signer.sign_note(checkpoint_body(self.origin, size, frontier.root()))
            # Commit: nothing above can fail half-way through these updates.
            self._entries.update(zip(range(first, size), batch, strict=True))
            self._subtrees.update(new)
            self._checkpoints[size] = note
            self._frontier = frontier
        return Appended(first, size, note, len(batch))

    @contextlib.contextmanager
    def reserve(self) -> Iterator[int]:
        """reserve holds the lock, so the next append (from this thread) gets the index yielded."""
        with self._lock:
            self._check_open()
            yield self._frontier.size

    def size(self) -> int:
        self._check_open()
        return self._frontier.size

    def entry(self, index: int) -> bytes:
        size = self.size()
        if not 0 <= index < size:
            raise InputError(f"no entry {index} in log {self.origin} of size {size}")
        try:
            return self._entries[index]
        except KeyError:
            raise LedgerIntegrityError(f"entry {index} is missing from the store") from None

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        self._check_open()
        with self._lock:
            rows = sorted(self._entries.items())
        for index, data in rows:
            if index >= start and (stop is None or index < stop):
                yield index, data

    def read_subtrees(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        self._check_open()
        try:
            return [self._subtrees[level, n] for level, n in ids]
        except KeyError as exc:
            raise LedgerIntegrityError(f"subtree {exc.args[0]} is missing from the store") from None

    def checkpoint(self, size: int) -> bytes:
        self._check_open()
        try:
            return self._checkpoints[size]
        except KeyError:
            raise InputError(f"log {self.origin} has no checkpoint at size {size}") from None

    def latest_checkpoint(self) -> bytes | None:
        self._check_open()
        return self._checkpoints.get(self._frontier.size)

    def checkpoints(self) -> Iterator[tuple[int, bytes]]:
        self._check_open()
        with self._lock:
            rows = sorted(self._checkpoints.items())
        yield from rows

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerError(f"ledger {self.origin} is closed")
