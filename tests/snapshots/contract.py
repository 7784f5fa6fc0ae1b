"""The contract every SnapshotStore backend passes.

Subclass :class:`SnapshotStoreContract` in a test module and provide a
fixture ``store``: the backend under test. The contract's ``repo`` fixture
creates a fresh repository (default branch ``main``) for each test.

Only protocol operations are used, and commit ids are never compared across
backends (a lakeFS server's ids are opaque): only with ids the same store
returned. Errors: missing repositories, refs, branches and objects raise
:class:`~prov_core.errors.NotFoundError` naming them; malformed input and
refused operations (existing tag, nothing to commit, bad path) raise
:class:`~prov_core.errors.InputError`.
"""

from __future__ import annotations

import io
import re
import secrets

import pytest

from prov_core.errors import InputError, NotFoundError
from prov_core.snapshots.base import MAX_LIST_AMOUNT, Commit, DiffEntry, SnapshotStore

from .conftest import list_all

HEX64 = re.compile(r"[0-9a-f]{64}")
BAD_PATHS = [
    "../etc/passwd",
    "a/../../b",
    "a/./b",
    "/abs/path",
    "a//b",
    "",
    "a/..",
    "..",
    "nul\x00byte",
    "back\\slash",
]


def commit_files(
    store: SnapshotStore,
    repo: str,
    files: dict[str, bytes],
    branch: str = "main",
    message: str = "files",
) -> Commit:
    """commit_files writes ``files`` on ``branch`` and commits them."""
    for path, data in files.items():
        store.write(repo, branch, path, data)
    return store.commit(repo, branch, message)


class SnapshotStoreContract:
    @pytest.fixture
    def repo(self, store: SnapshotStore) -> str:
        name = f"repo-{secrets.token_hex(4)}"
        store.create_repository(name, "main")
        return name

    def test_is_a_snapshot_store(self, store: SnapshotStore) -> None:
        assert isinstance(store, SnapshotStore)
        assert store.kind
        assert store.scheme in ("provgate", "lakefs")

    def test_new_repository_has_main(self, store: SnapshotStore, repo: str) -> None:
        head = store.resolve(repo, "main")
        assert HEX64.fullmatch(head)
        assert list_all(store, repo, "main") == {}

    def test_round_trip(self, store: SnapshotStore, repo: str) -> None:
        binary = bytes(range(256)) * 300
        stat = store.write(repo, "main", "data/bin", binary)
        assert stat.path == "data/bin"
        assert stat.size == len(binary)
        store.write(repo, "main", "data/stream", io.BytesIO(b"streamed bytes"))
        store.write(repo, "main", "data/empty", b"")
        store.write(repo, "main", "data/ünïcode name.txt", "héllo".encode())
        commit = store.commit(repo, "main", "round trip")
        for ref in (commit.id, "main", "main@"):
            assert store.read(repo, ref, "data/bin") == binary
            assert store.read(repo, ref, "data/stream") == b"streamed bytes"
            assert store.read(repo, ref, "data/empty") == b""
            assert store.read(repo, ref, "data/ünïcode name.txt") == "héllo".encode()
        assert sorted(list_all(store, repo, commit.id)) == [
            "data/bin",
            "data/empty",
            "data/stream",
            "data/ünïcode name.txt",
        ]

    def test_overwrite_before_commit_keeps_last(self, store: SnapshotStore, repo: str) -> None:
        store.write(repo, "main", "f", b"first")
        store.write(repo, "main", "f", b"second")
        commit = store.commit(repo, "main", "m")
        assert store.read(repo, commit.id, "f") == b"second"

    def test_commit_fields(self, store: SnapshotStore, repo: str) -> None:
        before = store.resolve(repo, "main")
        store.write(repo, "main", "a.txt", b"a")
        commit = store.commit(repo, "main", "add a", {"source": "test", "n": "1"})
        assert HEX64.fullmatch(commit.id)
        assert commit.id != before
        assert commit.parents == (before,)
        assert commit.message == "add a"
        assert dict(commit.metadata) == {"source": "test", "n": "1"}
        assert commit.creation_date > 0
        fetched = store.get_commit(repo, commit.id)
        assert fetched.id == commit.id
        assert fetched.parents == commit.parents
        assert fetched.message == "add a"
        assert dict(fetched.metadata) == {"source": "test", "n": "1"}
        assert store.get_commit(repo, "main").id == commit.id
        assert store.resolve(repo, "main") == commit.id

    def test_old_commit_is_immutable(self, store: SnapshotStore, repo: str) -> None:
        c1 = commit_files(store, repo, {"a.txt": b"one", "b.txt": b"bee"})
        listing1 = list_all(store, repo, c1.id)
        c2 = commit_files(store, repo, {"a.txt": b"two", "c.txt": b"sea"})
        assert c2.id != c1.id
        assert c2.parents == (c1.id,)
        # the old commit lists and reads exactly what it did
        assert list_all(store, repo, c1.id) == listing1
        assert set(listing1) == {"a.txt", "b.txt"}
        assert store.read(repo, c1.id, "a.txt") == b"one"
        with pytest.raises(NotFoundError):
            store.read(repo, c1.id, "c.txt")
        assert store.read(repo, c2.id, "a.txt") == b"two"
        assert store.read(repo, c2.id, "b.txt") == b"bee"
        assert store.get_commit(repo, c1.id).message == c1.message

    def test_resolve_order(self, store: SnapshotStore, repo: str) -> None:
        c1 = commit_files(store, repo, {"x": b"1"})
        c2 = commit_files(store, repo, {"x": b"2"})
        assert store.resolve(repo, c1.id) == c1.id  # full id
        assert store.resolve(repo, "main") == c2.id  # branch
        store.tag(repo, "v1", c1.id)
        assert store.resolve(repo, "v1") == c1.id  # tag
        assert store.resolve(repo, c1.id[:7]) == c1.id  # unique prefix
        assert store.resolve(repo, c1.id[:12]) == c1.id
        # a branch and a tag never share a name (lakeFS refuses it: "conflict found")
        store.create_branch(repo, "release", c2.id)
        with pytest.raises(InputError):
            store.tag(repo, "release", c1.id)
        with pytest.raises(InputError):
            store.create_branch(repo, "v1", c2.id)
        assert store.resolve(repo, "release") == c2.id
        assert store.resolve(repo, "v1") == c1.id
        # a branch named like a commit-id prefix wins over the prefix
        store.create_branch(repo, c1.id[:8], c2.id)
        assert store.resolve(repo, c1.id[:8]) == c2.id
        assert store.resolve(repo, c1.id[:9]) == c1.id

    def test_branch_at_is_committed_head(self, store: SnapshotStore, repo: str) -> None:
        c1 = commit_files(store, repo, {"kept": b"k"})
        store.write(repo, "main", "staged", b"s")
        assert store.resolve(repo, "main@") == c1.id
        assert set(list_all(store, repo, "main")) == {"kept", "staged"}
        assert set(list_all(store, repo, "main@")) == {"kept"}
        assert store.read(repo, "main", "staged") == b"s"
        with pytest.raises(NotFoundError):
            store.read(repo, "main@", "staged")
        with pytest.raises(NotFoundError):
            store.read(repo, c1.id, "staged")

    def test_branch_moves_old_commit_stays(self, store: SnapshotStore, repo: str) -> None:
        c1 = commit_files(store, repo, {"base": b"b"})
        assert store.create_branch(repo, "dev", "main") == c1.id
        assert store.resolve(repo, "dev") == c1.id
        c2 = commit_files(store, repo, {"dev-only": b"d"}, branch="dev")
        assert c2.parents == (c1.id,)
        assert store.resolve(repo, "dev") == c2.id
        assert store.resolve(repo, "main") == c1.id  # other branch untouched
        assert set(list_all(store, repo, "main")) == {"base"}
        assert set(list_all(store, repo, "dev")) == {"base", "dev-only"}
        assert set(list_all(store, repo, c1.id)) == {"base"}
        # staging is per branch
        store.write(repo, "dev", "dev-staged", b"x")
        assert "dev-staged" not in list_all(store, repo, "main")
        with pytest.raises(InputError, match="no changes"):
            store.commit(repo, "main", "nothing staged on main")

    def test_create_branch_from_tag_and_prefix(self, store: SnapshotStore, repo: str) -> None:
        c1 = commit_files(store, repo, {"a": b"a"})
        store.tag(repo, "t1", c1.id)
        assert store.create_branch(repo, "from-tag", "t1") == c1.id
        assert store.create_branch(repo, "from-prefix", c1.id[:10]) == c1.id

    def test_tags(self, store: SnapshotStore, repo: str) -> None:
        c1 = commit_files(store, repo, {"a": b"a"})
        c2 = commit_files(store, repo, {"b": b"b"})
        assert store.tag(repo, "v1.0", "main") == c2.id  # a branch ref: its head
        assert store.tag(repo, "old", c1.id) == c1.id
        assert store.resolve(repo, "v1.0") == c2.id
        assert store.get_commit(repo, "old").id == c1.id
        assert set(list_all(store, repo, "old")) == {"a"}
        with pytest.raises(InputError):
            store.tag(repo, "v1.0", c1.id)  # an existing tag is not overwritten
        assert store.resolve(repo, "v1.0") == c2.id
        # a tag does not move with its branch
        commit_files(store, repo, {"c": b"c"})
        assert store.resolve(repo, "v1.0") == c2.id

    def test_tag_missing_ref(self, store: SnapshotStore, repo: str) -> None:
        with pytest.raises(NotFoundError, match="no-such-ref"):
            store.tag(repo, "t", "no-such-ref")

    def test_list_pagination(self, store: SnapshotStore, repo: str) -> None:
        files = {f"part/{i:03d}.bin": b"%d" % i for i in range(25)}
        files["other/x"] = b"x"
        files["partial"] = b"p"  # shares the string prefix "part" but not "part/"
        commit = commit_files(store, repo, files)
        pages = []
        after = ""
        while True:
            page = store.list_objects(repo, commit.id, prefix="part/", after=after, amount=10)
            pages.append([s.path for s in page.results])
            if not page.has_more:
                break
            assert page.next_after == page.results[-1].path
            after = page.next_after
        assert [len(p) for p in pages] == [10, 10, 5]
        flat = [p for page in pages for p in page]
        assert flat == sorted(p for p in files if p.startswith("part/"))
        everything = list_all(store, repo, commit.id, amount=7)
        assert list(everything) == sorted(files)
        assert set(list_all(store, repo, commit.id, prefix="part")) == {
            *(p for p in files if p.startswith("part/")),
            "partial",
        }
        page = store.list_objects(repo, commit.id, after="part/023.bin", amount=MAX_LIST_AMOUNT)
        assert [s.path for s in page.results] == ["part/024.bin", "partial"]
        assert not page.has_more
        exact = store.list_objects(repo, commit.id, prefix="part/", amount=25)
        assert len(exact.results) == 25
        assert not exact.has_more

    def test_list_amount_limits(self, store: SnapshotStore, repo: str) -> None:
        for amount in (0, -1, MAX_LIST_AMOUNT + 1):
            with pytest.raises(InputError):
                store.list_objects(repo, "main", amount=amount)

    def test_stat_and_metadata(self, store: SnapshotStore, repo: str) -> None:
        meta = {"blake3": "ab" * 32, "license": "CC0-1.0", "note": "ünïcode ✓"}
        store.write(repo, "main", "dir/file.csv", b"a,b\n1,2\n", meta)
        store.write(repo, "main", "dir/plain", b"plain")
        commit = store.commit(repo, "main", "m")
        stat = store.stat(repo, commit.id, "dir/file.csv")
        assert stat.path == "dir/file.csv"
        assert stat.size == 8
        assert stat.checksum
        assert dict(stat.metadata) == meta
        assert dict(store.stat(repo, commit.id, "dir/plain").metadata) == {}
        listed = store.list_objects(repo, commit.id, prefix="dir/file")
        assert [dict(s.metadata) for s in listed.results] == [meta]
        # the same bytes have the same checksum; other bytes another
        assert store.stat(repo, "main", "dir/file.csv").checksum == stat.checksum
        assert store.stat(repo, "main", "dir/plain").checksum != stat.checksum

    def test_diff(self, store: SnapshotStore, repo: str) -> None:
        c1 = commit_files(store, repo, {"same": b"s", "changed": b"1"})
        store.write(repo, "main", "changed", b"2")
        store.write(repo, "main", "new", b"n")
        c2 = store.commit(repo, "main", "second")
        # left to right: "added" exists only at right, "removed" only at left
        assert store.diff(repo, c1.id, c2.id) == [
            DiffEntry("changed", "changed"),
            DiffEntry("new", "added"),
        ]
        assert store.diff(repo, c2.id, c1.id) == [
            DiffEntry("changed", "changed"),
            DiffEntry("new", "removed"),
        ]
        assert store.diff(repo, c1.id, c1.id) == []
        store.tag(repo, "first", c1.id)
        assert [d.path for d in store.diff(repo, "first", "main@")] == ["changed", "new"]

    def test_not_found(self, store: SnapshotStore, repo: str) -> None:
        commit = commit_files(store, repo, {"a": b"a"})
        with pytest.raises(NotFoundError, match="no-such-repo"):
            store.resolve("no-such-repo", "main")
        with pytest.raises(NotFoundError, match="nope"):
            store.resolve(repo, "nope")
        with pytest.raises(NotFoundError, match=r"missing\.txt"):
            store.read(repo, commit.id, "missing.txt")
        with pytest.raises(NotFoundError, match=r"missing\.txt"):
            store.stat(repo, "main", "missing.txt")
        with pytest.raises(NotFoundError):
            store.get_commit(repo, "0" * 64)
        with pytest.raises(NotFoundError):
            store.write(repo, "no-branch", "a", b"a")
        with pytest.raises(NotFoundError):
            store.commit(repo, "no-branch", "m")
        with pytest.raises(NotFoundError):
            store.create_branch(repo, "b2", "no-such-source")
        with pytest.raises(NotFoundError):
            store.list_objects(repo, "no-branch")
        with pytest.raises(NotFoundError):
            store.diff(repo, "main", "no-branch")

    @pytest.mark.parametrize("bad", BAD_PATHS)
    def test_bad_paths_refused(self, store: SnapshotStore, repo: str, bad: str) -> None:
        with pytest.raises(InputError):
            store.write(repo, "main", bad, b"evil")
        with pytest.raises(InputError):
            store.read(repo, "main", bad)
        with pytest.raises(InputError):
            store.stat(repo, "main", bad)
        assert list_all(store, repo, "main") == {}

    def test_empty_commit_refused(self, store: SnapshotStore, repo: str) -> None:
        head = store.resolve(repo, "main")
        with pytest.raises(InputError, match="no changes"):
            store.commit(repo, "main", "empty")
        assert store.resolve(repo, "main") == head
        commit_files(store, repo, {"a": b"a"})
        with pytest.raises(InputError, match="no changes"):
            store.commit(repo, "main", "empty again")

    @pytest.mark.parametrize("ref", ["", "has space", "main~1", "a:b", "x*", "br\nanch"])
    def test_malformed_refs(self, store: SnapshotStore, repo: str, ref: str) -> None:
        with pytest.raises(InputError):
            store.resolve(repo, ref)

    def test_existing_names_refused(self, store: SnapshotStore, repo: str) -> None:
        with pytest.raises(InputError):
            store.create_repository(repo, "main")
        with pytest.raises(InputError):
            store.create_branch(repo, "main", "main")
        store.create_branch(repo, "dev", "main")
        with pytest.raises(InputError):
            store.create_branch(repo, "dev", "main")
