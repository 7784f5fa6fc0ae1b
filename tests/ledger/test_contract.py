"""The shared Ledger contract, run for every backend."""

from __future__ import annotations

import pytest

from .conftest import LedgerFactory
from .contract import LedgerContract


class TestMemoryLedger(LedgerContract):
    persistent = False

    @pytest.fixture
    def ledger_factory(self, memory_factory: LedgerFactory) -> LedgerFactory:
        return memory_factory


class TestSQLiteLedger(LedgerContract):
    @pytest.fixture
    def ledger_factory(self, sqlite_factory: LedgerFactory) -> LedgerFactory:
        return sqlite_factory


class TestPostgresLedger(LedgerContract):
    @pytest.fixture
    def ledger_factory(self, postgres_factory: LedgerFactory) -> LedgerFactory:
        return postgres_factory
