"""lakeFS snapshots through the Dagster adapter, against the spec-validated test lakeFS.

The server is tests/snapshots/lakefs_server.py (the core's), served on 127.0.0.1 and
spoken to with the real lakefs-sdk; every exchange is validated against lakeFS's own
OpenAPI spec (``../shared/vendor/lakefs``: skipped visibly without it, failed under
``PROVGATE_REQUIRE_SERVICES=1``). The adapter finds lakeFS as lakectl does, from
``LAKECTL_*`` environment variables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from dagster import AssetKey, AssetSelection, DagsterInstance, materialize
from prov_dagster import (
    Ingest,
    ProvenanceResource,
    Snapshot,
    provenance_asset,
    provenance_checks,
)

from prov_core import open_output
from prov_core.ingest import IngestRequest
from prov_core.snapshots.lakefs import (
    ENV_ACCESS_KEY_ID,
    ENV_ENDPOINT,
    ENV_SECRET_ACCESS_KEY,
    LakeFSStore,
)

assert str(REPO)  # the repository root is on sys.path (conftest): the core's test server
from tests.snapshots.lakefs_server import FakeLakeFS, required_spec  # noqa: E402

KEY, SECRET = "AKIAPROVGATEDAGSTER", "dagster-lakefs-test-secret"  # the test server's only pair
COMMIT_URI = re.compile(r"lakefs://lake/[0-9a-f]{64}")


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLakeFS]:
    """A fresh test lakeFS with repository ``lake`` (branch main), configured as lakectl is."""
    spec = required_spec()
    with FakeLakeFS(KEY, SECRET, spec) as server:
        with LakeFSStore(server.url, KEY, SECRET) as store:
            store.create_repository("lake", "main")
        monkeypatch.setenv(ENV_ENDPOINT, server.url)
        monkeypatch.setenv(ENV_ACCESS_KEY_ID, KEY)
        monkeypatch.setenv(ENV_SECRET_ACCESS_KEY, SECRET)
        yield server
        server.check()  # no exchange violated lakeFS's spec


def _assets(tmp_path: Path, *, branch_ref: bool = False) -> list[Any]:
    source, clean = tmp_path / "source", tmp_path / "clean"
    source.mkdir()
    (source / "a.txt").write_text("first document\n")
    (source / "b.txt").write_text("second document\n")

    @provenance_asset
    def raw() -> Ingest:
        return Ingest(source, IngestRequest(source="https://example.org/docs", license="MIT"))

    @provenance_asset(deps=[raw])
    def cleaned() -> list[Path]:
        clean.mkdir(exist_ok=True)
        out = []
        for f in sorted(source.iterdir()):
            with open_output(clean / f.name) as sink:
                sink.write(f.read_bytes().upper())
            out.append(clean / f.name)
        return out

    @provenance_asset(deps=[cleaned])
    def lake_snapshot() -> Snapshot:
        return Snapshot(clean, repo="lake", branch="main", prefix="clean", scheme="lakefs")

    def branch(context: Any, pinned: list[str]) -> list[str]:
        return ["lakefs://lake/main/clean"]  # a branch is a ref, never a pin

    @provenance_asset(
        deps=[lake_snapshot], training=True, gate_inputs=branch if branch_ref else None
    )
    def model(pinned: list[str], provenance: ProvenanceResource) -> Path:
        corpus: dict[str, bytes] = {}
        for uri in pinned:
            corpus.update(provenance.read_snapshot(uri))
        out = tmp_path / "model.txt"
        out.write_bytes(b"".join(corpus[k] for k in sorted(corpus)))
        return out

    return [raw, cleaned, lake_snapshot, model]


def _run(tmp_path: Path, instance: DagsterInstance, assets: list[Any], **kwargs: Any) -> Any:
    resources = {"provenance": ProvenanceResource(home=str(tmp_path / "home"), lineage_url=None)}
    return materialize(
        [*assets, *provenance_checks(assets)], resources=resources, instance=instance, **kwargs
    )


def test_snapshot_in_lakefs_pins_gates_and_verifies(tmp_path: Path, lake: FakeLakeFS) -> None:
    assets = _assets(tmp_path)
    instance = DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))
    result = _run(tmp_path, instance, assets)
    assert result.success
    checks = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert {k: c.passed for k, c in checks.items()} == dict.fromkeys(
        ("raw", "cleaned", "lake_snapshot", "model"), True
    )
    snap = result.asset_materializations_for_node("lake_snapshot")[0]
    uri = snap.metadata["provgate/snapshot_uri"].value
    commit = snap.metadata["provgate/snapshot_commit"].value
    assert COMMIT_URI.fullmatch(uri)
    assert uri == f"lakefs://lake/{commit}"
    assert snap.tags["dagster/data_version"] == commit
    assert commit in lake.repos["lake"].commits  # committed in lakeFS, through the SDK
    statement = snap.metadata["provgate/statement"].value
    assert statement["predicate"]["store"] == "lakefs"
    model = result.asset_materializations_for_node("model")[0]
    assert model.tags["dagster/input_data_version/lake_snapshot"] == commit
    assert (tmp_path / "model.txt").read_bytes() == b"FIRST DOCUMENT\nSECOND DOCUMENT\n"


def test_changed_lakefs_object_fails_the_check_and_the_gate(
    tmp_path: Path, lake: FakeLakeFS
) -> None:
    assets = _assets(tmp_path)
    instance = DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))
    assert _run(tmp_path, instance, assets[:3]).success
    snap = instance.get_latest_materialization_event(AssetKey("lake_snapshot"))
    assert snap is not None
    commit = snap.asset_materialization.metadata["provgate/snapshot_commit"].value  # type: ignore[union-attr]
    tree = lake.repos["lake"].commits[commit].tree
    tree["clean/a.txt"] = replace(tree["clean/a.txt"], data=b"overwritten in storage")
    check = _run(
        tmp_path, instance, assets, selection=AssetSelection.checks_for_assets(assets[2])
    ).get_asset_check_evaluations()[0]
    assert not check.passed
    assert "clean/a.txt" in check.description
    assert check.metadata["provgate/checks"].value["content"] == "failed"
    refused = _run(
        tmp_path,
        instance,
        assets,
        selection=AssetSelection.assets(assets[3]).without_checks(),
        raise_on_error=False,
    )
    assert not refused.success
    failure = _failure(refused)
    assert "the training gate refused the inputs of model" in failure.description
    assert "clean/a.txt" in failure.description
    assert not (tmp_path / "model.txt").exists()


def test_training_on_a_lakefs_branch_ref_is_refused(tmp_path: Path, lake: FakeLakeFS) -> None:
    assets = _assets(tmp_path, branch_ref=True)
    instance = DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))
    assert _run(tmp_path, instance, assets[:3]).success
    refused = _run(
        tmp_path,
        instance,
        assets,
        selection=AssetSelection.assets(assets[3]).without_checks(),
        raise_on_error=False,
    )
    assert not refused.success
    failure = _failure(refused)
    reasons = failure.metadata["provgate/reasons"].value
    assert [(r["code"], r["rule"]) for r in reasons] == [
        ("unpinned", None),
        ("policy", "pinned-inputs"),
    ]
    assert "- unpinned: lakefs://lake/main/clean: " in failure.description
    assert not (tmp_path / "model.txt").exists()  # refused before the function ran


def _failure(result: Any) -> Any:
    (event,) = result.get_step_failure_events()
    return event.step_failure_data.user_failure_data
