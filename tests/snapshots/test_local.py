"""The embedded LocalStore: the shared contract, plus what only a local store can show."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import blake3
import pytest

from prov_core.errors import (
    ConfigError,
    InputError,
    IntegrityError,
    NotFoundError,
    ProvgateError,
)
from prov_core.snapshots.base import SnapshotStore
from prov_core.snapshots.local import (
    MAX_METADATA_BYTES,
    LocalStore,
    commit_body,
    listing_line,
)

from . import _crash_worker
from .conftest import list_all
from .contract import SnapshotStoreContract, commit_files

REPO_ROOT = Path(__file__).resolve().parents[2]


class TestLocalContract(SnapshotStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path, home_db: str) -> Iterator[SnapshotStore]:
        """The local store, its metadata in SQLite, then in PostgreSQL (blobs in tmp_path)."""
        with LocalStore(tmp_path / "store", committer="tester", database=_database()) as store:
            yield store


def _database() -> str | None:
    """The PostgreSQL URL the ``home_db`` fixture set, or None for SQLite."""
    return os.environ.get("PROVGATE_LEDGER_URL")


@pytest.fixture
def repo(local_store: LocalStore) -> str:
    local_store.create_repository("data", "main")
    return "data"


def blob_file(store: LocalStore, digest: str) -> Path:
    return store.root / "objects" / digest[:2] / digest[2:]


def ancestry(store: LocalStore, repo: str, ref: str) -> list[str]:
    """ancestry returns the commit ids from ``ref`` back to the repository's first commit."""
    out = [store.resolve(repo, ref)]
    while True:
        parents = store.get_commit(repo, out[-1]).parents
        if not parents:
            return out
        assert len(parents) == 1
        out.append(parents[0])


# -- layout, identity, integrity ---------------------------------------------


def test_layout_and_blob_names(local_store: LocalStore, repo: str) -> None:
    data = b"content-addressed"
    stat = local_store.write(repo, "main", "a.txt", data)
    assert stat.checksum == blake3.blake3(data).hexdigest()
    path = blob_file(local_store, stat.checksum)
    assert path.read_bytes() == data
    assert path.stat().st_mode & 0o777 == 0o444
    assert (local_store.root / "store.sqlite").is_file()
    assert list((local_store.root / "tmp").iterdir()) == []
    # the same bytes under another path are stored once
    local_store.write(repo, "main", "b.txt", data)
    assert len([p for p in (local_store.root / "objects").rglob("*") if p.is_file()]) == 1


def test_commit_id_is_sha256_of_documented_bytes(local_store: LocalStore, repo: str) -> None:
    local_store.write(repo, "main", "z/last", b"z", {"k": "v", "ä": "ö"})
    local_store.write(repo, "main", "a/first", b"a")
    commit = local_store.commit(repo, "main", "documented", {"run": "7"})
    listing = b"".join(
        listing_line(s.path, s.checksum, s.size, s.metadata)
        for s in local_store.list_objects(repo, commit.id).results
    )
    assert listing.splitlines()[0] == (
        b'{"blake3":"%s","metadata":{},"path":"a/first","size":1}'
        % blake3.blake3(b"a").hexdigest().encode()
    )
    body = commit_body(
        tree=hashlib.sha256(listing).hexdigest(),
        parents=commit.parents,
        message="documented",
        committer="tester",
        creation_date=commit.creation_date,
        metadata={"run": "7"},
    )
    assert json.loads(body)["type"] == "provgate-commit/v1"
    assert hashlib.sha256(body).hexdigest() == commit.id
    assert local_store.verify(repo, commit.id) == commit


def test_blob_edited_on_disk_is_detected(local_store: LocalStore, repo: str) -> None:
    commit = commit_files(local_store, repo, {"data.csv": b"a,b\n1,2\n", "other": b"ok"})
    path = blob_file(local_store, local_store.stat(repo, commit.id, "data.csv").checksum)
    path.chmod(0o644)
    path.write_bytes(b"a,b\n1,3\n")  # same size, other bytes
    with pytest.raises(IntegrityError, match=r"data\.csv") as info:
        local_store.read(repo, commit.id, "data.csv")
    assert info.value.exit_code == 1
    with pytest.raises(IntegrityError, match=r"data\.csv"):
        local_store.verify(repo, commit.id)
    assert local_store.read(repo, commit.id, "other") == b"ok"  # the rest still reads
    path.write_bytes(b"a,b\n")  # truncated
    with pytest.raises(IntegrityError):
        local_store.read(repo, "main", "data.csv")
    path.unlink()  # gone
    with pytest.raises(IntegrityError, match="missing"):
        local_store.read(repo, "main", "data.csv")


def test_rewriting_same_bytes_heals_a_truncated_blob(local_store: LocalStore, repo: str) -> None:
    commit = commit_files(local_store, repo, {"f": b"precious bytes"})
    path = blob_file(local_store, local_store.stat(repo, commit.id, "f").checksum)
    path.chmod(0o644)
    path.write_bytes(b"prec")
    local_store.write(repo, "main", "g", b"precious bytes")
    assert local_store.read(repo, commit.id, "f") == b"precious bytes"


def test_commit_row_edited_is_detected(local_store: LocalStore, repo: str) -> None:
    commit = commit_files(local_store, repo, {"f": b"x"})
    db = sqlite3.connect(local_store.root / "store.sqlite")
    with db:
        db.execute(
            "UPDATE commits SET body = replace(body, 'files', 'FILES') WHERE id = ?", (commit.id,)
        )
    db.close()
    with pytest.raises(IntegrityError, match=commit.id):
        local_store.verify(repo, commit.id)


def test_listing_row_edited_is_detected(local_store: LocalStore, repo: str) -> None:
    commit = commit_files(local_store, repo, {"f": b"x", "g": b"y"})
    db = sqlite3.connect(local_store.root / "store.sqlite")
    with db:
        db.execute("UPDATE entries SET size = 2 WHERE path = 'g'")
    db.close()
    with pytest.raises(IntegrityError, match="listing"):
        local_store.verify(repo, commit.id)


def test_large_write_is_streamed(local_store: LocalStore, repo: str) -> None:
    class Source(io.RawIOBase):
        """Source yields 24 MiB of pseudo-random bytes, refusing any read over 1 MiB."""

        def __init__(self) -> None:
            self.left = 24 << 20
            self.rng = random.Random(7)
            self.hasher = blake3.blake3()

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            assert 0 < size <= 1 << 20, f"read({size}): not streamed"
            n = min(size, self.left)
            self.left -= n
            chunk = self.rng.randbytes(n)
            self.hasher.update(chunk)
            return chunk

    source = Source()
    stat = local_store.write(repo, "main", "big.bin", cast(BinaryIO, source))
    assert stat.size == 24 << 20
    assert stat.checksum == source.hasher.hexdigest()
    commit = local_store.commit(repo, "main", "big")
    assert len(local_store.read(repo, commit.id, "big.bin")) == 24 << 20


def test_ambiguous_prefix_names_candidates(local_store: LocalStore, repo: str) -> None:
    # Two ids sharing 7 hex digits would take ~16**3.5 commits to occur by
    # chance, so plant two commit rows; the resolver reads only their ids.
    db = sqlite3.connect(local_store.root / "store.sqlite")
    ids = ["abcdef0" + "1" * 57, "abcdef0" + "2" * 57]
    with db:
        for cid in ids:
            db.execute(
                "INSERT INTO commits (repo, id, tree, body) VALUES (?, ?, ?, ?)",
                (repo, cid, hashlib.sha256(b"").hexdigest(), b"{}"),
            )
    db.close()
    with pytest.raises(NotFoundError, match="ambiguous") as info:  # as base.py says
        local_store.resolve(repo, "abcdef0")
    assert all(cid in str(info.value) for cid in ids)
    assert local_store.resolve(repo, "abcdef01") == ids[0]
    with pytest.raises(NotFoundError):
        local_store.resolve(repo, "abcdef3")
    with pytest.raises(NotFoundError):
        local_store.resolve(repo, "abcdef")  # too short to be a prefix


def test_tag_force_moves(local_store: LocalStore, repo: str) -> None:
    c1 = commit_files(local_store, repo, {"a": b"a"})
    c2 = commit_files(local_store, repo, {"b": b"b"})
    local_store.tag(repo, "latest", c1.id)
    with pytest.raises(InputError, match="force=True"):
        local_store.tag(repo, "latest", c2.id)
    assert local_store.tag(repo, "latest", c2.id, force=True) == c2.id
    assert local_store.resolve(repo, "latest") == c2.id


def test_delete_and_removed_in_diff(local_store: LocalStore, repo: str) -> None:
    c1 = commit_files(local_store, repo, {"keep": b"k", "drop": b"d"})
    local_store.delete(repo, "main", "drop")
    assert set(list_all(local_store, repo, "main")) == {"keep"}
    assert set(list_all(local_store, repo, "main@")) == {"keep", "drop"}
    assert [(d.path, d.type) for d in local_store.diff(repo, "main@", "main")] == [
        ("drop", "removed")
    ]
    c2 = local_store.commit(repo, "main", "drop it")
    assert [(d.path, d.type) for d in local_store.diff(repo, c1.id, c2.id)] == [("drop", "removed")]
    assert local_store.read(repo, c1.id, "drop") == b"d"
    with pytest.raises(NotFoundError):
        local_store.delete(repo, "main", "drop")


def test_staged_rewrite_of_same_bytes_is_no_change(local_store: LocalStore, repo: str) -> None:
    c1 = commit_files(local_store, repo, {"a": b"same"})
    local_store.write(repo, "main", "a", b"same")
    with pytest.raises(InputError, match="no changes"):
        local_store.commit(repo, "main", "noop")
    assert local_store.resolve(repo, "main") == c1.id
    with pytest.raises(InputError, match="no changes"):  # and the staging area is clear
        local_store.commit(repo, "main", "noop")


def test_metadata_change_is_a_change(local_store: LocalStore, repo: str) -> None:
    local_store.write(repo, "main", "a", b"x", {"license": "MIT"})
    c1 = local_store.commit(repo, "main", "1")
    local_store.write(repo, "main", "a", b"x", {"license": "CC0-1.0"})
    c2 = local_store.commit(repo, "main", "2")
    assert [(d.path, d.type) for d in local_store.diff(repo, c1.id, c2.id)] == [("a", "changed")]


def test_reopen_and_default_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_store: LocalStore, repo: str
) -> None:
    commit = commit_files(local_store, repo, {"a": b"a"})
    local_store.close()
    with pytest.raises(ProvgateError, match="closed"):
        local_store.resolve(repo, "main")
    with LocalStore(local_store.root) as again:
        assert again.read(repo, commit.id, "a") == b"a"
    monkeypatch.setenv("PROVGATE_HOME", str(tmp_path / "home"))
    with LocalStore() as default:
        assert default.root == tmp_path / "home" / "store"
        assert (tmp_path / "home" / "store" / "store.sqlite").is_file()


def test_not_a_store(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    db = sqlite3.connect(other / "store.sqlite")
    with db:
        db.execute("CREATE TABLE something (x)")
    db.close()
    with pytest.raises(ConfigError, match="not a provgate store"):
        LocalStore(other)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        LocalStore(tmp_path / "file")


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    "ref", ["main@@", "@", "a..b", "-x", "v1~", "HEAD^", "ref\x00", "x" * 300, "ünï"]
)
def test_malformed_refs(local_store: LocalStore, repo: str, ref: str) -> None:
    with pytest.raises(InputError) as info:
        local_store.resolve(repo, ref)
    assert not isinstance(info.value, NotFoundError)


@pytest.mark.parametrize("name", ["", "ab", "UPPER", "-lead", "a_b", "x" * 64, "a b", "../up"])
def test_bad_repository_names(local_store: LocalStore, name: str) -> None:
    with pytest.raises(InputError, match="repository name"):
        local_store.create_repository(name)


@pytest.mark.parametrize("name", ["", "-x", "a.b", "a/b", "a b", "main@", "x" * 256])
def test_bad_branch_names(local_store: LocalStore, repo: str, name: str) -> None:
    with pytest.raises(InputError, match="branch name"):
        local_store.create_branch(repo, name, "main")


@pytest.mark.parametrize("name", ["", ".x", "a..b", "x.", "x.lock", "a b", "a/b", "t@"])
def test_bad_tag_names(local_store: LocalStore, repo: str, name: str) -> None:
    with pytest.raises(InputError, match="tag name"):
        local_store.tag(repo, name, "main")


def test_oversize_and_malformed_metadata(local_store: LocalStore, repo: str) -> None:
    big = {"k": "v" * MAX_METADATA_BYTES}
    with pytest.raises(InputError, match="bytes"):
        local_store.write(repo, "main", "a", b"a", big)
    many = {f"key{i}": "v" * 100 for i in range(700)}
    with pytest.raises(InputError, match="bytes"):
        local_store.write(repo, "main", "a", b"a", many)
    for bad in ({"k": 1}, {1: "v"}, {"": "v"}, {"k": "\udcff"}):
        with pytest.raises(InputError):
            local_store.write(repo, "main", "a", b"a", bad)  # type: ignore[arg-type]
    local_store.write(repo, "main", "a", b"a", {"k": "v" * (MAX_METADATA_BYTES - 1)})
    with pytest.raises(InputError, match="bytes"):
        local_store.commit(repo, "main", "m", big)
    with pytest.raises(InputError, match="message"):
        local_store.commit(repo, "main", "m" * (64 * 1024 + 1))
    with pytest.raises(InputError):
        local_store.commit(repo, "main", 42)  # type: ignore[arg-type]
    assert local_store.commit(repo, "main", "ok").message == "ok"
    # nothing refused left a blob behind in tmp/
    assert list((local_store.root / "tmp").iterdir()) == []


def test_bad_paths_store_nothing(local_store: LocalStore, repo: str) -> None:
    for bad in ("../escape", "a/../../escape", "/etc/passwd", "surrogate\udcff"):
        with pytest.raises(InputError):
            local_store.write(repo, "main", bad, b"evil")
    assert not (local_store.root.parent / "escape").exists()
    assert [p for p in (local_store.root / "objects").rglob("*") if p.is_file()] == []


def test_bad_list_arguments(local_store: LocalStore, repo: str) -> None:
    for kwargs in ({"amount": True}, {"amount": 1.5}, {"prefix": "a\x00"}, {"after": 3}):
        with pytest.raises(InputError):
            local_store.list_objects(repo, "main", **kwargs)


# -- crash safety and concurrency ---------------------------------------------------


def _worker(root: Path, tag: str, big: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.snapshots._crash_worker",
            str(root),
            "data",
            "main",
            tag,
            str(big),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _events(proc: subprocess.Popen[str]) -> Iterator[dict[str, object]]:
    assert proc.stdout is not None
    for line in proc.stdout:
        yield json.loads(line)
    err = proc.stderr.read() if proc.stderr else ""
    pytest.fail(f"crash worker exited with {proc.wait()} before it was killed: {err}")


@pytest.mark.slow
def test_sigkill_mid_commit_leaves_store_intact(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with LocalStore(root, fsync=False) as store:
        # 2,000 objects already committed: each commit's transaction then
        # writes a 2,000-row listing, a window wide enough for kills to land in.
        store.create_repository("data", "main")
        for i in range(2000):
            store.write("data", "main", f"seed/{i:04d}", b"seed %d" % i)
        seed = store.commit("data", "main", "seed")
    rng = random.Random(1234)
    committed: dict[str, dict[str, str]] = {}  # commit id -> files its writer reported
    listings: dict[str, dict[str, str]] = {}  # commit id -> its full listing when first seen
    for round_ in range(6):
        proc = _worker(root, f"r{round_}", big=8 << 20)
        try:
            events = _events(proc)
            target = rng.randint(1, 3)  # commits to let through before the kill
            seen = 0
            for event in events:
                if event["event"] == "committed":
                    committed[str(event["id"])] = dict(event["files"])  # type: ignore[call-overload]
                    seen += 1
                elif seen >= target:  # "committing": the worker is entering commit()
                    if round_ % 3 == 2:
                        time.sleep(rng.uniform(0.0, 0.2))  # anywhere: writes or commit
                    else:
                        time.sleep(rng.uniform(0.0, 0.04))  # inside commit
                    break
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
        assert proc.returncode == -signal.SIGKILL
        # A fresh process view of the store: readable, and every commit intact.
        with LocalStore(root) as store:
            chain = ancestry(store, "data", "main")
            for cid, files in committed.items():
                assert cid in chain, f"commit {cid} lost from main"
                listing = list_all(store, "data", cid)
                for path, digest in files.items():
                    assert listing[path] == digest
                if cid in listings:
                    assert listing == listings[cid], f"commit {cid} changed"
                listings[cid] = listing
            store.verify("data", chain[0])  # the head: ids, listing, every blob re-hashed
            for cid in chain[1:]:
                store.verify("data", cid, content=False)  # ids and listing
    assert len(committed) >= 6
    assert seed.id in chain


def test_concurrent_writers_on_separate_branches(tmp_path: Path, home_db: str) -> None:
    root = tmp_path / "store"
    with LocalStore(root, database=_database()) as store:
        store.create_repository("data", "main")
        base = store.resolve("data", "main")
        for w in range(4):
            store.create_branch("data", f"b{w}", "main")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(
            _crash_worker.commit_many,
            [(str(root), "data", f"b{w}", w, 8, _database()) for w in range(4)],
        )
    with LocalStore(root, database=_database()) as store:
        for w, result in enumerate(results):
            ids = [cid for cid, _ in result if cid is not None]
            assert len(ids) == 8  # alone on its branch: every commit has changes
            assert ancestry(store, "data", f"b{w}") == [*reversed(ids), base]
            expected: dict[str, str] = {}
            for cid, files in result:
                expected.update(files)
                assert cid is not None
                assert list_all(store, "data", cid) == expected
            store.verify("data", f"b{w}")
        assert list_all(store, "data", "main") == {}


def test_concurrent_writers_on_one_branch(tmp_path: Path, home_db: str) -> None:
    root = tmp_path / "store"
    with LocalStore(root, database=_database()) as store:
        store.create_repository("data", "main")
        base = store.resolve("data", "main")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(
            _crash_worker.commit_many,
            [(str(root), "data", "main", w, 10, _database()) for w in range(4)],
        )
    with LocalStore(root, database=_database()) as store:
        chain = ancestry(store, "data", "main")
        made = [cid for result in results for cid, _ in result if cid is not None]
        assert len(made) == len(set(made))
        # every commit a writer was given is on the branch, and nothing else is
        assert sorted(chain[:-1]) == sorted(made)
        assert chain[-1] == base
        everything = {p: d for result in results for _, files in result for p, d in files.items()}
        assert len(everything) == 40
        assert list_all(store, "data", "main@") == everything
        for commit_id in chain:
            store.verify("data", commit_id)
        for result in results:  # each writer's own file is in the commit it got back
            for got, files in result:
                if got is not None:
                    listing = list_all(store, "data", got)
                    assert all(listing[p] == d for p, d in files.items())
