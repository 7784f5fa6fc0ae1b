"""Verification of a whole ledger: every record and the tree that holds them.

Steps, in order:

1. The tree (ledger/audit.py): every checkpoint's note signature against the
   trust store's keys, the stored leaves against the roots the checkpoints
   sign, gaps, extra and reordered entries.
2. Every entry: it parses as a DSSE envelope stored in its canonical RFC 8785
   form; each signature verifies over the exact PAE bytes; the signing key is
   in the trust store, allowed for the statement's predicate type, not
   revoked, and not used after the entry that retired it; the payload is an
   in-toto Statement v1.
3. Key events: the rotations and revocations recorded in the ledger agree
   with the trust store (a key revoked in the ledger must be revoked there).

Every problem is collected and named (entry index or checkpoint size and
what is wrong); nothing stops at the first failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prov_core.errors import FormatError, ProvgateError, VerificationError
from prov_core.ledger.audit import Problem
from prov_core.statement import KEY_EVENT_V1, Statement

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.ledger.base import Ledger
    from prov_core.trust import TrustStore

__all__ = ["Problem", "VerifyReport", "verify_home", "verify_ledger"]


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_ledger`; ``ok`` only if there is no problem."""

    entries: int = 0
    checkpoint_size: int | None = None
    root: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoint_size": self.checkpoint_size,
            "root": self.root,
            "problems": [
                {
                    "index": p.index,
                    "other_index": p.other_index,
                    "checkpoint_size": p.size,
                    "kind": p.kind,
                    "message": p.message,
                }
                for p in self.problems
            ],
        }


def verify_home(home: Home, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Verify the ledger of ``home`` against its trust store."""
    with home.open_ledger() as ledger:
        return verify_ledger(ledger, home.trust(), home.note_verifiers(), progress=progress)


def verify_ledger(
    ledger: Ledger,
    trust: TrustStore,
    note_verifiers: list[Any],
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check the tree, every entry and the key events; collect every problem."""
    from prov_core.ledger.audit import audit_log
    from prov_core.ledger.checkpoint import open_checkpoint

    report = VerifyReport()
    # 1. The tree against the signed checkpoints.
    audit = audit_log(ledger, note_verifiers)
    report.checkpoint_size = audit.verified_size
    if audit.verified_size:
        note = ledger.checkpoint(audit.verified_size)
        report.root = open_checkpoint(note, note_verifiers).root.hex()
    report.problems.extend(_name_revoked_checkpoints(ledger, trust, audit.problems))
    # 2. Every entry on its own.
    retired_at: dict[str, int] = {}
    revoked_in_log: dict[str, int] = {}
    for index, leaf in ledger.entries():
        report.entries += 1
        if progress is not None:
            progress(1)
        for problem in _check_entry(index, leaf, trust, retired_at, revoked_in_log):
            report.problems.append(problem)
    # 3. Key events against the trust store.
    status = {e.keyid: e.status for e in trust.entries()}
    for keyid, index in sorted(revoked_in_log.items(), key=lambda kv: kv[1]):
        if status.get(keyid) != "revoked":
            report.problems.append(
                Problem(
                    kind="trust-mismatch",
                    message=f"entry {index}: revokes key {keyid} but the trust store "
                    f"lists it as {status.get(keyid, 'absent')}",
                    index=index,
                )
            )
    return report


def _name_revoked_checkpoints(
    ledger: Ledger, trust: TrustStore, problems: list[Problem]
) -> list[Problem]:
    """Say "revoked-key" (with the reason) for checkpoints a now-revoked key signed.

    The audit only knows the keys it may trust; a checkpoint by a revoked key
    is rightly untrusted, and the useful message is why.
    """
    from prov_core.ledger.checkpoint import NoteVerifier, open_note

    revoked = [e for e in trust.entries() if e.status == "revoked"]
    if not revoked:
        return problems
    out = []
    for problem in problems:
        p = problem
        if p.kind == "unknown-key" and p.size is not None:
            for entry in revoked:
                try:
                    open_note(
                        ledger.checkpoint(p.size), [NoteVerifier(ledger.origin, entry.public_key)]
                    )
                except ProvgateError:
                    continue
                p = Problem(
                    "revoked-key",
                    f"checkpoint {p.size}: signed by key {entry.keyid}, revoked at "
                    f"{entry.revoked}: {entry.reason or 'no reason given'}",
                    size=p.size,
                )
                break
        out.append(p)
    return out


def _check_entry(
    index: int,
    leaf: bytes,
    trust: TrustStore,
    retired_at: dict[str, int],
    revoked_in_log: dict[str, int],
) -> list[Problem]:
    from prov_core.signing import Envelope, verify_envelope

    def problem(kind: str, message: str) -> Problem:
        return Problem(kind=kind, message=f"entry {index}: {message}", index=index)

    try:
        envelope = Envelope.parse(leaf)
    except FormatError as exc:
        return [problem("malformed-envelope", str(exc))]
    if envelope.canonical_bytes() != leaf:
        return [problem("non-canonical", "stored bytes are not RFC 8785 canonical JSON")]
    problems = []
    statement: Statement | None = None
    try:
        statement = Statement.parse(envelope.payload)
    except ProvgateError as exc:
        problems.append(problem("malformed-statement", str(exc)))
    # An unparseable payload still has its signatures checked: "bad-signature"
    # is the more useful finding when a stored byte was flipped.
    try:
        verify_envelope(
            envelope, trust, predicate_type=statement.predicate_type if statement else ""
        )
    except VerificationError as exc:
        from prov_core.custody import signature_code

        problems.append(problem(signature_code(exc, "unverified"), str(exc)))
    for sig in envelope.signatures:
        if sig.keyid in retired_at and retired_at[sig.keyid] < index:
            problems.append(
                problem(
                    "retired-key",
                    f"key {sig.keyid} was retired at entry {retired_at[sig.keyid]}",
                )
            )
    if statement is not None and statement.predicate_type == KEY_EVENT_V1 and not problems:
        event = statement.predicate
        keyid = event.get("keyid")
        if isinstance(keyid, str):
            if event.get("event") == "rotated":
                retired_at.setdefault(keyid, index)
            elif event.get("event") == "revoked":
                revoked_in_log.setdefault(keyid, index)
    return problems
