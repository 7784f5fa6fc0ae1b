"""Where a dataset came from on the Hugging Face Hub: repository and revision, from its cache.

``datasets`` keeps a Hub dataset, once downloaded and prepared, under
``{cache}/{namespace}___{name}/{config}/{version}/{commit}/``, where
``commit`` is the 40-hex commit id of the dataset repository it read
(``HubDatasetModuleFactory`` hands it to the builder as its ``hash``; a
dataset served from the Hub's Parquet conversion has the commit of that
branch). :func:`hub_origin` reads it from the paths of the dataset's
``cache_files``, and prefers the exact repository id where the dataset's
``info.download_checksums`` names ``hf://datasets/{repo}@{commit}/...`` files
(recorded when the dataset was verified on download). A dataset built in
memory, or from local files, has no Hub origin.

The cache directory lowercases the dataset's name (``datasets.naming``), so
``Org/MyReviews`` reads back as ``Org/myreviews``; pass ``repo_id=`` to name
it exactly: it is checked against the directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Final

from prov_core.errors import InputError

if TYPE_CHECKING:
    import datasets

__all__ = ["HubOrigin", "hub_origin"]

_COMMIT: Final = re.compile(r"[0-9a-f]{40}")
_HF_URL: Final = re.compile(r"hf://datasets/([^@/]+/[^@/]+)@([0-9a-f]{40})/")


@dataclass(frozen=True)
class HubOrigin:
    """HubOrigin is a Hub dataset repository at one commit, and the part of it a dataset is."""

    repo_id: str
    revision: str
    config: str
    split: str | None
    files: tuple[str, ...]

    @property
    def uri(self) -> str:
        """``hf://datasets/REPO@REVISION``: the repository at that commit (as huggingface_hub
        writes it)."""
        return f"hf://datasets/{self.repo_id}@{self.revision}"

    @property
    def name(self) -> str:
        """``REPO:CONFIG/SPLIT``: what the ingest record's subject is called."""
        return f"{self.repo_id}:{self.config}" + (f"/{self.split}" if self.split else "")


def _from_path(filename: str) -> tuple[str, str, str] | None:
    """_from_path is ``(repo id, config, commit)`` of a cache file in the Hub layout, or None."""
    parts = PurePosixPath(filename).parts
    if len(parts) < 5:
        return None
    folder, config, _version, commit = parts[-5:-1]
    namespace, sep, name = folder.partition("___")
    if not sep or not namespace or not name or not _COMMIT.fullmatch(commit):
        return None
    return f"{namespace}/{name}", config, commit


def _snake(name: str) -> str:
    from datasets.naming import camelcase_to_snakecase

    return str(camelcase_to_snakecase(name))


def hub_origin(dataset: datasets.Dataset, *, repo_id: str | None = None) -> HubOrigin | None:
    """hub_origin returns the Hub repository and commit ``dataset`` was read from, or None.

    None when no cache file is in the Hub layout (a dataset built in memory,
    or from local files). Raises :class:`~prov_core.errors.InputError` when
    its cache files come from several repositories or commits (concatenated
    datasets: ingest each part on its own), when ``info.download_checksums``
    names another commit than the cache, or when ``repo_id`` is not the
    repository the cache holds.
    """
    files = tuple(str(f["filename"]) for f in dataset.cache_files)
    found = {o for o in map(_from_path, files) if o is not None}
    if not found:
        return None
    if len(found) > 1:
        shown = ", ".join(f"{r}@{c} ({cfg})" for r, cfg, c in sorted(found))
        raise InputError(
            f"the dataset's cache files come from several Hub datasets ({shown}); "
            "ingest each one on its own"
        )
    ((cached, config, commit),) = found
    checksums = dataset.info.download_checksums or {}
    named = {m.groups() for m in map(_HF_URL.match, checksums) if m is not None}
    exact = {r for r, c in named if c == commit}
    if named and not exact:
        raise InputError(
            f"the dataset's info names Hub files at {sorted(named)} but its cache holds commit "
            f"{commit} of {cached}: the cache and its metadata disagree; load it again"
        )
    found_id = next(iter(exact)) if len(exact) == 1 else cached
    if repo_id is not None:
        namespace, _, name = repo_id.partition("/")
        if f"{namespace}/{_snake(name)}" != cached:
            raise InputError(
                f"repo_id {repo_id!r} is not the Hub dataset the cache holds ({cached} at "
                f"commit {commit})"
            )
        found_id = repo_id
    split = str(dataset.split) if dataset.split is not None else None
    return HubOrigin(found_id, commit, config, split, files)
