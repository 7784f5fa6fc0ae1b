"""A pinned provgate snapshot as an MLflow dataset input.

:class:`SnapshotDataset` is what :class:`~prov_mlflow.run.TrainingRun` passes to
``mlflow.log_input``; MLflow stores it as::

    name         REPO@COMMIT[:12] (plus /PATH when the input is a path in the snapshot)
    digest       the first 36 hex digits of the snapshot manifest's SHA-256 (the subject
                 of the signed snapshot record); 36 characters is MLflow's limit
    source_type  "provgate"
    source       {"uri": "provgate://REPO/COMMIT[/PATH]"}   (lakefs:// for lakeFS)
    profile      {"provgate": {"uri", "repository", "commit", "manifest_sha256",
                               "record", "record_sha256"}}   full digests, as JSON

:class:`SnapshotSource` is registered with MLflow (entry point
``mlflow.dataset_source``), so ``mlflow.data.get_source(dataset_input)``
rebuilds it from a run's inputs; its ``load()`` copies the snapshot's objects
out of the store.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mlflow.data.dataset import Dataset
from mlflow.data.dataset_source import DatasetSource

from prov_core.tracking import PinnedInput

__all__ = ["DIGEST_LENGTH", "SOURCE_TYPE", "SnapshotDataset", "SnapshotSource"]

SOURCE_TYPE = "provgate"
"""SOURCE_TYPE is the ``source_type`` of a provgate snapshot in MLflow."""
DIGEST_LENGTH = 36
"""DIGEST_LENGTH is MLflow's limit on a dataset digest (mlflow.utils.validation)."""


class SnapshotSource(DatasetSource):  # type: ignore[misc]
    """SnapshotSource is a snapshot URI as an MLflow dataset source."""

    def __init__(self, uri: str) -> None:
        from prov_core.snapshots.base import SnapshotURI

        SnapshotURI.parse(uri)  # strict: raises InputError naming what is wrong
        self._uri = uri

    @property
    def uri(self) -> str:
        """uri is the snapshot URI, ``provgate://REPO/COMMIT[/PATH]`` or ``lakefs://...``."""
        return self._uri

    @staticmethod
    def _get_source_type() -> str:
        return SOURCE_TYPE

    def load(self, dst_path: str | None = None) -> str:
        """load copies the snapshot's objects (under the URI's path) into ``dst_path``.

        Each object is read through the store, which checks it against its
        content address; the snapshot is not judged here (the gate does that).
        The home is ``$PROVGATE_HOME``. Returns the directory written.
        """
        from prov_core.home import open_home
        from prov_core.snapshot_record import read_snapshot

        out = Path(dst_path or tempfile.mkdtemp(prefix="provgate-snapshot-"))
        for path, data in read_snapshot(self._uri, open_home()).items():
            target = out / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return str(out)

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return isinstance(raw_source, str) and raw_source.startswith(("provgate://", "lakefs://"))

    @classmethod
    def _resolve(cls, raw_source: Any) -> SnapshotSource:
        return cls(str(raw_source))

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self._uri}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> SnapshotSource:
        return cls(str(source_dict["uri"]))


class SnapshotDataset(Dataset):  # type: ignore[misc]
    """SnapshotDataset is one pinned input of a gated run, as ``mlflow.log_input`` takes it."""

    def __init__(self, pinned: PinnedInput) -> None:
        from prov_core.snapshots.base import SnapshotURI

        self._pinned = pinned
        path = SnapshotURI.parse(pinned.uri).path.strip("/")
        name = f"{pinned.repository}@{pinned.commit[:12]}" + (f"/{path}" if path else "")
        super().__init__(source=SnapshotSource(pinned.uri), name=name)

    @property
    def pinned(self) -> PinnedInput:
        """pinned is the input as the signed gate decision names it."""
        return self._pinned

    def _compute_digest(self) -> str:
        return self._pinned.manifest_sha256[:DIGEST_LENGTH]

    @property
    def profile(self) -> dict[str, Any]:
        """profile carries the full digests and the snapshot record (see the module doc)."""
        return {"provgate": self._pinned.to_dict()}

    @property
    def schema(self) -> None:
        return None

    def to_dict(self) -> dict[str, str]:
        config: dict[str, str] = super().to_dict()
        config["profile"] = json.dumps(self.profile, sort_keys=True)
        return config
