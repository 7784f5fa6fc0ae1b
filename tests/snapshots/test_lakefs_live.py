"""The shared contract against a real lakeFS, when ``LAKECTL_SERVER_ENDPOINT_URL`` is set.

Skipped (visibly) otherwise: no lakeFS runs on the development machines or in
CI. See docs/lakefs.md for running one (``lakefs run --quickstart``) and the
variables this reads. Each test gets a fresh repository with a unique name,
its data under ``$PROVGATE_LAKEFS_STORAGE_NAMESPACE/<name>`` (default
``local://provgate-tests/<name>``), deleted again afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import blake3
import pytest

from prov_core.errors import IntegrityError, NotFoundError, StoreError
from prov_core.snapshots.base import SnapshotStore
from prov_core.snapshots.lakefs import (
    ENV_ENDPOINT,
    ENV_STORAGE_NAMESPACE,
    METADATA_BLAKE3,
    LakeFSStore,
)

from .contract import SnapshotStoreContract, commit_files

pytestmark = pytest.mark.skipif(
    not os.environ.get(ENV_ENDPOINT),
    reason=f"live lakeFS suite: set {ENV_ENDPOINT} (and its credentials) to run it",
)

NAMESPACE_ROOT = os.environ.get(ENV_STORAGE_NAMESPACE) or "local://provgate-tests"


@pytest.fixture(scope="module")
def live() -> Iterator[LakeFSStore]:
    with LakeFSStore.from_env(storage_namespace_root=NAMESPACE_ROOT) as store:
        yield store


@pytest.fixture
def store(live: LakeFSStore) -> LakeFSStore:
    return live


@pytest.fixture
def fresh_repo(live: LakeFSStore) -> Iterator[str]:
    name = f"provgate-test-{secrets.token_hex(6)}"
    live.create_repository(name, "main")
    yield name
    _delete_repository(live, name)


def _delete_repository(store: LakeFSStore, name: str) -> None:
    """Test clean-up only: the protocol has no delete (snapshots are kept, by design)."""
    try:
        store._client.repositories_api.delete_repository(name, _request_timeout=30)
    except Exception as exc:  # clean-up must not hide the test's own outcome
        print(f"could not delete lakeFS repository {name}: {exc!r}")


class TestLiveLakeFSContract(SnapshotStoreContract):
    """The shared contract, on a real lakeFS; each repository deleted afterwards."""

    @pytest.fixture
    def repo(self, store: SnapshotStore) -> Iterator[str]:
        assert isinstance(store, LakeFSStore)
        name = f"provgate-test-{secrets.token_hex(6)}"
        store.create_repository(name, "main")
        yield name
        _delete_repository(store, name)


def test_live_reupload_keeps_old_commit(live: LakeFSStore, fresh_repo: str) -> None:
    c1 = commit_files(live, fresh_repo, {"x.csv": b"v1\n"})
    c2 = commit_files(live, fresh_repo, {"x.csv": b"v2\n"})
    assert live.read(fresh_repo, c1.id, "x.csv") == b"v1\n"
    assert live.read(fresh_repo, c2.id, "x.csv") == b"v2\n"
    recorded = live._client.objects_api.stat_object(fresh_repo, c1.id, "x.csv").metadata or {}
    assert recorded[METADATA_BLAKE3] == blake3.blake3(b"v1\n").hexdigest()


def test_live_outside_write_fails_read(live: LakeFSStore, fresh_repo: str) -> None:
    live._client.objects_api.upload_object(fresh_repo, "main", "raw.bin", content=b"raw")
    with pytest.raises(IntegrityError, match=r"raw\.bin"):
        live.read(fresh_repo, "main", "raw.bin")


def test_live_missing_repository(live: LakeFSStore) -> None:
    with pytest.raises(NotFoundError, match="provgate-no-such-repo"):
        live.resolve("provgate-no-such-repo", "main")


def test_live_wrong_secret(live: LakeFSStore) -> None:
    wrong = LakeFSStore(
        live.endpoint, os.environ.get("LAKECTL_CREDENTIALS_ACCESS_KEY_ID", "x"), "wrong-secret"
    )
    with wrong, pytest.raises(StoreError, match="rejected the credentials"):
        wrong.resolve("any-repo", "main")
