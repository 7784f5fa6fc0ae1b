"""Shared fixtures and helpers of the snapshot-store tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prov_core.snapshots.base import SnapshotStore
from prov_core.snapshots.local import LocalStore


def list_all(
    store: SnapshotStore, repo: str, ref: str, prefix: str = "", amount: int = 1000
) -> dict[str, str]:
    """list_all pages through ``list_objects`` and returns path -> checksum."""
    out: dict[str, str] = {}
    after = ""
    while True:
        page = store.list_objects(repo, ref, prefix=prefix, after=after, amount=amount)
        for stat in page.results:
            assert stat.path not in out, f"{stat.path} listed twice"
            out[stat.path] = stat.checksum
        if not page.has_more:
            return out
        after = page.next_after


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[LocalStore]:
    """A fresh LocalStore under the test's temporary directory."""
    with LocalStore(tmp_path / "store", committer="tester") as store:
        yield store
