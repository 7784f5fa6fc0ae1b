"""Fixtures: the reference pipeline materialized for real, in-process, on an ephemeral instance."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    ExecuteInProcessResult,
    materialize,
)

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:  # example_pipelines lives at the repository root
    sys.path.insert(0, str(REPO))

from prov_dagster import ProvenanceResource, provenance_checks  # noqa: E402

from example_pipelines import dagster_pipeline as example  # noqa: E402

SOURCES = ("handbook", "forum", "books")


@dataclass
class World:
    """An ephemeral instance, a provgate home and a work directory the example writes to."""

    instance: DagsterInstance
    home: Path
    workdir: Path
    policy: str | None = None

    def resources(self, **overrides: Any) -> dict[str, Any]:
        return {
            "provenance": ProvenanceResource(home=str(self.home), policy=self.policy),
            "workdir": example.Workdir(path=str(self.workdir)),
            **overrides,
        }

    def run(
        self,
        assets: Sequence[Any],
        *,
        extra: Sequence[Any] = (),
        partition: str | None = None,
        checks: bool = False,
        raise_on_error: bool = True,
        **resources: Any,
    ) -> ExecuteInProcessResult:
        """Materialize ``assets`` (with their provenance checks when ``checks``)."""
        every = [*example.all_assets, *extra]
        selection = AssetSelection.assets(*assets)
        if not checks:
            selection = selection.without_checks()
        return materialize(
            [*every, *provenance_checks(every)],
            selection=selection,
            partition_key=partition,
            resources=self.resources(**resources),
            instance=self.instance,
            raise_on_error=raise_on_error,
        )

    def check(self, *assets: Any, **resources: Any) -> dict[str, Any]:
        """Run only the provenance_verified checks of ``assets``; key -> evaluation."""
        every = list(example.all_assets)
        result = materialize(
            [*every, *provenance_checks(every)],
            selection=AssetSelection.checks_for_assets(*assets),
            resources=self.resources(**resources),
            instance=self.instance,
        )
        return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}

    def ingest_and_clean(self, *sources: str) -> None:
        for source in sources:
            self.run([example.raw_documents, example.clean_corpus], partition=source)

    def materialization(self, key: str, partition: str | None = None) -> Any:
        from dagster import AssetRecordsFilter

        records = self.instance.fetch_materializations(
            AssetRecordsFilter(
                asset_key=AssetKey(key), asset_partitions=None if partition is None else [partition]
            ),
            limit=1,
        ).records
        assert records, f"{key} {partition} was not materialized"
        return records[0].asset_materialization

    def open_home(self) -> Any:
        from prov_core.home import open_home

        return open_home(self.home)


def new_world(tmp_path: Path) -> World:
    return World(
        DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster")),
        tmp_path / "home",
        tmp_path / "work",
    )


@pytest.fixture
def world(tmp_path: Path) -> World:
    return new_world(tmp_path)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The whole reference pipeline, materialized once per module (read-only tests)."""
    w = new_world(tmp_path_factory.mktemp("full"))
    w.ingest_and_clean(*SOURCES)
    w.run(
        [example.corpus_snapshot, example.model, example.retrieval_index, example.answers],
        checks=True,
    )
    return w
