"""The SnapshotStore protocol: immutable dataset snapshots, lakeFS-style.

A store holds repositories; a repository has branches (movable refs with a
staging area), tags (named refs — lakeFS lets them be moved or deleted, so
they are never pins) and commits (immutable, identified by a 64-hex id). A
snapshot is pinned ONLY by a full commit id.

Ref resolution follows lakeFS (``graveler``): a full 64-hex commit id, then a
branch, then a tag, then a unique commit-id prefix. ``branch@`` means the
branch's committed head (its staging area ignored).

The implementer's contract:

- ``kind`` names the backend (``"local"``, ``"lakefs"``); ``scheme`` is its
  URI scheme (``provgate``, ``lakefs``).
- **resolve(repo, ref)** returns the full commit id ``ref`` points at, or
  raises :class:`~prov_core.errors.NotFoundError`. Never guesses: an ambiguous
  prefix is a :class:`~prov_core.errors.NotFoundError` too (the local store
  names the candidates; lakeFS reports plain not-found).
- **get_commit(repo, ref)** returns the :class:`Commit` ``ref`` resolves to.
- **list_objects(repo, ref, prefix="", after="", amount=1000)** returns one
  :class:`ObjectPage` of objects at ``ref`` in path order, strictly after
  ``after``; ``amount`` is at most 1000 (lakeFS's limit).
- **stat(repo, ref, path)** and **read(repo, ref, path)** return an object's
  :class:`ObjectStat` and bytes at ``ref``.
- **write(repo, branch, path, data, metadata)** stages an object on a branch
  with user metadata (provgate stores its own digests there: a store's own
  checksum is an MD5 or ETag, not a strong hash).
- **commit(repo, branch, message, metadata)** commits the branch's staged
  changes atomically and returns the new :class:`Commit`; metadata is
  ``str -> str``.
- **tag(repo, name, ref)** creates a tag and returns the commit id it points
  at; **diff(repo, left, right)** lists what changed between two refs.
- **create_repository(repo, default_branch)** and **create_branch(repo,
  name, source)** set a repository up.
- Paths are relative POSIX paths: no leading ``/``, no ``.``/``..``
  segments, no empty segments, no NUL; anything else is an
  :class:`~prov_core.errors.InputError`. Failures to reach the store raise
  :class:`~prov_core.errors.StoreError` (``raise ... from`` the cause).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, ClassVar, Literal, Protocol, runtime_checkable

from prov_core.errors import InputError

__all__ = [
    "MAX_LIST_AMOUNT",
    "Commit",
    "DiffEntry",
    "ObjectPage",
    "ObjectStat",
    "SnapshotStore",
    "SnapshotURI",
    "check_path",
    "is_commit_id",
]

MAX_LIST_AMOUNT = 1000
"""MAX_LIST_AMOUNT is the largest page ``list_objects`` returns (lakeFS's limit)."""

_COMMIT_ID = re.compile(r"[0-9a-f]{64}")
_REPO = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")  # lakeFS repository id rules


def is_commit_id(ref: str) -> bool:
    """is_commit_id reports whether ``ref`` is a full 64-hex commit id (a pin)."""
    return _COMMIT_ID.fullmatch(ref) is not None


def check_path(path: str) -> str:
    """check_path returns ``path`` if it is a safe relative object path, else raises InputError."""
    if not path or len(path) > 1024:
        raise InputError(f"object path {path!r} must be 1..1024 characters")
    if path.startswith("/") or "\x00" in path or "\\" in path:
        raise InputError(f"object path {path!r} must be relative, without NUL or backslash")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InputError(f"object path {path!r} has an empty, '.' or '..' segment")
    return path


@dataclass(frozen=True)
class Commit:
    """Commit is an immutable snapshot: its id, parents, message and metadata."""

    id: str
    parents: tuple[str, ...]
    message: str
    metadata: Mapping[str, str]
    creation_date: int  # Unix seconds
    committer: str = ""


@dataclass(frozen=True)
class ObjectStat:
    """ObjectStat describes one object at a ref; ``metadata`` holds user metadata."""

    path: str
    size: int
    checksum: str  # the store's own (MD5/ETag for lakeFS; BLAKE3 for the local store)
    mtime: int
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectPage:
    """ObjectPage is one page of ``list_objects``; ``next_after`` continues it."""

    results: Sequence[ObjectStat]
    has_more: bool
    next_after: str


@dataclass(frozen=True)
class DiffEntry:
    """DiffEntry is one path that differs between two refs."""

    path: str
    type: Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class SnapshotURI:
    """SnapshotURI is ``SCHEME://REPO/REF[/PATH]`` (lakectl's convention).

    ``lakefs://`` names a lakeFS repository, ``provgate://`` the embedded store.
    """

    scheme: Literal["lakefs", "provgate"]
    repository: str
    ref: str
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> SnapshotURI:
        """parse reads a snapshot URI strictly, naming what is wrong."""
        scheme, sep, rest = text.partition("://")
        if not sep or scheme not in ("lakefs", "provgate"):
            raise InputError(
                f"{text!r} is not a snapshot URI: expected lakefs://REPO/REF[/PATH] "
                "or provgate://REPO/REF[/PATH]"
            )
        repo, _, tail = rest.partition("/")
        ref, _, path = tail.partition("/")
        if not _REPO.fullmatch(repo):
            raise InputError(f"{text!r}: repository {repo!r} must match {_REPO.pattern}")
        if not ref or any(c in ref for c in " \t\n~^:?*[\\"):
            raise InputError(f"{text!r}: missing or malformed ref {ref!r}")
        if path:
            check_path(path.rstrip("/") or path)
        return cls(scheme, repo, ref, path)  # type: ignore[arg-type]

    def __str__(self) -> str:
        tail = f"/{self.path}" if self.path else ""
        return f"{self.scheme}://{self.repository}/{self.ref}{tail}"

    @property
    def pinned(self) -> bool:
        """pinned reports whether the ref is a full commit id."""
        return is_commit_id(self.ref)


@runtime_checkable
class SnapshotStore(Protocol):
    """SnapshotStore is a lakeFS-like versioned object store (contract: module docstring)."""

    kind: ClassVar[str]
    scheme: ClassVar[str]

    def create_repository(self, repo: str, default_branch: str = "main") -> None: ...

    def create_branch(self, repo: str, name: str, source: str) -> str: ...

    def resolve(self, repo: str, ref: str) -> str: ...

    def get_commit(self, repo: str, ref: str) -> Commit: ...

    def list_objects(
        self, repo: str, ref: str, prefix: str = "", after: str = "", amount: int = 1000
    ) -> ObjectPage: ...

    def stat(self, repo: str, ref: str, path: str) -> ObjectStat: ...

    def read(self, repo: str, ref: str, path: str) -> bytes: ...

    def write(
        self,
        repo: str,
        branch: str,
        path: str,
        data: bytes | BinaryIO,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectStat: ...

    def commit(
        self, repo: str, branch: str, message: str, metadata: Mapping[str, str] | None = None
    ) -> Commit: ...

    def tag(self, repo: str, name: str, ref: str) -> str: ...

    def diff(self, repo: str, left: str, right: str) -> list[DiffEntry]: ...
