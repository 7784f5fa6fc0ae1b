"""Structural audit of a whole log: do the stored entries match the signed checkpoints?

This checks the log, not the records in it (signatures of envelopes are
another module's job). :func:`audit_log` returns an :class:`AuditReport`
whose problems each name the entry index or checkpoint size and what is
wrong. It detects and names edited, deleted, inserted, swapped and
renumbered entries, entries no checkpoint covers, checkpoints with a bad or
unknown signature, checkpoints whose root does not match the stored entries,
and stored subtree hashes that do not match their children.

How it names entries precisely:

1. Verify every stored checkpoint's signature and parse it. Only checkpoints
   that verify are trusted.
2. Check the stored subtree table against the trusted checkpoints: rebuild
   the tree from its level-0 hashes (a :class:`~prov_core.ledger.merkle.Frontier`)
   and compare the root at every checkpoint size and every stored interior
   node. Up to the largest size where every root so far matches, the level-0
   hashes are exactly the leaf hashes the log signed.
3. One pass over the stored rows: re-hash each entry, feed a second
   frontier (the roots of the stored leaves at every checkpoint size), and
   compare each leaf hash with the committed one. A mismatch is explained by
   its neighbours: an entry holding its partner's committed hash is a swap, a
   run of entries each holding the next one's is a deletion with renumbering,
   the previous one's an insertion; anything else is an edit.
4. Where step 2 found no trustworthy subtree hashes, fall back to naming the
   first checkpoint whose root the stored entries do not reproduce.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prov_core.errors import FormatError, LedgerIntegrityError, VerificationError
from prov_core.ledger.base import Ledger
from prov_core.ledger.checkpoint import (
    Checkpoint,
    NoteSignatureError,
    NoteVerifier,
    UnknownNoteKeyError,
    open_note,
)
from prov_core.ledger.merkle import Frontier, leaf_hash

__all__ = ["AuditReport", "Problem", "audit_log"]

_CHUNK = 4096


@dataclass(frozen=True, slots=True)
class Problem:
    """Problem is one thing wrong with a log.

    ``kind`` is one of: ``bad-signature``, ``unknown-key``,
    ``malformed-checkpoint``, ``wrong-checkpoint`` (another origin or size),
    ``root-mismatch``, ``subtree-mismatch``, ``edited``, ``swapped``,
    ``deleted``, ``inserted``, ``missing``, ``out-of-order``, ``uncovered``.
    ``index`` names the entry (``other_index`` its swap partner), ``size``
    the checkpoint.
    """

    kind: str
    message: str
    index: int | None = None
    size: int | None = None
    other_index: int | None = None


@dataclass(slots=True)
class AuditReport:
    """AuditReport is the outcome of :func:`audit_log`; ``ok`` when there are no problems."""

    origin: str
    verified_size: int
    entries: int
    checkpoints: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """ok is True when the audit found nothing wrong."""
        return not self.problems

    def raise_for_problems(self) -> None:
        """raise_for_problems raises LedgerIntegrityError listing the problems, if any."""
        if self.problems:
            lines = "\n".join(f"- {p.message}" for p in self.problems)
            raise LedgerIntegrityError(
                f"log {self.origin}: {len(self.problems)} problem(s):\n{lines}"
            )


@dataclass(slots=True)
class _Mismatch:
    index: int
    stored: bytes
    committed: bytes
    down: bool  # holds the committed hash of index + 1
    up: bool  # holds the committed hash of index - 1


class _Committed:
    """_Committed reads the committed level-0 hashes below ``limit`` in chunks."""

    def __init__(self, ledger: Ledger, limit: int) -> None:
        self._ledger = ledger
        self.limit = limit
        self._base = -1
        self._chunk: list[bytes] = []

    def get(self, i: int) -> bytes | None:
        if not 0 <= i < self.limit:
            return None
        base = i - i % _CHUNK
        if base != self._base:
            stop = min(base + _CHUNK, self.limit)
            self._chunk = self._ledger.read_subtrees([(0, n) for n in range(base, stop)])
            self._base = base
        return self._chunk[i - base]


def _verify_checkpoints(
    ledger: Ledger, verifiers: Sequence[NoteVerifier], problems: list[Problem]
) -> tuple[dict[int, bytes], int]:
    """_verify_checkpoints returns {size: root} of the verified checkpoints and the count stored."""
    trusted: dict[int, bytes] = {}
    count = 0
    for size, note in ledger.checkpoints():
        count += 1
        try:
            text, _ = open_note(note, verifiers)
            cp = Checkpoint.parse(text)
        except NoteSignatureError as exc:
            problems.append(
                Problem(
                    "bad-signature",
                    f"checkpoint {size}: signature by {exc.name} ({exc.key_id:08x}) is invalid",
                    size=size,
                )
            )
            continue
        except UnknownNoteKeyError as exc:
            keys = ", ".join(f"{n} ({k:08x})" for n, k in exc.keys)
            problems.append(
                Problem(
                    "unknown-key",
                    f"checkpoint {size}: signed only by unknown key {keys}",
                    size=size,
                )
            )
            continue
        except (FormatError, VerificationError) as exc:
            problems.append(Problem("malformed-checkpoint", f"checkpoint {size}: {exc}", size=size))
            continue
        if cp.origin != ledger.origin or cp.size != size:
            problems.append(
                Problem(
                    "wrong-checkpoint",
                    f"checkpoint stored at size {size} is for {cp.origin!r} at size {cp.size}",
                    size=size,
                )
            )
            continue
        trusted[size] = cp.root
    return trusted, count


def _check_subtrees(
    ledger: Ledger, trusted: dict[int, bytes], head: int, problems: list[Problem]
) -> int:
    """_check_subtrees returns the largest size up to which stored level-0 hashes are committed."""
    sizes = sorted(trusted)
    next_cp = 0
    trusted_upto = 0
    frontier = Frontier()
    bad_nodes = 0
    try:
        for base in range(0, head, _CHUNK):
            stop = min(base + _CHUNK, head)
            leaves = ledger.read_subtrees([(0, n) for n in range(base, stop)])
            created: list[tuple[int, int, bytes]] = []
            for h in leaves:
                created += [c for c in frontier.append(h) if c[0] > 0]
                while next_cp < len(sizes) and sizes[next_cp] == frontier.size:
                    size = sizes[next_cp]
                    next_cp += 1
                    if frontier.root() != trusted[size]:
                        problems.append(
                            Problem(
                                "subtree-mismatch",
                                f"checkpoint {size}: the stored subtree hashes do not reproduce "
                                "its root",
                                size=size,
                            )
                        )
                        return trusted_upto
                    trusted_upto = size
            stored = ledger.read_subtrees([(lvl, n) for lvl, n, _ in created])
            for (lvl, n, h), s in zip(created, stored, strict=True):
                if h != s:
                    bad_nodes += 1
                    if bad_nodes <= 100:
                        problems.append(
                            Problem(
                                "subtree-mismatch",
                                f"stored subtree ({lvl}, {n}) is not the hash of its children; "
                                "proofs through it fail",
                                index=n << lvl,
                            )
                        )
    except LedgerIntegrityError as exc:
        problems.append(Problem("subtree-mismatch", f"subtree table: {exc}"))
    return trusted_upto


def _explain(mismatches: list[_Mismatch], problems: list[Problem]) -> None:
    """_explain names swaps, renumbered runs and edits among entries that differ from the log."""
    by_committed = {m.committed: m for m in mismatches}
    done: set[int] = set()
    for m in mismatches:
        partner = by_committed.get(m.stored)
        if m.index in done or partner is None or partner.index == m.index:
            continue
        if partner.stored == m.committed:
            done.update((m.index, partner.index))
            a, b = sorted((m.index, partner.index))
            problems.append(
                Problem(
                    "swapped",
                    f"entries {a} and {b} are swapped: each holds the other's committed contents",
                    index=a,
                    other_index=b,
                )
            )
    rest = [m for m in mismatches if m.index not in done]
    runs: list[list[_Mismatch]] = []
    for m in rest:
        if runs and runs[-1][-1].index + 1 == m.index:
            runs[-1].append(m)
        else:
            runs.append([m])
    for run in runs:
        first, last = run[0].index, run[-1].index
        if len(run) >= 2 and all(m.down for m in run):
            problems.append(
                Problem(
                    "deleted",
                    f"entry {first} was deleted and entries {first + 1}..{last + 1} renumbered "
                    f"down by one (stored {first}..{last} hold committed {first + 1}..{last + 1})",
                    index=first,
                )
            )
        elif len(run) >= 2 and all(m.up for m in run[1:]):
            problems.append(
                Problem(
                    "inserted",
                    f"entry {first} was inserted and the committed entries {first}..{last - 1} "
                    f"renumbered up by one",
                    index=first,
                )
            )
        else:
            problems.extend(
                Problem(
                    "edited",
                    f"entry {m.index} differs from the entry the checkpoints committed to",
                    index=m.index,
                )
                for m in run
            )


def _ranges(indices: Sequence[int]) -> Iterator[tuple[int, int]]:
    """_ranges groups sorted indices into inclusive runs."""
    start = prev = -2
    for i in indices:
        if i != prev + 1:
            if start >= 0:
                yield start, prev
            start = i
        prev = i
    if start >= 0:
        yield start, prev


def audit_log(
    ledger: Ledger, verifiers: Sequence[NoteVerifier], *, max_named: int = 100_000
) -> AuditReport:
    """audit_log checks a whole log against its signed checkpoints (see the module docstring).

    ``verifiers`` are the keys allowed to sign the log's checkpoints. At most
    ``max_named`` differing entries are explained one by one; beyond that the
    report says how many more there are.
    """
    problems: list[Problem] = []
    # 1. Checkpoint signatures.
    trusted, n_checkpoints = _verify_checkpoints(ledger, verifiers, problems)
    sizes = sorted(trusted)
    head = sizes[-1] if sizes else 0
    # 2. The stored subtree table against the trusted checkpoints.
    trusted_upto = _check_subtrees(ledger, trusted, head, problems)
    committed = _Committed(ledger, trusted_upto)
    # 3. One pass over the stored rows.
    stored_frontier = Frontier()
    next_cp = 0
    root_mismatches: list[int] = []
    mismatches: list[_Mismatch] = []
    extra_mismatches = 0
    missing: list[int] = []
    uncovered: list[int] = []
    expected = 0
    rows = 0
    for index, data in ledger.entries():
        if index < expected:
            problems.append(
                Problem("out-of-order", f"entry {index} is stored out of order", index=index)
            )
            continue
        missing.extend(range(expected, min(index, head)))
        expected = index + 1
        rows += 1
        h = leaf_hash(data)
        stored_frontier.append(h)
        while next_cp < len(sizes) and sizes[next_cp] == stored_frontier.size:
            size = sizes[next_cp]
            next_cp += 1
            if stored_frontier.root() != trusted[size]:
                root_mismatches.append(size)
        if index >= head:
            uncovered.append(index)
            continue
        c = committed.get(index)
        if c is not None and c != h:
            if len(mismatches) >= max_named:
                extra_mismatches += 1
                continue
            mismatches.append(
                _Mismatch(index, h, c, h == committed.get(index + 1), h == committed.get(index - 1))
            )
    missing.extend(range(expected, head))
    # Checkpoints larger than the number of stored rows cannot be reproduced.
    root_mismatches.extend(sizes[next_cp:])
    # 4. Name what was found.
    _explain(mismatches, problems)
    if extra_mismatches:
        problems.append(
            Problem("edited", f"{extra_mismatches} more entries differ from the committed ones")
        )
    for a, b in _ranges(missing):
        what = f"entry {a} is" if a == b else f"entries {a}..{b} are"
        problems.append(
            Problem(
                "missing", f"{what} missing (deleted) though checkpoint {head} covers them", index=a
            )
        )
    for a, b in _ranges(uncovered):
        what = f"entry {a} is" if a == b else f"entries {a}..{b} are"
        problems.append(
            Problem(
                "uncovered",
                f"{what} not covered by any valid checkpoint (latest verified size {head})",
                index=a,
            )
        )
    if root_mismatches:
        first = root_mismatches[0]
        prev = max((s for s in sizes if s < first), default=0)
        more = len(root_mismatches) - 1
        problems.append(
            Problem(
                "root-mismatch",
                f"checkpoint {first}: its root does not match the stored entries; they diverge "
                f"within entries {prev}..{first - 1}"
                + (f" ({more} later checkpoints do not match either)" if more else ""),
                size=first,
                index=prev,
            )
        )
    return AuditReport(
        origin=ledger.origin,
        verified_size=head,
        entries=rows,
        checkpoints=n_checkpoints,
        problems=problems,
    )
