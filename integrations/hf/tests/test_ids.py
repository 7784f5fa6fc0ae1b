"""prov_hf's _prov_id column and sample set against prov_core's Arrow path on the same rows."""

from __future__ import annotations

import datetime
import decimal
from pathlib import Path

import datasets
import pyarrow as pa
import pytest
from datasets.table import InMemoryTable
from prov_hf import add_prov_ids, sample_set

from prov_core.digest import ROW_ID_COLUMN, add_row_ids, row_ids, sample_set_of_table
from prov_core.errors import CanonicalizationError, VerificationError

ROWS = 23
TYPES = pa.table(
    {
        "s": pa.array([None if i % 5 == 0 else f"row {i} é" for i in range(ROWS)]),
        "ls": pa.array([f"x{i}" if i % 4 else None for i in range(ROWS)], pa.large_string()),
        "i8": pa.array([None if i % 7 == 0 else i - 10 for i in range(ROWS)], pa.int8()),
        "u32": pa.array([i * 1000 for i in range(ROWS)], pa.uint32()),
        "i64": pa.array([None if i == 3 else 2**40 + i for i in range(ROWS)], pa.int64()),
        "f32": pa.array(
            [[-0.0, float("nan"), None, 1.5][i % 4] for i in range(ROWS)], pa.float32()
        ),
        "f64": pa.array([i / 3 if i % 6 else None for i in range(ROWS)]),
        "b": pa.array([None if i % 3 == 0 else i % 2 == 0 for i in range(ROWS)]),
        "bin": pa.array([bytes([i]) * (i % 3) if i % 8 else None for i in range(ROWS)]),
        "lbin": pa.array([b"q" * i for i in range(ROWS)], pa.large_binary()),
        "d": pa.array(
            [datetime.date(1960, 1, 1) + datetime.timedelta(days=400 * i) for i in range(ROWS)]
        ),
        "ts": pa.array(
            [None if i == 5 else i * 86_400_123 for i in range(ROWS)], pa.timestamp("ms")
        ),
        "tz": pa.array([i * 10**6 for i in range(ROWS)], pa.timestamp("us", tz="UTC")),
        "t64": pa.array([i * 1_000_001 for i in range(ROWS)], pa.time64("us")),
        "dur": pa.array([None if i == 9 else i for i in range(ROWS)], pa.duration("s")),
        "dec": pa.array(
            [decimal.Decimal(f"{i}.{i % 10}0") if i % 2 else None for i in range(ROWS)],
            pa.decimal128(10, 2),
        ),
    }
)


def _ids(ds: datasets.Dataset) -> list[bytes]:
    return ds.with_format("arrow")[ROW_ID_COLUMN].to_pylist()


def _in_memory(table: pa.Table) -> datasets.Dataset:
    return datasets.Dataset(InMemoryTable(table))


def test_same_ids_as_the_arrow_path_for_every_column_type_and_null() -> None:
    ds = _in_memory(TYPES)
    out = add_prov_ids(ds, batch_size=5)
    assert out.features[ROW_ID_COLUMN] == datasets.Value("fixed_size_binary[32]")
    assert _ids(out) == row_ids(TYPES)
    # The other columns are untouched, types included.
    rest = out.data.table.drop_columns([ROW_ID_COLUMN])
    assert rest.schema.equals(TYPES.schema, check_metadata=False)
    assert row_ids(rest) == row_ids(TYPES)
    assert rest.column("s").to_pylist() == TYPES.column("s").to_pylist()
    assert sample_set(ds, batch_size=4).root == sample_set_of_table(TYPES).root


def test_ids_do_not_depend_on_shards_or_batches(tmp_path: Path) -> None:
    _in_memory(TYPES).save_to_disk(str(tmp_path / "saved"), num_shards=3)
    sharded = datasets.load_from_disk(str(tmp_path / "saved"))
    assert len(sharded.cache_files) == 3
    expected = row_ids(TYPES)
    for batch_size in (1, 7, 1000):
        assert _ids(add_prov_ids(sharded, batch_size=batch_size)) == expected
    assert sample_set(sharded, batch_size=6).root == sample_set_of_table(TYPES).root


def test_ids_follow_the_rows_through_an_indices_mapping() -> None:
    ds = _in_memory(TYPES).shuffle(seed=3).select(range(0, ROWS, 2))
    expected = row_ids(ds.with_format("arrow")[:])
    assert _ids(add_prov_ids(ds, batch_size=4)) == expected
    assert sample_set(ds).count == len(expected)


def test_a_dataset_from_local_files_gets_the_ids_of_the_file_rows(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(TYPES, tmp_path / "t.parquet")
    ds = datasets.Dataset.from_parquet(str(tmp_path / "t.parquet"), cache_dir=str(tmp_path / "c"))
    assert isinstance(ds, datasets.Dataset)
    assert _ids(add_prov_ids(ds)) == row_ids(pq.read_table(tmp_path / "t.parquet"))


def test_an_existing_column_is_verified_not_recomputed() -> None:
    with_ids = add_row_ids(TYPES)
    ds = _in_memory(with_ids)
    assert _ids(add_prov_ids(ds, batch_size=5)) == row_ids(TYPES)
    edited = with_ids.set_column(
        with_ids.schema.get_field_index("s"),
        "s",
        pa.array(["edited", *TYPES.column("s").to_pylist()[1:]]),
    )
    with pytest.raises(VerificationError, match=r"row 0: _prov_id does not match"):
        add_prov_ids(_in_memory(edited))
    with pytest.raises(VerificationError, match="row 0"):
        sample_set(_in_memory(edited))


def test_a_nested_column_is_refused_naming_it() -> None:
    ds = datasets.Dataset.from_dict(
        {"text": ["a"], "tokens": [[1, 2]]},
        features=datasets.Features(
            {"text": datasets.Value("string"), "tokens": datasets.List(datasets.Value("int32"))}
        ),
    )
    with pytest.raises(CanonicalizationError, match="column 'tokens'"):
        add_prov_ids(ds)
    assert _ids(add_prov_ids(ds.remove_columns("tokens"))) == row_ids(pa.table({"text": ["a"]}))


def test_the_format_is_kept_with_the_new_column() -> None:
    ds = _in_memory(TYPES).with_format("numpy", columns=["i64"])
    out = add_prov_ids(ds)
    assert out.format["type"] == "numpy"
    assert out.format["columns"] == ["i64", ROW_ID_COLUMN]
    assert bytes(out[0][ROW_ID_COLUMN]) == row_ids(TYPES)[0]
