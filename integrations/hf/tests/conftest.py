"""Hugging Face offline, with every cache in a temporary directory, before datasets is imported.

Nothing here reaches the network: ``HF_HUB_OFFLINE`` and ``HF_DATASETS_OFFLINE``
are set before ``datasets`` and ``huggingface_hub`` read their settings, and a
dataset "from the Hub" is built locally and laid out as the Hub loader caches
it (``hub_dataset``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_HOME = tempfile.mkdtemp(prefix="provgate-hf-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ["HF_HOME"] = _HOME
os.environ["HF_DATASETS_CACHE"] = os.path.join(_HOME, "datasets")
os.environ["HF_HUB_CACHE"] = os.path.join(_HOME, "hub")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import datasets  # noqa: E402  (after the environment above)
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

datasets.disable_progress_bars()

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REVIEWS = pa.table(
    {
        "text": ["great phone", "broke in a week", None, "fine", "héllo"],
        "stars": pa.array([5, 1, 3, None, 4], pa.int32()),
        "helpful": [True, False, None, True, False],
        "score": pa.array([0.9, -0.0, None, float("nan"), 0.25], pa.float32()),
    }
)


@dataclass(frozen=True)
class Hub:
    """A dataset "downloaded" from the Hub: its cache root, repository, commit and rows."""

    cache: Path
    repo_id: str
    commit: str
    table: pa.Table

    def load(self, split: str = "train", **kwargs: Any) -> datasets.Dataset:
        ds = datasets.load_dataset(self.repo_id, split=split, cache_dir=str(self.cache), **kwargs)
        assert isinstance(ds, datasets.Dataset)
        return ds


def build_hub_cache(
    tmp: Path, repo_id: str, commit: str, table: pa.Table, license: str = "cc-by-4.0"
) -> Hub:
    """Prepare ``table`` with datasets' own Parquet builder (hash = the commit, as the Hub
    loader passes it) and lay the result out where the Hub loader caches a repository:
    ``{cache}/{namespace}___{name}/default/0.0.0/{commit}/``."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    namespace, name = repo_id.split("/")
    src = tmp / "src"
    src.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, src / "train.parquet")
    pq.write_table(table.slice(0, 2), src / "test.parquet")
    builder = Parquet(
        cache_dir=str(tmp / "build"),
        dataset_name=name,
        hash=commit,
        config_name="default",
        data_files={"train": [str(src / "train.parquet")], "test": [str(src / "test.parquet")]},
        info=datasets.DatasetInfo(license=license),
    )
    builder.download_and_prepare()
    prepared = next(p for p in (tmp / "build").rglob("dataset_info.json")).parent
    cache = tmp / "cache"
    target = cache / f"{namespace}___{name}" / "default" / "0.0.0" / commit
    target.parent.mkdir(parents=True)
    shutil.copytree(prepared, target)
    return Hub(cache, repo_id, commit, table)


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return build_hub_cache(tmp_path, "org/reviews", COMMIT, REVIEWS)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Any]:
    """A fresh provgate home with its recorder and content index: ``(home, recorder, index)``."""
    from prov_core.home import init_home
    from prov_core.step import Recorder

    home, _ = init_home(tmp_path / "home")
    with Recorder.from_home(home) as recorder, home.open_index() as index:
        yield home, recorder, index
