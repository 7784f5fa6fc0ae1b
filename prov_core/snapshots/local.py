"""The embedded snapshot store: content-addressed blobs and immutable commits.

:class:`LocalStore` implements :class:`~prov_core.snapshots.base.SnapshotStore`
with lakeFS's semantics (branches with a staging area, tags, ref resolution
order, ``branch@``) in one directory, by default ``$PROVGATE_HOME/store``::

    store/                      mode 0700
      store.sqlite              refs, commits, listings, staging (SQLite, WAL)
      objects/ab/cdef...        blobs, named by the BLAKE3 of their bytes
                                (2 hex fan-out + 62 hex), mode 0444
      tmp/                      blobs being written (a crash may leave some)

With ``database=`` a ``postgresql://`` URL (a home whose ledger is on
PostgreSQL), the same tables live in that database, prefixed ``store_``
(``store_branches``, ``store_staging``, ...), and ``store.sqlite`` is not
created: many workers on many machines share one set of refs, while the
blobs stay content-addressed under ``root``, a directory they all mount.

Blobs
    ``write`` streams the data (1 MiB at a time, never whole in memory) into
    ``tmp/`` while hashing it with BLAKE3, then links the file to
    ``objects/<2 hex>/<62 hex>``; an existing blob of the same size is kept
    (``os.link`` fails rather than replace it, so a committed, fsynced blob is
    never swapped for an unsynced copy). ``read`` re-hashes the bytes and
    raises :class:`~prov_core.errors.IntegrityError` naming the object when
    they differ from the blob's name (edited or truncated on disk); ``stat``
    trusts the listing and reads no content.

Commit ids (the exact bytes; ``provgate-commit/v1``)
    A commit's *listing* is one line per object, in path order (the UTF-8
    bytes of the path, which is also Python's and SQLite's order)::

        JCS({"blake3": HEX64, "metadata": {str: str}, "path": str, "size": int}) "\\n"

    where JCS is RFC 8785 (:func:`prov_core.canonical.canonical_json`). The
    *tree id* is the lowercase hex SHA-256 of the listing (the empty listing:
    SHA-256 of no bytes). The *commit body* is::

        JCS({"committer": str, "creation_date": int (Unix seconds),
             "message": str, "metadata": {str: str},
             "parents": [commit id, ...], "tree": tree id,
             "type": "provgate-commit/v1"})

    and the commit id is the lowercase hex SHA-256 of the body. The body is
    stored as it was hashed; :meth:`LocalStore.verify` re-derives the id from
    it, the tree id from the stored listing, and every blob's BLAKE3 from its
    bytes. An object's ``mtime`` is informational and not covered. A new
    field would be a new ``type``; these bytes never change for ``v1``.

Atomicity
    ``commit`` first makes every staged blob durable (``fsync`` of each blob
    and of its directory, in parallel threads), then, in ONE SQLite
    transaction with ``synchronous=FULL``, writes the new listing, the commit
    row, moves the branch head and clears the staging area. A crash (even
    SIGKILL or power loss) before that transaction commits leaves the branch
    on its old head with its staging area intact; after, everything is there.
    Readers see either the old head or the new one, never a half-written
    commit. Staging writes use ``synchronous=NORMAL`` and defer the blob
    ``fsync`` to the commit: a process crash loses nothing, a power loss may
    lose uncommitted staged writes (never a commit).

Concurrency
    SQLite in WAL mode is the one lock: every mutation is a ``BEGIN
    IMMEDIATE`` transaction, so writers from any number of processes and
    threads serialize on SQLite's write lock (waiting up to ``busy_timeout``)
    while readers read a consistent snapshot without blocking. A commit reads
    the staging area and the branch head inside its transaction, so two
    commits on one branch chain (the second's parent is the first) and no
    staged write is lost: lakeFS's semantics, where a branch's staging area is
    shared and a commit takes whatever is staged. Blobs need no lock: they are
    immutable and created by an atomic link of a complete temporary file.
    Chosen over a file lock because the refs, the staging area and the
    listings must change together; SQLite gives that transaction, crash
    recovery and cross-process locking in one well-tested place, as the
    ledger already relies on.

    On PostgreSQL the same statements run in READ COMMITTED transactions
    that lock the branch row: a commit reads the head ``FOR UPDATE``, a
    staging write or deletion reads it ``FOR SHARE``, so a commit waits for
    the writes in flight on its branch and new writes wait for the commit,
    and the staging area a commit reads is the one it clears. The head moves
    by compare-and-set (``UPDATE ... WHERE head = <the head it read>``; a
    miss raises StoreError and commits nothing). Reads run in REPEATABLE
    READ, one snapshot as in SQLite; commits are durable
    (``synchronous_commit = on``).

Limits: a commit stores its whole listing (one row per object), shared only
with commits of identical content; lakeFS shares unchanged ranges between
commits, which a later schema version could adopt. Unreferenced blobs (from
writes never committed or killed mid-write) are not yet garbage-collected.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar, Final, NamedTuple

import blake3

from prov_core._sql import Database, SQLiteDatabase, Tx, is_sqlite_busy
from prov_core.canonical import canonical_json, parse_json
from prov_core.errors import (
    ConfigError,
    FormatError,
    InputError,
    IntegrityError,
    NotFoundError,
    StoreError,
)
from prov_core.home import default_home_path
from prov_core.snapshots.base import (
    _REPO,
    MAX_LIST_AMOUNT,
    Commit,
    DiffEntry,
    ObjectPage,
    ObjectStat,
    check_path,
    is_commit_id,
)

__all__ = [
    "COMMIT_TYPE",
    "MAX_MESSAGE_BYTES",
    "MAX_METADATA_BYTES",
    "MIN_PREFIX",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "LocalStore",
    "commit_body",
    "listing_line",
]

SCHEMA_NAME: Final = "provgate-store"
"""SCHEMA_NAME is the ``meta.schema`` value that marks a provgate store database."""
SCHEMA_VERSION: Final = 1
"""SCHEMA_VERSION is the ``meta.version`` this code reads and writes."""
COMMIT_TYPE: Final = "provgate-commit/v1"
"""COMMIT_TYPE is the ``type`` of every commit body this code writes."""
MAX_METADATA_BYTES: Final = 64 * 1024
"""MAX_METADATA_BYTES bounds the UTF-8 bytes of one metadata map's keys and values."""
MAX_MESSAGE_BYTES: Final = 64 * 1024
"""MAX_MESSAGE_BYTES bounds a commit message (UTF-8 bytes)."""
MIN_PREFIX: Final = 7
"""MIN_PREFIX is the shortest commit-id prefix a ref may be (as lakeFS and git)."""

_DB = "store.sqlite"
_CHUNK = 1 << 20  # streaming unit of blob writes
_PAGE = 1000  # rows per query when walking a whole listing
_EMPTY_TREE = hashlib.sha256(b"").hexdigest()
_BLOB = re.compile(r"[0-9a-f]{64}")
# Branch ids as lakeFS validates them (`^\w[-\w]*$`, ASCII); tags and ref names
# may also hold dots (never "..", never a trailing "." or ".lock", as git refs).
_BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,254}")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")
_HEX_PREFIX = re.compile(r"[0-9a-f]{7,63}")

_TABLES = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE repositories (name TEXT PRIMARY KEY, default_branch TEXT NOT NULL,"
    " created INTEGER NOT NULL) WITHOUT ROWID",
    # body: the commit's canonical bytes, exactly as hashed into its id.
    "CREATE TABLE commits (repo TEXT NOT NULL, id TEXT NOT NULL, tree TEXT NOT NULL,"
    " body BLOB NOT NULL, PRIMARY KEY (repo, id)) WITHOUT ROWID",
    # entries: listings, keyed by tree id (content-addressed, shared across repos).
    "CREATE TABLE entries (tree TEXT NOT NULL, path TEXT NOT NULL, blob TEXT NOT NULL,"
    " size INTEGER NOT NULL, metadata TEXT NOT NULL, mtime INTEGER NOT NULL,"
    " PRIMARY KEY (tree, path)) WITHOUT ROWID",
    "CREATE TABLE branches (repo TEXT NOT NULL, name TEXT NOT NULL, head TEXT NOT NULL,"
    " PRIMARY KEY (repo, name)) WITHOUT ROWID",
    "CREATE TABLE tags (repo TEXT NOT NULL, name TEXT NOT NULL, commit_id TEXT NOT NULL,"
    " PRIMARY KEY (repo, name)) WITHOUT ROWID",
    # staging: uncommitted writes of a branch; blob NULL marks a deletion.
    "CREATE TABLE staging (repo TEXT NOT NULL, branch TEXT NOT NULL, path TEXT NOT NULL,"
    " blob TEXT, size INTEGER NOT NULL, metadata TEXT NOT NULL, mtime INTEGER NOT NULL,"
    " PRIMARY KEY (repo, branch, path)) WITHOUT ROWID",
)
# PostgreSQL: the same tables, in one step (tables store_*).
_MIGRATIONS = ((*_TABLES, f"INSERT INTO meta (key, value) VALUES ('schema', '{SCHEMA_NAME}')"),)
_TABLE_NAMES = frozenset(
    {"meta", "repositories", "commits", "entries", "branches", "tags", "staging"}
)

# Stage a write (blob NULL: a deletion) on a branch, replacing what was staged there.
_STAGE = (
    "INSERT INTO staging (repo, branch, path, blob, size, metadata, mtime)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo, branch, path) DO UPDATE"
    " SET blob = excluded.blob, size = excluded.size, metadata = excluded.metadata,"
    " mtime = excluded.mtime"
)

# One page of a view: the commit's listing overlaid with the branch's staging
# area (:branch NULL: no staging). :hi NULL: no upper bound.
_VIEW_PAGE = """
SELECT path, blob, size, metadata, mtime FROM entries e
 WHERE e.tree = :tree AND e.path > :after AND e.path >= :lo AND (e.path < :hi OR :hi IS NULL)
   AND NOT EXISTS (SELECT 1 FROM staging s
                    WHERE s.repo = :repo AND s.branch = :branch AND s.path = e.path)
UNION ALL
SELECT path, blob, size, metadata, mtime FROM staging s
 WHERE s.repo = :repo AND s.branch = :branch AND s.blob IS NOT NULL
   AND s.path > :after AND s.path >= :lo AND (s.path < :hi OR :hi IS NULL)
ORDER BY path LIMIT :limit
"""


class _Entry(NamedTuple):
    path: str
    blob: str
    size: int
    metadata: str  # canonical JSON of the user metadata
    mtime: int


@dataclass(frozen=True)
class _View:
    """_View is what a ref shows: a commit's listing, plus a branch's staging area."""

    commit: str
    tree: str
    branch: str | None  # staging of this branch overlays the listing


def listing_line(path: str, blob: str, size: int, metadata: Mapping[str, str]) -> bytes:
    """listing_line returns one line of a commit listing (module docstring)."""
    return (
        canonical_json({"blake3": blob, "metadata": dict(metadata), "path": path, "size": size})
        + b"\n"
    )


def commit_body(
    *,
    tree: str,
    parents: Iterable[str],
    message: str,
    committer: str,
    creation_date: int,
    metadata: Mapping[str, str],
) -> bytes:
    """commit_body returns the canonical bytes whose SHA-256 is the commit id."""
    return canonical_json(
        {
            "committer": committer,
            "creation_date": creation_date,
            "message": message,
            "metadata": dict(metadata),
            "parents": list(parents),
            "tree": tree,
            "type": COMMIT_TYPE,
        }
    )


def _utf8_len(text: str, what: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InputError(f"{what} {text!r} is not valid Unicode (lone surrogate)") from None


def _check_metadata(metadata: Mapping[str, str] | None, what: str) -> dict[str, str]:
    """_check_metadata returns a ``str -> str`` copy of ``metadata`` within the size limit."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InputError(f"{what} must be a mapping of str to str, not {type(metadata).__name__}")
    total = 0
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InputError(f"{what} keys and values must be str; {key!r}: {type(value).__name__}")
        if not key or "\x00" in key:
            raise InputError(f"{what} key {key!r} must be non-empty and without NUL")
        total += _utf8_len(key, f"{what} key") + _utf8_len(value, f"{what} value of {key!r}")
        out[key] = value
    if total > MAX_METADATA_BYTES:
        raise InputError(
            f"{what} is {total} bytes; at most {MAX_METADATA_BYTES} bytes of keys and values"
        )
    return out


def _check_object_path(path: str) -> str:
    if not isinstance(path, str):
        raise InputError(f"object path must be str, not {type(path).__name__}")
    check_path(path)
    _utf8_len(path, "object path")
    return path


def _check_repo(repo: str) -> str:
    if not isinstance(repo, str) or not _REPO.fullmatch(repo):
        raise InputError(
            f"repository name {repo!r} must be 3-63 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    return repo


def _check_branch(name: str) -> str:
    if not isinstance(name, str) or not _BRANCH.fullmatch(name):
        raise InputError(
            f"branch name {name!r} must be 1-255 characters of A-Z, a-z, 0-9, '_' and '-', "
            "not starting with '-'"
        )
    return name


def _check_tag(name: str) -> str:
    if (
        not isinstance(name, str)
        or not _TAG.fullmatch(name)
        or ".." in name
        or name.endswith((".", ".lock"))
    ):
        raise InputError(
            f"tag name {name!r} must be 1-255 characters of A-Z, a-z, 0-9, '_', '-' and '.', "
            "without '..', not starting with '-' or '.', not ending with '.' or '.lock'"
        )
    return name


def _parse_ref(ref: str) -> tuple[str, bool]:
    """_parse_ref splits ``NAME`` or ``NAME@`` into the name and whether '@' was given."""
    if not isinstance(ref, str) or not ref:
        raise InputError(f"ref {ref!r} is empty or not a string")
    committed = ref.endswith("@")
    name = ref[:-1] if committed else ref
    if _TAG.fullmatch(name) and ".." not in name:
        return name, committed
    if any(c in name for c in "~^"):
        raise InputError(f"ref {ref!r}: the modifiers ~N and ^N are not supported; use a commit id")
    raise InputError(
        f"malformed ref {ref!r}: expected a commit id, a branch, a tag, BRANCH@, "
        "or a commit-id prefix of at least 7 hex digits"
    )


def _prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """_prefix_bounds returns [lo, hi) holding exactly the strings that start with ``prefix``."""
    if not prefix:
        return "", None
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return prefix, None  # callers also filter with startswith
    nxt = last + 1 if last + 1 != 0xD800 else 0xE000
    return prefix, prefix[:-1] + chr(nxt)


def _default_committer() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "provgate"


class LocalStore:
    """LocalStore is the embedded content-addressed snapshot store (module docstring)."""

    kind: ClassVar[str] = "local"
    scheme: ClassVar[str] = "provgate"

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        committer: str | None = None,
        fsync: bool = True,
        busy_timeout: float = 30.0,
        database: str | None = None,
    ) -> None:
        """__init__ opens (creating if needed) the store at ``root``.

        ``root`` defaults to ``$PROVGATE_HOME/store``. ``committer`` names who
        commits (default: the login name). ``fsync=False`` skips the fsyncs
        that make commits survive a power loss (process crashes stay safe):
        for throwaway stores only. ``database``, a ``postgresql://`` URL, keeps
        the refs, commits, listings and staging there (tables ``store_*``,
        migrated on opening) instead of in ``root/store.sqlite``; blobs stay
        under ``root``, which every writer must then share.
        """
        self.root = Path(root) if root is not None else default_home_path() / "store"
        self.committer = _default_committer() if committer is None else committer
        _utf8_len(self.committer, "committer")
        self.fsync = fsync
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        self._lock = threading.RLock()
        self._fanout: set[str] = set()  # objects/XX directories known to exist
        # (repo, branch) pairs seen to exist: there is no way to delete either,
        # so write() can skip its early check (the staging transaction rechecks).
        self._branches: set[tuple[str, str]] = set()
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._objects.mkdir(mode=0o700, exist_ok=True)
            self._tmp.mkdir(mode=0o700, exist_ok=True)
        except FileExistsError as exc:
            raise ConfigError(f"store path {self.root} exists and is not a directory") from exc
        except OSError as exc:
            raise StoreError(f"cannot create the store at {self.root}: {exc.strerror}") from exc
        self._db: Database | None = None
        if database is not None:
            from prov_core._postgres import open_database

            self._db = open_database(
                database,
                prefix="store_",
                migrations=_MIGRATIONS,
                schema=SCHEMA_NAME,
                what="snapshot store",
                error=StoreError,
                lock_timeout=busy_timeout,
            )
            return
        db = self.root / _DB
        try:
            conn = sqlite3.connect(
                db, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store database {db}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigError(f"store {db}: SQLite refused WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")  # FULL around commits only
            self._open_schema(conn, db)
        except sqlite3.Error as exc:
            conn.close()
            if is_sqlite_busy(exc):
                raise StoreError(f"store {db} is locked: {exc}") from exc
            raise ConfigError(f"{db} is not a usable provgate store: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._db = SQLiteDatabase(conn, db, fsync=fsync)

    # -- database plumbing ---------------------------------------------------

    @staticmethod
    def _open_schema(conn: sqlite3.Connection, db: Path) -> None:
        def tables() -> set[str]:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {str(r[0]) for r in rows}

        if not tables():
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not tables():  # another process may have created it meanwhile
                    for ddl in _TABLES:
                        conn.execute(ddl)
                    conn.executemany(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("schema", SCHEMA_NAME), ("version", str(SCHEMA_VERSION))],
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if not tables() >= _TABLE_NAMES:
            raise ConfigError(f"{db} is not a provgate store (tables missing)")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema") != SCHEMA_NAME:
            raise ConfigError(f"{db} is not a provgate store (meta.schema missing)")
        if meta.get("version") != str(SCHEMA_VERSION):
            raise ConfigError(
                f"store {db} has schema version {meta.get('version')}; "
                f"this provgate reads version {SCHEMA_VERSION}"
            )

    @contextlib.contextmanager
    def _tx(self, doing: str, *, write: bool, durable: bool = False) -> Iterator[Tx]:
        """_tx runs one transaction (a consistent snapshot for reads) under the lock.

        Database errors become StoreError naming ``doing``; any exception rolls back.
        """
        with self._lock:
            db = self._db
            if db is None:
                raise StoreError(f"store {self.root} is closed")
            try:
                with db.transaction(write=write, durable=durable) as tx:
                    yield tx
            except db.errors as exc:
                where = f"store {self.root}: cannot {doing}"
                if db.is_busy(exc):
                    raise StoreError(f"{where}: the store is locked by another writer") from exc
                raise StoreError(f"{where}: {db.message(exc)}") from exc

    def close(self) -> None:
        """close releases the database connection; the store may be reopened."""
        with self._lock:
            db, self._db = self._db, None
            if db is not None:
                try:
                    db.close()
                except db.errors as exc:
                    raise StoreError(f"store {self.root}: cannot close: {exc}") from exc

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # -- refs -----------------------------------------------------------------

    @staticmethod
    def _require_repo(tx: Tx, repo: str) -> None:
        _check_repo(repo)
        if tx.execute("SELECT 1 FROM repositories WHERE name = ?", (repo,)).fetchone() is None:
            raise NotFoundError(f"repository {repo!r} not found")

    @staticmethod
    def _branch_head(tx: Tx, repo: str, branch: str, *, lock: str = "") -> str:
        """_branch_head reads the branch's head; ``lock`` holds the branch row (see Concurrency)."""
        row = tx.execute(
            f"SELECT head FROM branches WHERE repo = ? AND name = ?{lock}", (repo, branch)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"branch {branch!r} not found in repository {repo!r}")
        return str(row[0])

    @staticmethod
    def _tree_of(tx: Tx, repo: str, commit_id: str) -> str:
        row = tx.execute(
            "SELECT tree FROM commits WHERE repo = ? AND id = ?", (repo, commit_id)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"commit {commit_id} not found in repository {repo!r}")
        return str(row[0])

    def _resolve(self, tx: Tx, repo: str, ref: str) -> tuple[str, str | None]:
        """_resolve returns (commit id, branch name if ``ref`` named a branch without '@').

        lakeFS's order: full commit id, branch, tag, unique commit-id prefix.
        """
        self._require_repo(tx, repo)
        name, committed = _parse_ref(ref)
        if committed:
            return self._branch_head(tx, repo, _check_branch(name)), None
        if (
            is_commit_id(name)
            and tx.execute(
                "SELECT 1 FROM commits WHERE repo = ? AND id = ?", (repo, name)
            ).fetchone()
        ):
            return name, None
        row = tx.execute(
            "SELECT head FROM branches WHERE repo = ? AND name = ?", (repo, name)
        ).fetchone()
        if row is not None:
            return str(row[0]), name
        row = tx.execute(
            "SELECT commit_id FROM tags WHERE repo = ? AND name = ?", (repo, name)
        ).fetchone()
        if row is not None:
            return str(row[0]), None
        if _HEX_PREFIX.fullmatch(name):
            rows = tx.execute(
                "SELECT id FROM commits WHERE repo = ? AND id >= ? AND id < ? ORDER BY id LIMIT 11",
                (repo, name, name + "g"),
            ).fetchall()
            if len(rows) == 1:
                return str(rows[0][0]), None
            if rows:
                shown = ", ".join(str(r[0]) for r in rows[:10])
                more = " and more" if len(rows) > 10 else ""
                raise NotFoundError(  # the protocol: a ref that names no single commit
                    f"ref {ref!r} is an ambiguous commit-id prefix in repository {repo!r}: "
                    f"it matches {shown}{more}; give more digits"
                )
        raise NotFoundError(
            f"ref {ref!r} not found in repository {repo!r}: no such commit, branch, tag "
            "or commit-id prefix"
        )

    def _view(self, tx: Tx, repo: str, ref: str) -> _View:
        commit_id, branch = self._resolve(tx, repo, ref)
        return _View(commit_id, self._tree_of(tx, repo, commit_id), branch)

    def create_repository(self, repo: str, default_branch: str = "main") -> None:
        """create_repository creates ``repo`` whose ``default_branch`` holds an empty commit.

        As lakeFS does, the branch starts at a "Repository created" commit
        with an empty listing. An existing repository is an InputError.
        """
        _check_repo(repo)
        _check_branch(default_branch)
        now = int(time.time())
        body = commit_body(
            tree=_EMPTY_TREE,
            parents=(),
            message="Repository created",
            committer=self.committer,
            creation_date=now,
            metadata={},
        )
        commit_id = hashlib.sha256(body).hexdigest()
        with self._tx(f"create repository {repo!r}", write=True, durable=True) as tx:
            created = tx.execute(  # of two processes creating it at once, one inserts
                "INSERT INTO repositories (name, default_branch, created) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (repo, default_branch, now),
            )
            if created.rowcount != 1:
                raise InputError(f"repository {repo!r} already exists")
            tx.execute(
                "INSERT INTO commits (repo, id, tree, body) VALUES (?, ?, ?, ?)",
                (repo, commit_id, _EMPTY_TREE, body),
            )
            tx.execute(
                "INSERT INTO branches (repo, name, head) VALUES (?, ?, ?)",
                (repo, default_branch, commit_id),
            )

    def create_branch(self, repo: str, name: str, source: str) -> str:
        """create_branch creates branch ``name`` at the commit ``source`` resolves to.

        Returns that commit id. The source's staging area is not copied (as lakeFS).
        """
        _check_branch(name)
        with self._tx(f"create branch {name!r}", write=True) as tx:
            commit_id, _ = self._resolve(tx, repo, source)
            if tx.execute(
                "SELECT 1 FROM tags WHERE repo = ? AND name = ?", (repo, name)
            ).fetchone():  # as lakeFS: a branch and a tag never share a name
                raise InputError(f"a tag named {name!r} exists in repository {repo!r}")
            created = tx.execute(
                "INSERT INTO branches (repo, name, head) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (repo, name, commit_id),
            )
            if created.rowcount != 1:
                raise InputError(f"branch {name!r} already exists in repository {repo!r}")
        return commit_id

    def resolve(self, repo: str, ref: str) -> str:
        with self._tx(f"resolve {ref!r}", write=False) as tx:
            return self._resolve(tx, repo, ref)[0]

    def get_commit(self, repo: str, ref: str) -> Commit:
        with self._tx(f"read commit {ref!r}", write=False) as tx:
            commit_id, _ = self._resolve(tx, repo, ref)
            row = tx.execute(
                "SELECT CAST(body AS BLOB) FROM commits WHERE repo = ? AND id = ?",
                (repo, commit_id),
            ).fetchone()
        if row is None:  # resolve found it in the same snapshot
            raise NotFoundError(f"commit {commit_id} not found in repository {repo!r}")
        return _commit_of(commit_id, bytes(row[0]))

    def tag(self, repo: str, name: str, ref: str, *, force: bool = False) -> str:
        """tag points tag ``name`` at the commit ``ref`` resolves to, returning its id.

        An existing tag is an InputError unless ``force=True`` (then it moves):
        tags are refs, never pins.
        """
        _check_tag(name)
        with self._tx(f"create tag {name!r}", write=True) as tx:
            commit_id, _ = self._resolve(tx, repo, ref)
            row = tx.execute(
                "SELECT commit_id FROM tags WHERE repo = ? AND name = ?", (repo, name)
            ).fetchone()
            if row is not None and not force:
                raise InputError(
                    f"tag {name!r} already exists in repository {repo!r} (at {row[0]}); "
                    "pass force=True to move it"
                )
            if tx.execute(
                "SELECT 1 FROM branches WHERE repo = ? AND name = ?", (repo, name)
            ).fetchone():  # as lakeFS: a branch and a tag never share a name
                raise InputError(f"a branch named {name!r} exists in repository {repo!r}")
            tx.execute(
                "INSERT INTO tags (repo, name, commit_id) VALUES (?, ?, ?)"
                " ON CONFLICT (repo, name) DO UPDATE SET commit_id = excluded.commit_id",
                (repo, name, commit_id),
            )
        return commit_id

    # -- objects --------------------------------------------------------------

    def _blob_path(self, digest: str) -> Path:
        return self._objects / digest[:2] / digest[2:]

    def _put_blob(self, data: bytes | bytearray | memoryview | BinaryIO) -> tuple[str, int]:
        """_put_blob stores ``data`` as a blob (streamed) and returns (BLAKE3 hex, size)."""
        hasher = blake3.blake3()  # one thread: AUTO measured 2x slower on 100 KB chunks
        tmp = self._tmp / f"{secrets.token_hex(16)}.tmp"
        size = 0
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb", buffering=0) as out:
                if isinstance(data, bytes | bytearray | memoryview):
                    view = memoryview(data)
                    hasher.update(view)
                    size = len(view)
                    _write_all(out, view)
                else:
                    while True:
                        chunk = data.read(_CHUNK)
                        if not isinstance(chunk, bytes | bytearray | memoryview):
                            raise InputError(
                                f"data.read() returned {type(chunk).__name__}, not bytes"
                            )
                        if not chunk:
                            break
                        hasher.update(chunk)
                        size += len(chunk)
                        _write_all(out, memoryview(chunk))
                os.fchmod(out.fileno(), 0o444)
            digest = hasher.hexdigest()
            final = self._blob_path(digest)
            if digest[:2] not in self._fanout:
                final.parent.mkdir(mode=0o700, exist_ok=True)
                self._fanout.add(digest[:2])
            try:
                os.link(tmp, final)
            except FileExistsError:
                if final.stat().st_size != size:  # a damaged copy: heal it
                    os.replace(tmp, final)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                os.replace(tmp, final)  # no hard links here: same result, atomically
        except OSError as exc:
            raise StoreError(f"store {self.root}: cannot write a blob: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return digest, size

    def _sync_blobs(self, digests: Iterable[str]) -> None:
        """_sync_blobs fsyncs the blobs and their directories (before a commit names them)."""
        if not self.fsync:
            return
        paths = [self._blob_path(d) for d in set(digests)]
        if not paths:
            return
        dirs = {p.parent for p in paths} | {self._objects}

        def sync(path: Path) -> None:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        try:
            if len(paths) < 8:
                for p in [*paths, *dirs]:
                    sync(p)
            else:
                with ThreadPoolExecutor(max_workers=8) as pool:
                    list(pool.map(sync, paths))
                    list(pool.map(sync, dirs))
        except FileNotFoundError as exc:
            raise IntegrityError(
                f"store {self.root}: staged blob {exc.filename} is missing"
            ) from exc
        except OSError as exc:
            raise StoreError(f"store {self.root}: cannot fsync blobs: {exc}") from exc

    def write(
        self,
        repo: str,
        branch: str,
        path: str,
        data: bytes | BinaryIO,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectStat:
        """write stages ``data`` at ``path`` on ``branch``: seen at ``branch``, not ``branch@``."""
        _check_repo(repo)
        _check_branch(branch)
        _check_object_path(path)
        meta = _check_metadata(metadata, f"metadata of {path!r}")
        if (repo, branch) not in self._branches:
            with self._tx(f"write {path!r}", write=False) as tx:  # fail before storing bytes
                self._require_repo(tx, repo)
                self._branch_head(tx, repo, branch)
            self._branches.add((repo, branch))
        digest, size = self._put_blob(data)
        mtime = int(time.time())
        with self._tx(f"write {path!r}", write=True) as tx:
            self._branch_head(tx, repo, branch, lock=tx.dialect.for_share)
            tx.execute(
                _STAGE, (repo, branch, path, digest, size, canonical_json(meta).decode(), mtime)
            )
        return ObjectStat(path=path, size=size, checksum=digest, mtime=mtime, metadata=meta)

    def delete(self, repo: str, branch: str, path: str) -> None:
        """delete stages the removal of ``path`` from ``branch`` (NotFoundError if absent)."""
        _check_repo(repo)
        _check_branch(branch)
        _check_object_path(path)
        with self._tx(f"delete {path!r}", write=True) as tx:
            self._require_repo(tx, repo)
            head = self._branch_head(tx, repo, branch, lock=tx.dialect.for_share)
            view = _View(head, self._tree_of(tx, repo, head), branch)
            if self._lookup(tx, repo, view, path) is None:
                raise NotFoundError(f"object {path!r} not found on branch {branch!r} of {repo!r}")
            tx.execute(_STAGE, (repo, branch, path, None, 0, "{}", int(time.time())))

    @staticmethod
    def _lookup(tx: Tx, repo: str, view: _View, path: str) -> _Entry | None:
        if view.branch is not None:
            row = tx.execute(
                "SELECT path, blob, size, metadata, mtime FROM staging"
                " WHERE repo = ? AND branch = ? AND path = ?",
                (repo, view.branch, path),
            ).fetchone()
            if row is not None:
                return None if row[1] is None else _Entry(*row)
        row = tx.execute(
            "SELECT path, blob, size, metadata, mtime FROM entries WHERE tree = ? AND path = ?",
            (view.tree, path),
        ).fetchone()
        return None if row is None else _Entry(*row)

    def _entry(self, repo: str, ref: str, path: str) -> _Entry:
        _check_object_path(path)
        with self._tx(f"look up {path!r}", write=False) as tx:
            view = self._view(tx, repo, ref)
            entry = self._lookup(tx, repo, view, path)
        if entry is None:
            raise NotFoundError(f"object {path!r} not found at ref {ref!r} of repository {repo!r}")
        return entry

    def stat(self, repo: str, ref: str, path: str) -> ObjectStat:
        """stat returns the object's listing entry (no content is read)."""
        return _stat_of(self._entry(repo, ref, path))

    def read(self, repo: str, ref: str, path: str) -> bytes:
        """read returns the object's bytes after checking their BLAKE3 (IntegrityError if not)."""
        entry = self._entry(repo, ref, path)
        return self._read_blob(entry, f"object {path!r} at {ref!r} of repository {repo!r}")

    def _read_blob(self, entry: _Entry, what: str) -> bytes:
        blob = self._blob_path(entry.blob)
        try:
            with open(blob, "rb") as f:
                data = f.read(entry.size + 1)
        except FileNotFoundError:
            raise IntegrityError(
                f"{what}: blob {entry.blob} is missing from {self._objects}",
                reason="missing blob",
            ) from None
        except OSError as exc:
            raise StoreError(f"{what}: cannot read blob {blob}: {exc.strerror}") from exc
        threads = blake3.blake3.AUTO if len(data) >= _CHUNK * 16 else 1
        got = blake3.blake3(data, max_threads=threads).hexdigest()
        if got != entry.blob or len(data) != entry.size:
            raise IntegrityError(
                f"{what}: blob {blob} holds {len(data)} bytes with BLAKE3 {got}, "
                f"expected {entry.size} bytes with BLAKE3 {entry.blob} (edited on disk?)",
                reason="content differs from its digest",
            )
        return data

    @staticmethod
    def _page(
        tx: Tx, repo: str, view: _View, *, prefix: str, after: str, limit: int
    ) -> list[_Entry]:
        lo, hi = _prefix_bounds(prefix)
        rows = tx.execute(
            _VIEW_PAGE,
            {
                "tree": view.tree,
                "repo": repo,
                "branch": view.branch,
                "after": after,
                "lo": lo,
                "hi": hi,
                "limit": limit,
            },
        ).fetchall()
        return [_Entry(*r) for r in rows if r[0].startswith(prefix)]

    def list_objects(
        self, repo: str, ref: str, prefix: str = "", after: str = "", amount: int = 1000
    ) -> ObjectPage:
        """list_objects returns one page of the objects under ``prefix`` at ``ref``."""
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int)
            or not (1 <= amount <= MAX_LIST_AMOUNT)
        ):
            raise InputError(
                f"amount must be an integer from 1 to {MAX_LIST_AMOUNT}, not {amount!r}"
            )
        for value, what in ((prefix, "prefix"), (after, "after")):
            if not isinstance(value, str) or "\x00" in value:
                raise InputError(f"{what} must be a string without NUL, not {value!r}")
            _utf8_len(value, what)
        with self._tx(f"list {ref!r}", write=False) as tx:
            view = self._view(tx, repo, ref)
            rows = self._page(tx, repo, view, prefix=prefix, after=after, limit=amount + 1)
        has_more = len(rows) > amount
        rows = rows[:amount]
        return ObjectPage(
            results=[_stat_of(e) for e in rows],
            has_more=has_more,
            next_after=rows[-1].path if rows else "",
        )

    def _walk(self, tx: Tx, repo: str, view: _View) -> Iterator[_Entry]:
        after = ""
        while True:
            rows = self._page(tx, repo, view, prefix="", after=after, limit=_PAGE)
            yield from rows
            if len(rows) < _PAGE:
                return
            after = rows[-1].path

    def diff(self, repo: str, left: str, right: str) -> list[DiffEntry]:
        """diff lists what changes from ``left`` to ``right``, in path order.

        ``added``: only at ``right``; ``removed``: only at ``left``; ``changed``:
        at both with other content, size or user metadata. A branch name
        includes its staging area; ``branch@`` does not.
        """
        out: list[DiffEntry] = []
        with self._tx(f"diff {left!r} and {right!r}", write=False) as tx:
            lview = self._view(tx, repo, left)
            rview = self._view(tx, repo, right)
            if lview == rview:
                return out
            lit, rit = self._walk(tx, repo, lview), self._walk(tx, repo, rview)
            a, b = next(lit, None), next(rit, None)
            while a is not None or b is not None:
                if b is None or (a is not None and a.path < b.path):
                    assert a is not None
                    out.append(DiffEntry(a.path, "removed"))
                    a = next(lit, None)
                elif a is None or b.path < a.path:
                    out.append(DiffEntry(b.path, "added"))
                    b = next(rit, None)
                else:
                    if (a.blob, a.size, a.metadata) != (b.blob, b.size, b.metadata):
                        out.append(DiffEntry(a.path, "changed"))
                    a, b = next(lit, None), next(rit, None)
        return out

    # -- commits --------------------------------------------------------------

    def commit(
        self, repo: str, branch: str, message: str, metadata: Mapping[str, str] | None = None
    ) -> Commit:
        """commit records the staged changes of ``branch`` as a new commit, atomically.

        Nothing staged, or staged writes that change nothing, is an InputError
        ("no changes"), as in lakeFS. See the module docstring for atomicity.
        """
        _check_repo(repo)
        _check_branch(branch)
        if not isinstance(message, str):
            raise InputError(f"commit message must be str, not {type(message).__name__}")
        if _utf8_len(message, "commit message") > MAX_MESSAGE_BYTES:
            raise InputError(f"commit message is longer than {MAX_MESSAGE_BYTES} bytes")
        meta = _check_metadata(metadata, "commit metadata")
        # 1. Make the staged blobs durable before any commit can name them.
        with self._tx(f"commit to {branch!r}", write=False) as tx:
            self._require_repo(tx, repo)
            self._branch_head(tx, repo, branch)
            staged = self._staged_blobs(tx, repo, branch)
        self._sync_blobs(staged)
        nothing = False
        # 2. One transaction: listing, commit, branch head, staging cleared. The
        # branch row stays locked until it commits (on PostgreSQL; SQLite's write
        # lock covers everything), so the staging area cannot change under it.
        with self._tx(f"commit to {branch!r}", write=True, durable=True) as tx:
            head = self._branch_head(tx, repo, branch, lock=tx.dialect.for_update)
            late = self._staged_blobs(tx, repo, branch) - staged
            self._sync_blobs(late)  # staged by others since step 1: rare
            rows = tx.execute(
                "SELECT path, blob, size, metadata, mtime FROM staging"
                " WHERE repo = ? AND branch = ? ORDER BY path",
                (repo, branch),
            ).fetchall()
            if not rows:
                raise InputError(
                    f"nothing to commit on branch {branch!r} of repository {repo!r}: no changes"
                )
            parent_tree = self._tree_of(tx, repo, head)
            listing = list(_overlay(self._walk(tx, repo, _View(head, parent_tree, None)), rows))
            tree = _tree_id(listing)
            tx.execute("DELETE FROM staging WHERE repo = ? AND branch = ?", (repo, branch))
            if tree == parent_tree:
                nothing = True  # staged writes identical to the head: drop them
            else:
                if (
                    tx.execute("SELECT 1 FROM entries WHERE tree = ? LIMIT 1", (tree,)).fetchone()
                    is None
                ):
                    tx.executemany(  # another branch may be committing the same tree
                        "INSERT INTO entries (tree, path, blob, size, metadata, mtime)"
                        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [(tree, *e) for e in listing],
                    )
                now = int(time.time())
                body = commit_body(
                    tree=tree,
                    parents=(head,),
                    message=message,
                    committer=self.committer,
                    creation_date=now,
                    metadata=meta,
                )
                commit_id = hashlib.sha256(body).hexdigest()
                tx.execute(
                    "INSERT INTO commits (repo, id, tree, body) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (repo, commit_id, tree, body),
                )
                moved = tx.execute(  # compare-and-set: only from the head this commit read
                    "UPDATE branches SET head = ? WHERE repo = ? AND name = ? AND head = ?",
                    (commit_id, repo, branch, head),
                )
                if moved.rowcount != 1:
                    raise StoreError(
                        f"store {self.root}: branch {branch!r} of {repo!r} moved from {head}"
                        " during the commit; nothing was committed, retry it"
                    )
        if nothing:
            raise InputError(
                f"nothing to commit on branch {branch!r} of repository {repo!r}: no changes "
                "(the staged writes equal the committed objects)"
            )
        return Commit(
            id=commit_id,
            parents=(head,),
            message=message,
            metadata=meta,
            creation_date=now,
            committer=self.committer,
        )

    @staticmethod
    def _staged_blobs(tx: Tx, repo: str, branch: str) -> set[str]:
        rows = tx.execute(
            "SELECT DISTINCT blob FROM staging WHERE repo = ? AND branch = ? AND blob IS NOT NULL",
            (repo, branch),
        )
        return {str(r[0]) for r in rows}

    def verify(self, repo: str, ref: str, *, content: bool = True) -> Commit:
        """verify re-derives the commit's id, its tree id and every blob's BLAKE3.

        Returns the commit, or raises IntegrityError naming the first thing
        that does not match. Reads every byte of the snapshot unless
        ``content=False`` (then only the commit body and listing are checked).
        """
        with self._tx(f"verify {ref!r}", write=False) as tx:
            commit_id, _ = self._resolve(tx, repo, ref)
            row = tx.execute(
                "SELECT tree, CAST(body AS BLOB) FROM commits WHERE repo = ? AND id = ?",
                (repo, commit_id),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"commit {commit_id} not found in repository {repo!r}")
            tree, body = str(row[0]), bytes(row[1])
            listing = list(self._walk(tx, repo, _View(commit_id, tree, None)))
        got = hashlib.sha256(body).hexdigest()
        if got != commit_id:
            raise IntegrityError(
                f"commit {commit_id} of {repo!r}: its stored body hashes to {got}",
                reason="commit body differs from its id",
            )
        commit = _commit_of(commit_id, body)
        if _body_tree(body) != tree or _tree_id(listing) != tree:
            raise IntegrityError(
                f"commit {commit_id} of {repo!r}: its stored listing does not hash to tree {tree}",
                reason="listing differs from the commit",
            )
        for entry in listing if content else ():
            self._read_blob(entry, f"object {entry.path!r} of commit {commit_id} in {repo!r}")
        return commit


def _write_all(out: BinaryIO, view: memoryview) -> None:
    while view:
        n = out.write(view)
        view = view[n:]


def _overlay(
    committed: Iterable[_Entry], staged: list[tuple[str, str | None, int, str, int]]
) -> Iterator[_Entry]:
    """_overlay merges staged rows (path order; blob None = deletion) over a listing."""
    it = iter(staged)
    s = next(it, None)
    for e in committed:
        while s is not None and s[0] < e.path:
            if s[1] is not None:
                yield _Entry(s[0], s[1], s[2], s[3], s[4])
            s = next(it, None)
        if s is not None and s[0] == e.path:
            if s[1] is not None:
                yield _Entry(s[0], s[1], s[2], s[3], s[4])
            s = next(it, None)
        else:
            yield e
    while s is not None:
        if s[1] is not None:
            yield _Entry(s[0], s[1], s[2], s[3], s[4])
        s = next(it, None)


def _tree_id(listing: Iterable[_Entry]) -> str:
    h = hashlib.sha256()
    for e in listing:
        h.update(listing_line(e.path, e.blob, e.size, json.loads(e.metadata)))
    return h.hexdigest()


def _stat_of(e: _Entry) -> ObjectStat:
    return ObjectStat(
        path=e.path, size=e.size, checksum=e.blob, mtime=e.mtime, metadata=json.loads(e.metadata)
    )


def _parse_body(body: bytes) -> dict[str, object]:
    try:
        value = parse_json(body)
    except FormatError as exc:
        raise IntegrityError(f"stored commit body does not parse: {exc}") from exc
    if not isinstance(value, dict) or value.get("type") != COMMIT_TYPE:
        raise IntegrityError(f"stored commit body is not a {COMMIT_TYPE} object")
    return value


def _body_tree(body: bytes) -> str:
    return str(_parse_body(body).get("tree"))


def _commit_of(commit_id: str, body: bytes) -> Commit:
    """_commit_of reads a stored commit body strictly (IntegrityError if it is malformed)."""
    v = _parse_body(body)
    parents, metadata = v.get("parents"), v.get("metadata")
    message, committer, date = v.get("message"), v.get("committer"), v.get("creation_date")
    if (
        not isinstance(parents, list)
        or not all(isinstance(p, str) and is_commit_id(p) for p in parents)
        or not isinstance(metadata, dict)
        or not all(isinstance(k, str) and isinstance(x, str) for k, x in metadata.items())
        or not isinstance(message, str)
        or not isinstance(committer, str)
        or not isinstance(date, int)
        or not _BLOB.fullmatch(str(v.get("tree")))
    ):
        raise IntegrityError(f"stored body of commit {commit_id} is malformed")
    return Commit(
        id=commit_id,
        parents=tuple(parents),
        message=message,
        metadata=metadata,
        creation_date=date,
        committer=committer,
    )
