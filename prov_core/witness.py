"""Witnessing the log: keep a checkpoint elsewhere, and check later that the log still extends it.

Every append leaves a signed checkpoint, so the ledger checks itself against
its own history; what it cannot catch alone is a history rewritten
together with its checkpoints by someone holding the signing key (or the
newest entries deleted with theirs). A *witness* holds a copy of a
checkpoint outside the ledger's reach — a file on another disk, in a
bucket, in a repository — and on every later run:

1. verifies the stored checkpoint's signature (the log's own note keys) and
   that it is for this log;
2. asks the log for an RFC 9162 consistency proof from the stored size to
   its current size and checks it against both signed roots: a log that
   shrank, or whose first N entries are no longer the ones the stored
   checkpoint committed to, fails here, whoever made the new checkpoints;
3. only then replaces the stored copy with the latest checkpoint (atomically).

A failed check never overwrites the witnessed checkpoint: it stays the
evidence. Run ``provgate log witness FILE`` on a schedule (cron, a CI job,
an orchestrator sensor): that is the periodic, out-of-band checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prov_core._fs import write_atomic
from prov_core.errors import FormatError, InputError, ProofError, VerificationError
from prov_core.ledger.checkpoint import open_checkpoint
from prov_core.ledger.merkle import check_consistency

if TYPE_CHECKING:
    from prov_core.ledger.base import Ledger
    from prov_core.ledger.checkpoint import NoteVerifier

__all__ = ["WitnessResult", "witness"]

MAX_WITNESS_BYTES = 64 * 1024
"""MAX_WITNESS_BYTES bounds the witness file read (a checkpoint note is a few hundred bytes)."""


@dataclass(frozen=True)
class WitnessResult:
    """WitnessResult says what the witness found and did."""

    status: Literal["created", "advanced", "unchanged"]
    path: Path
    old_size: int | None
    new_size: int
    root: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "path": str(self.path),
            "old_size": self.old_size,
            "new_size": self.new_size,
            "root": self.root,
        }


def witness(ledger: Ledger, verifiers: Sequence[NoteVerifier], path: str | Path) -> WitnessResult:
    """witness checks the log against the checkpoint stored at ``path``, then advances it.

    Raises :class:`~prov_core.errors.VerificationError` (the stored file is
    left as it was) when the log no longer extends the stored checkpoint, or
    the stored checkpoint is not a validly signed checkpoint of this log;
    :class:`~prov_core.errors.InputError` for an empty log or an unusable path.
    """
    target = Path(path)
    latest = ledger.latest_checkpoint()
    if latest is None:
        raise InputError("the log is empty: there is no checkpoint to witness yet")
    new = open_checkpoint(latest, verifiers, origin=ledger.origin)
    if target.is_dir():
        raise InputError(f"witness path {target} is a directory; give a file path")
    if not target.exists():
        _store(target, latest)
        return WitnessResult("created", target, None, new.size, new.root.hex())
    try:
        with open(target, "rb") as f:
            stored = f.read(MAX_WITNESS_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read witness file {target}: {exc.strerror}") from exc
    if len(stored) > MAX_WITNESS_BYTES:
        raise VerificationError(f"witness file {target} is not a checkpoint (too large)")
    try:
        old = open_checkpoint(stored, verifiers, origin=ledger.origin)
    except (VerificationError, FormatError) as exc:
        raise VerificationError(
            f"witness file {target} does not hold a validly signed checkpoint of "
            f"{ledger.origin}: {exc}"
        ) from exc
    if old.size > new.size:
        raise VerificationError(
            f"the log shrank: {target} witnessed size {old.size}, the log now has "
            f"{new.size} entries (entries and their checkpoints were deleted)"
        )
    if old.size == new.size:
        if old.root != new.root:
            raise VerificationError(
                f"the log was rewritten: at size {new.size} its root is {new.root.hex()}, "
                f"but {target} witnessed {old.root.hex()}"
            )
        return WitnessResult("unchanged", target, old.size, new.size, new.root.hex())
    try:
        check_consistency(
            old.size, new.size, old.root, new.root, ledger.prove_consistency(old.size, new.size)
        )
    except ProofError as exc:
        raise VerificationError(
            f"the log was rewritten: its tree of size {new.size} does not extend the tree of "
            f"size {old.size} witnessed in {target} ({exc})"
        ) from exc
    _store(target, latest)
    return WitnessResult("advanced", target, old.size, new.size, new.root.hex())


def _store(target: Path, note: bytes) -> None:
    try:
        write_atomic(target, note, mode=0o644)
    except OSError as exc:
        raise InputError(f"cannot write witness file {target}: {exc.strerror}") from exc
