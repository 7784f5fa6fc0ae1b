"""The append-only, tamper-evident ledger of provgate records.

- :mod:`~prov_core.ledger.merkle`: RFC 9162 Merkle tree, proofs and their checks.
- :mod:`~prov_core.ledger.checkpoint`: signed notes, checkpoints, tlog-proof receipts.
- :mod:`~prov_core.ledger.base`: the :class:`Ledger` protocol every backend implements.
- :mod:`~prov_core.ledger.memory`, :mod:`~prov_core.ledger.sqlite`,
  :mod:`~prov_core.ledger.postgres`: the backends (PostgreSQL needs the
  ``postgres`` extra; psycopg is imported only when a PostgresLedger opens).
- :mod:`~prov_core.ledger.sequencer`: the sequencer that integrates many
  writers' appends to a PostgreSQL ledger, and the ledger that appends through it.
- :mod:`~prov_core.ledger.audit`: whole-log verification that names what is wrong.
"""

from __future__ import annotations

from prov_core.ledger.audit import AuditReport, Problem, audit_log
from prov_core.ledger.base import Appended, BaseLedger, Ledger
from prov_core.ledger.checkpoint import (
    Checkpoint,
    CheckpointSigner,
    NoteSignatureError,
    NoteSigner,
    NoteVerifier,
    Receipt,
    UnknownNoteKeyError,
    format_receipt,
    open_checkpoint,
    open_note,
    parse_receipt,
    verify_receipt,
)
from prov_core.ledger.memory import MemoryLedger
from prov_core.ledger.postgres import PostgresLedger
from prov_core.ledger.sequencer import SequencedLedger, SequencerServer
from prov_core.ledger.sqlite import SQLiteLedger

__all__ = [
    "Appended",
    "AuditReport",
    "BaseLedger",
    "Checkpoint",
    "CheckpointSigner",
    "Ledger",
    "MemoryLedger",
    "NoteSignatureError",
    "NoteSigner",
    "NoteVerifier",
    "PostgresLedger",
    "Problem",
    "Receipt",
    "SQLiteLedger",
    "SequencedLedger",
    "SequencerServer",
    "UnknownNoteKeyError",
    "audit_log",
    "format_receipt",
    "open_checkpoint",
    "open_note",
    "parse_receipt",
    "verify_receipt",
]
