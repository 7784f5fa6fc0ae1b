"""Immutable dataset snapshots: the SnapshotStore protocol and its backends."""

from prov_core.snapshots.base import (
    Commit,
    DiffEntry,
    ObjectPage,
    ObjectStat,
    SnapshotStore,
    SnapshotURI,
    check_path,
    is_commit_id,
)

__all__ = [
    "Commit",
    "DiffEntry",
    "ObjectPage",
    "ObjectStat",
    "SnapshotStore",
    "SnapshotURI",
    "check_path",
    "is_commit_id",
]
