"""The sample sets of ingests, kept so that a sample can later be proven in or out.

An ingest record signs only a sample set's summary (count, leaf encoding,
Merkle root). Proving that one sample is — or is not — in the set needs the
sorted ids themselves, so :func:`~prov_core.ingest.ingest_path` stores them
here, under ``$PROVGATE_HOME/samples/``::

    samples/<root hex>.<leaf encoding with "/" as "@">.ids   count * 32 bytes, ascending

Files are content-addressed by their root and written atomically, so one
set is stored once however often it is ingested, and a reader sees a whole
file or none. The store is a cache of what the signed records commit to:
:meth:`SampleStore.get` recomputes the root of what it reads and refuses a
file whose ids do not hash to the root asked for (IntegrityError), so an
edited file can never yield a proof.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from prov_core._fs import write_atomic
from prov_core._samples import ID_SIZE, SampleSet, sorted_root
from prov_core.errors import InputError, IntegrityError, NotFoundError, StoreError

__all__ = ["SAMPLES_DIR", "SampleStore"]

SAMPLES_DIR: Final = "samples"
"""SAMPLES_DIR is the directory under ``$PROVGATE_HOME`` that holds sample sets."""

_ROOT = re.compile(r"[0-9a-f]{64}")
_ENCODING = re.compile(r"[a-z0-9.-]+/v[0-9]+")


class SampleStore:
    """SampleStore keeps sorted sample ids by Merkle root (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"SampleStore({str(self.path)!r})"

    def _file(self, root: str, leaf_encoding: str) -> Path:
        if not _ROOT.fullmatch(root):
            raise InputError(f"sample set root {root!r} must be 64 lowercase hex digits")
        if not _ENCODING.fullmatch(leaf_encoding):
            raise InputError(f"leaf encoding {leaf_encoding!r} is not like 'provgate-row/v1'")
        return self.path / f"{root}.{leaf_encoding.replace('/', '@')}.ids"

    def put(self, samples: SampleSet) -> Path:
        """put stores a sample set (once per root) and returns its file."""
        target = self._file(samples.root.hex(), samples.leaf_encoding)
        if target.is_file() and target.stat().st_size == samples.count * ID_SIZE:
            return target
        try:
            self.path.mkdir(mode=0o700, exist_ok=True)
            write_atomic(target, samples.sorted_ids(), mode=0o644)
        except OSError as exc:
            raise StoreError(f"cannot store sample set {target.name}: {exc.strerror}") from exc
        return target

    def has(self, root: str, leaf_encoding: str) -> bool:
        """has reports whether the set with this root and encoding is stored."""
        return self._file(root, leaf_encoding).is_file()

    def get(self, root: str, leaf_encoding: str, count: int | None = None) -> SampleSet:
        """get reads the set a signed summary names; its ids must hash to ``root``.

        Raises :class:`NotFoundError` when it is not stored here and
        :class:`IntegrityError` when the file does not hold that set.
        """
        target = self._file(root, leaf_encoding)
        try:
            blob = target.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"sample set {root} ({leaf_encoding}) is not stored in {self.path}: it was "
                "ingested elsewhere, or before provgate kept sample sets"
            ) from None
        except OSError as exc:
            raise StoreError(f"cannot read sample set {target}: {exc.strerror}") from exc
        if len(blob) % ID_SIZE or (count is not None and len(blob) != count * ID_SIZE):
            raise IntegrityError(
                f"{target}: {len(blob)} bytes, not the {count} ids of the signed sample set",
                reason="sample set differs",
            )
        got = sorted_root(blob)  # the signed root was made over sorted ids: it implies the order
        if got.hex() != root:
            raise IntegrityError(
                f"{target}: ids hash to root {got.hex()}, not the signed root {root}",
                reason="sample set differs",
            )
        return SampleSet(blob, leaf_encoding=leaf_encoding, root=got)
