"""Shared fixtures of the ledger tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from prov_core.ledger import MemoryLedger, NoteSigner, NoteVerifier, SQLiteLedger
from prov_core.ledger.base import BaseLedger

ORIGIN = "provgate.test/ledger"
# A fixed key keeps failures reproducible; it signs nothing outside the tests.
SEED = bytes(range(32))


def vendor_testdata() -> Path | None:
    """vendor_testdata locates transparency-dev/merkle's testdata, or None."""
    env = os.environ.get("PROVGATE_VENDOR_DIR")
    repo = Path(__file__).resolve().parents[2]
    base = Path(env) if env else repo.parent / "shared" / "vendor"
    for candidate in (
        base / "transparency-dev-merkle" / "testdata",
        base / "testdata",
        base,
    ):
        if (candidate / "inclusion").is_dir() and (candidate / "consistency").is_dir():
            return candidate
    return None


def require_services() -> bool:
    return os.environ.get("PROVGATE_REQUIRE_SERVICES") == "1"


def admin(url: str) -> Any:
    """An autocommit connection to ``url`` of the test's own (not a ledger's)."""
    import psycopg

    return psycopg.connect(url, autocommit=True)


def lock_waiters(postgres_url: str) -> set[int]:
    """The backends waiting for an advisory lock (the writers' lock) in that database."""
    with admin(postgres_url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return {int(r[0]) for r in rows}


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(SEED))


@pytest.fixture
def verifier(signer: NoteSigner) -> NoteVerifier:
    return signer.verifier()


LedgerFactory = Callable[[], BaseLedger]


@pytest.fixture
def memory_factory(signer: NoteSigner) -> LedgerFactory:
    return lambda: MemoryLedger(ORIGIN, signer)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite"


@pytest.fixture
def sqlite_factory(sqlite_path: Path, signer: NoteSigner) -> LedgerFactory:
    return lambda: SQLiteLedger(sqlite_path, ORIGIN, signer)


@pytest.fixture
def postgres_factory(postgres_url: str, signer: NoteSigner) -> LedgerFactory:
    from prov_core.ledger.postgres import PostgresLedger

    return lambda: PostgresLedger(postgres_url, ORIGIN, signer)
