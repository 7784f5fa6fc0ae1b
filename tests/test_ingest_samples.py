"""Ingesting a sample set computed elsewhere (a table in memory, a Hub dataset), and batches."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from prov_core.digest import (
    ROW_ID_COLUMN,
    add_row_ids,
    digest_path,
    sample_set_of_batches,
    sample_set_of_table,
)
from prov_core.errors import FormatError, InputError, VerificationError
from prov_core.ingest import IngestRequest, ingest_path, ingest_samples
from prov_core.records import decode_entry
from prov_core.statement import Statement

from .conftest import demo_home

TABLE = pa.table(
    {
        "text": ["a", "b", None, "d", "e"],
        "n": pa.array([1, 2, 3, None, 5], pa.int16()),
        "x": [0.5, -0.0, float("nan"), 1e300, None],
    }
)


def test_batches_give_the_set_of_the_whole_table() -> None:
    whole = sample_set_of_table(TABLE)
    for size in (1, 2, 5):
        batches = [TABLE.slice(i, size) for i in range(0, TABLE.num_rows, size)]
        got = sample_set_of_batches(batches)
        assert (got.root, got.sorted_ids()) == (whole.root, whole.sorted_ids())
    record_batches = TABLE.to_batches(max_chunksize=2)
    assert sample_set_of_batches(record_batches).root == whole.root
    assert sample_set_of_batches([]).count == 0


def test_batches_verify_their_prov_id_column() -> None:
    with_ids = add_row_ids(TABLE)
    assert sample_set_of_batches([with_ids.slice(0, 2), with_ids.slice(2)]).count == 5
    ids = with_ids.column(ROW_ID_COLUMN).to_pylist()
    ids[3] = ids[0]
    forged = with_ids.set_column(
        with_ids.schema.get_field_index(ROW_ID_COLUMN),
        ROW_ID_COLUMN,
        pa.array(ids, pa.binary(32)),
    )
    with pytest.raises(VerificationError, match="row 1"):
        sample_set_of_batches([forged.slice(0, 2), forged.slice(2)])


def test_ingest_samples_without_files_signs_the_root_and_the_revision(tmp_path: Path) -> None:
    samples = sample_set_of_table(TABLE)
    request = IngestRequest(
        source="hf://datasets/org/reviews@" + "1" * 40,
        license="cc-by-4.0",
        revision="1" * 40,
        title="org/reviews",
        data_format="arrow",
    )
    with demo_home(tmp_path) as (_home, recorder, _store, _index, _data):
        result = ingest_samples(recorder, "org/reviews:train", samples, request)
        _, statement = decode_entry(recorder.ledger.entry(result.attestation.log_index))
    assert (result.samples, result.unit, result.root) == (5, "rows", samples.root.hex())
    predicate = statement["predicate"]
    assert predicate["source"] == {
        "uri": "hf://datasets/org/reviews@" + "1" * 40,
        "revision": "1" * 40,
        "title": "org/reviews",
    }
    assert predicate["license"]["spdx"] == "CC-BY-4.0"
    assert predicate["dataFormat"] == "arrow"
    assert "manifest" not in predicate
    assert statement["subject"] == [
        {"name": "org/reviews:train", "digest": {"sha256": samples.root.hex()}}
    ]


def test_ingest_samples_with_files_matches_ingest_path_and_indexes_them(tmp_path: Path) -> None:
    with demo_home(tmp_path) as (_home, recorder, _store, index, data):
        for path in (data / "reviews.csv", data / "docs"):
            tree = digest_path(path)
            request = IngestRequest(source="https://example.org/x", license="MIT")
            by_path = ingest_path(recorder, path, request)
            by_set = ingest_samples(
                recorder, path.name, by_path.sample_set, request, files=tree.files, index=index
            )
            _, a = decode_entry(recorder.ledger.entry(by_path.attestation.log_index))
            _, b = decode_entry(recorder.ledger.entry(by_set.attestation.log_index))
            assert a["subject"] == b["subject"]
            assert a["predicate"]["manifest"] == b["predicate"]["manifest"]
            assert a["predicate"]["samples"] == b["predicate"]["samples"]
            covering = index.covering([f.blake3 for f in tree.files], ledger=recorder.ledger)
            assert all(
                by_set.attestation.log_index in {r.log_index for r in refs}
                for refs in covering.values()
            )


def test_ingest_samples_refuses_bad_input(tmp_path: Path) -> None:
    samples = sample_set_of_table(TABLE)
    with demo_home(tmp_path) as (_home, recorder, _store, _index, _data):
        with pytest.raises(InputError, match="name"):
            ingest_samples(recorder, "", samples, IngestRequest(source="s", license="MIT"))
        with pytest.raises(InputError, match="revision"):
            ingest_samples(
                recorder, "n", samples, IngestRequest(source="s", license="MIT", revision="")
            )


def test_a_parsed_ingest_with_an_empty_revision_is_refused() -> None:
    bad = (
        b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"n","digest":'
        b'{"sha256":"' + b"a" * 64 + b'"}}],"predicateType":"https://provgate.dev/ingest/v1",'
        b'"predicate":{"standardsVersion":"DPS-1.0.0","source":{"uri":"u","revision":""},'
        b'"retrievedAt":"2025-01-02T03:04:05Z","collectionMethod":"download",'
        b'"license":{"spdx":"MIT"},"collector":{"id":"c"},"samples":{"count":0,'
        b'"algorithm":"sha256","leafEncoding":"provgate-row/v1","root":"' + b"b" * 64 + b'"}}}'
    )
    with pytest.raises(FormatError, match=r"source\.revision"):
        Statement.parse(bad)
