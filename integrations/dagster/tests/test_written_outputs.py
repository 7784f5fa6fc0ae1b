"""Outputs hashed as they are written (prov_core.sink) through the Dagster adapter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetKey, DagsterInstance, materialize
from prov_dagster import Ingest, ProvenanceResource, provenance_asset, provenance_checks

from prov_core import open_output
from prov_core.digest import digest_path
from prov_core.home import open_home
from prov_core.ingest import IngestRequest
from prov_core.nodes import attestation_from_dict, outputs_digest
from prov_core.records import decode_entry
from prov_core.sink import NOTE_MIN_SIZE, copy_into
from prov_core.step import Artifact


def _stored(path: Path) -> str:
    """The BLAKE3 ``provgate digest`` prints: always read from the stored file."""
    return digest_path(path).blake3


def _ledger_size(home: Path) -> int:
    with open_home(home).open_ledger() as ledger:
        return ledger.size()


def _materialize(
    tmp_path: Path, assets: list[Any], instance: DagsterInstance | None = None, **kwargs: Any
) -> Any:
    instance = instance or DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))
    resources = {"provenance": ProvenanceResource(home=str(tmp_path / "home"), lineage_url=None)}
    return materialize(assets, resources=resources, instance=instance, **kwargs)


def _pipeline(tmp_path: Path) -> tuple[list[Any], Path, Path]:
    source, zone, out = tmp_path / "source", tmp_path / "zone", tmp_path / "out"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(NOTE_MIN_SIZE + 12345))
    (source / "small.txt").write_bytes(b"a small file, read back when digested\n")

    @provenance_asset
    def raw() -> Ingest:
        zone.mkdir(exist_ok=True)
        for f in sorted(source.iterdir()):
            copy_into(f, zone / f.name)
        return Ingest(zone, IngestRequest(source="file:///source", license="CC0-1.0"))

    @provenance_asset(deps=[raw])
    def table() -> list[Path]:
        out.mkdir(exist_ok=True)
        rows = 600_000  # ~ 10 MiB of Parquet, written in many pages
        t = pa.table({"id": list(range(rows)), "v": [float(i) for i in range(rows)]})
        with open_output(out / "t.parquet") as f:
            pq.write_table(t, f, compression="none", data_page_size=1 << 16)
        with open_output(out / "count.txt") as f:
            f.write(f"{rows}\n".encode())
        return [out / "t.parquet", out / "count.txt"]

    return [raw, table], zone, out


def test_hashed_while_written_outputs_are_recorded_as_stored(tmp_path: Path) -> None:
    assets, zone, out = _pipeline(tmp_path)
    result = _materialize(tmp_path, [*assets, *provenance_checks(assets)])
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    # the ingest's manifest root is that of the collected (stored) files
    ingest = result.asset_materializations_for_node("raw")[0]
    statement = ingest.metadata["provgate/statement"].value
    assert statement["predicate"]["manifest"]["root"] == digest_path(zone).blake3
    # the step signs each output's BLAKE3 as provgate digest reads it from the stored file
    mat = result.asset_materializations_for_node("table")[0]
    step = mat.metadata["provgate/statement"].value
    signed = {
        b["name"]: b["annotations"]["blake3"] for b in step["predicate"]["runDetails"]["byproducts"]
    }
    assert signed == {name: _stored(out / name) for name in ("t.parquet", "count.txt")}
    stored = [Artifact.from_path(out / n, name=n) for n in ("t.parquet", "count.txt")]
    assert mat.tags["dagster/data_version"] == outputs_digest(stored)


def test_a_write_that_fails_halfway_leaves_no_record(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()

    @provenance_asset
    def source() -> Path:
        with open_output(out / "ok.bin") as f:
            f.write(b"upstream")
        return out / "ok.bin"

    @provenance_asset(deps=[source])
    def broken() -> Path:
        with open_output(out / "half.parquet") as f:
            f.write(os.urandom(3 << 20))
            raise RuntimeError("the transform failed halfway")
        return out / "half.parquet"  # never reached

    @provenance_asset(deps=[source])
    def swallowed() -> Path:
        try:
            with open_output(out / "half2.parquet") as f:
                f.write(os.urandom(3 << 20))
                raise OSError("disk full")
        except OSError:
            pass  # the user's code carries on and returns the path anyway
        return out / "half2.parquet"

    instance = DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))
    assert _materialize(tmp_path, [source], instance).success
    before = _ledger_size(tmp_path / "home")
    for asset, message in ((broken, "the transform failed halfway"), (swallowed, "half2.parquet")):
        result = _materialize(
            tmp_path, [source, asset], instance, selection=[asset], raise_on_error=False
        )
        assert not result.success
        (failure,) = result.get_step_failure_events()
        assert message in str(failure.step_failure_data.error)
        assert _ledger_size(tmp_path / "home") == before  # no record of those bytes
    assert sorted(p.name for p in out.iterdir()) == ["ok.bin"]  # nothing half-written left


def test_a_written_output_changed_before_return_is_recorded_as_changed(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"

    @provenance_asset
    def model() -> Path:
        with open_output(target) as f:
            f.write(os.urandom(NOTE_MIN_SIZE))
        with open(target, "r+b") as g:  # patched in place afterwards, same size
            g.write(b"patched")
        return target

    result = _materialize(tmp_path, [model, *provenance_checks([model])])
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.metadata["provgate/checks"].value["content"] == "ok"  # (no ingest upstream)
    a = attestation_from_dict(
        result.asset_materializations_for_node("model")[0].metadata["provgate/attestation"].value
    )
    with open_home(tmp_path / "home").open_ledger() as ledger:
        statement = decode_entry(ledger.entry(a.log_index))[1]
    (output,) = statement["predicate"]["runDetails"]["byproducts"]
    assert output["annotations"]["blake3"] == _stored(target)
    assert check.asset_key == AssetKey("model")
