"""Sample ids (RFC 9162 leaf hashes of provgate-row/v1 rows and of files), sets, proofs."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import struct
from pathlib import Path

import blake3
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prov_core import _rows, _samples
from prov_core import digest as d
from prov_core._samples import Neighbour, sorted_root
from prov_core.errors import (
    CanonicalizationError,
    FormatError,
    InputError,
    ProofError,
    ProvgateError,
    VerificationError,
)
from prov_core.ledger import merkle


def _id1(value: object, typ: pa.DataType | None = None, name: str = "v") -> bytes:
    return d.row_ids(pa.table({name: pa.array([value], typ)}))[0]


def _cell(name: str, tag: bytes, payload: bytes = b"", prefixed: bool = True) -> bytes:
    n = name.encode()
    body = (len(payload).to_bytes(4, "little") + payload) if prefixed else payload
    return len(n).to_bytes(4, "little") + n + tag + body


# --- the encoding, byte for byte ----------------------------------------------------------


def test_row_encoding_exact_bytes() -> None:
    t = pa.table(
        {
            "s": ["héllo"],
            "i": pa.array([-42], pa.int16()),
            "f": [1.5],
            "b": [True],
            "n": pa.array([None], pa.string()),
        }
    )
    expected = (
        _cell("b", b"B", b"\x01", prefixed=False)
        + _cell("f", b"F", struct.pack("<d", 1.5), prefixed=False)
        + _cell("i", b"I", b"-42")
        + _cell("n", b"N", prefixed=False)
        + _cell("s", b"S", "héllo".encode())
    )
    assert _rows.encode_rows(t).to_pylist() == [expected]
    # The id is the RFC 9162 leaf hash of the row's bytes.
    assert d.row_ids(t) == [hashlib.sha256(b"\x00" + expected).digest()]
    assert d.row_ids(t) == [merkle.leaf_hash(expected)]


@pytest.mark.parametrize(
    ("value", "typ", "tag", "payload", "prefixed"),
    [
        (b"\x00\xff", pa.binary(), b"Y", b"\x00\xff", True),
        (b"\x00\xff", pa.binary(2), b"Y", b"\x00\xff", True),
        (decimal.Decimal("1.10"), pa.decimal128(5, 2), b"M", b"1.1", True),
        (decimal.Decimal("-0.00"), pa.decimal128(5, 2), b"M", b"0", True),
        (decimal.Decimal("100.00"), pa.decimal128(6, 2), b"M", b"100", True),
        (decimal.Decimal("-7"), pa.decimal128(3, 0), b"M", b"-7", True),
        (dt.date(1970, 1, 11), pa.date32(), b"D", b"10", True),
        (dt.date(1969, 12, 31), pa.date64(), b"D", b"-1", True),
        (dt.datetime(1970, 1, 1, 0, 0, 2), pa.timestamp("s"), b"T", b"2000000000", True),
        (dt.datetime(1970, 1, 1), pa.timestamp("ms"), b"T", b"0", True),
        (
            dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC),
            pa.timestamp("us", tz="UTC"),
            b"Z",
            b"1000000000",
            True,
        ),
        (dt.time(0, 0, 1), pa.time32("s"), b"H", b"1000000000", True),
        (dt.time(0, 0, 0, 5), pa.time64("us"), b"H", b"5000", True),
        (dt.timedelta(milliseconds=-3), pa.duration("ms"), b"U", b"-3000000", True),
        (2**64 - 1, pa.uint64(), b"I", b"18446744073709551615", True),
        (None, pa.null(), b"N", b"", False),
    ],
)
def test_typed_cells(
    value: object, typ: pa.DataType, tag: bytes, payload: bytes, prefixed: bool
) -> None:
    t = pa.table({"c": pa.array([value], typ)})
    assert _rows.encode_rows(t).to_pylist() == [_cell("c", tag, payload, prefixed)]


def test_float_canonicalization() -> None:
    neg, pos = _id1(-0.0), _id1(0.0)
    assert neg == pos
    nan_a = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0]
    nan_b = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000000))[0]
    assert math.isnan(nan_a)
    assert math.isnan(nan_b)
    assert _id1(nan_a) == _id1(nan_b) == _id1(float("nan"))
    cell = _rows.encode_rows(pa.table({"v": [nan_b]})).to_pylist()[0]
    assert cell.endswith(struct.pack("<Q", 0x7FF8000000000000))
    assert _id1(math.inf) != _id1(-math.inf)
    # float32 is widened exactly: float32 0.5 agrees with float64 0.5, float32 0.1 does not.
    assert _id1(0.5, pa.float32()) == _id1(0.5)
    assert _id1(0.1, pa.float32()) != _id1(0.1)


def test_kinds_are_kept_apart() -> None:
    ids = {
        _id1(1),
        _id1(1.0),
        _id1("1"),
        _id1(True),
        _id1(decimal.Decimal(1), pa.decimal128(3, 0)),
        _id1(b"1", pa.binary()),
        _id1(None, pa.int64()),
        _id1(""),
        _id1(b"", pa.binary()),
    }
    assert len(ids) == 9
    assert _id1(None, pa.string()) != _id1("")


def test_widths_and_units_do_not_matter() -> None:
    assert _id1(7, pa.int8()) == _id1(7, pa.int64()) == _id1(7, pa.uint32())
    instant = dt.datetime(2024, 5, 1, 12, 30, 1)
    assert len({_id1(instant, pa.timestamp(u)) for u in ("s", "ms", "us", "ns")}) == 1
    assert _id1(dt.date(2024, 1, 2), pa.date32()) == _id1(dt.date(2024, 1, 2), pa.date64())
    assert _id1("x", pa.string()) == _id1("x", pa.large_string()) == _id1("x", pa.string_view())
    dictionary = pa.array(["a", "b", "a"]).dictionary_encode()
    assert d.row_ids(pa.table({"v": dictionary})) == d.row_ids(pa.table({"v": ["a", "b", "a"]}))
    # A naive timestamp and an aware one of the same number are different things.
    aware = dt.datetime(2024, 5, 1, 12, 30, 1, tzinfo=dt.UTC)
    assert _id1(instant, pa.timestamp("s")) != _id1(aware, pa.timestamp("s", tz="UTC"))


def test_far_timestamps_do_not_overflow() -> None:
    far = dt.datetime(9999, 12, 31, 23, 59, 59)
    cell = _rows.encode_rows(pa.table({"t": pa.array([far], pa.timestamp("s"))})).to_pylist()[0]
    seconds = int((far - dt.datetime(1970, 1, 1)).total_seconds())
    assert cell == _cell("t", b"T", str(seconds * 10**9).encode())


def test_column_name_is_part_of_the_id() -> None:
    assert _id1(1, name="a") != _id1(1, name="b")


def test_cells_cannot_be_shifted_between_columns() -> None:
    a = pa.table({"a": ["xy"], "b": ["z"]})
    b = pa.table({"a": ["x"], "b": ["yz"]})
    assert d.row_ids(a) != d.row_ids(b)


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
            st.one_of(st.none(), st.floats(allow_nan=True)),
            st.one_of(st.none(), st.text()),
        ),
        min_size=1,
        max_size=20,
    ),
    st.permutations(["i", "f", "s"]),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_column_order_does_not_change_ids(rows: list[tuple[object, ...]], order: list[str]) -> None:
    cols = {
        "i": pa.array([r[0] for r in rows], pa.int64()),
        "f": pa.array([r[1] for r in rows], pa.float64()),
        "s": pa.array([r[2] for r in rows], pa.string()),
    }
    base = d.row_ids(pa.table(cols))
    assert d.row_ids(pa.table({k: cols[k] for k in order})) == base
    assert len(base) == len(rows)
    # Row ids depend on the row alone: a row's id is the same in any table.
    for i, row in enumerate(rows[:3]):
        single = pa.table({k: pa.array([row["ifs".index(k)]], cols[k].type) for k in order})
        assert d.row_ids(single) == [base[i]]


def test_batches_and_chunks_do_not_change_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    t = pa.table({"x": list(range(1000)), "y": [str(i) for i in range(1000)]})
    whole = d.row_ids(t)
    chunked = pa.Table.from_batches(t.to_batches(max_chunksize=77))
    monkeypatch.setattr(_rows, "BATCH_ROWS", 128)
    assert d.row_ids(chunked) == whole
    assert d.row_ids(t.slice(300, 10)) == whole[300:310]


def test_empty_and_columnless_tables() -> None:
    assert d.row_ids(pa.table({"x": pa.array([], pa.int64())})) == []
    no_columns = pa.table({"x": [1, 2]}).drop_columns(["x"])
    assert d.row_ids(no_columns) == [merkle.leaf_hash(b"")] * 2
    empty = d.sample_set_of_table(pa.table({"x": pa.array([], pa.int64())}))
    assert empty.count == 0
    assert empty.root == merkle.EMPTY_ROOT


@pytest.mark.parametrize(
    "column",
    [
        pa.array([[1, 2]]),
        pa.array([{"a": 1}]),
        pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64())),
        pa.array([pa.MonthDayNano([1, 2, 3])], pa.month_day_nano_interval()),
        pa.array([decimal.Decimal("100")], pa.decimal128(5, -2)),
    ],
)
def test_unsupported_types_are_refused(column: pa.Array) -> None:
    with pytest.raises(CanonicalizationError, match="'c'"):
        d.row_ids(pa.table({"c": column}))


def test_duplicate_column_names_are_refused() -> None:
    t = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(CanonicalizationError, match="duplicate"):
        d.row_ids(t)


def test_date64_that_is_not_a_whole_day_is_refused() -> None:
    t = pa.table({"d": pa.array([86_400_001], pa.date64())})
    with pytest.raises(CanonicalizationError, match="whole day"):
        d.row_ids(t)


# --- _prov_id ----------------------------------------------------------------------------------


def test_add_row_ids_then_verify() -> None:
    t = pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    with_ids = d.add_row_ids(t)
    assert with_ids.schema.field("_prov_id").type == pa.binary(32)
    assert with_ids.column("_prov_id").to_pylist() == d.row_ids(t)
    # The id column is not part of the encoding, and a table carrying it is verified.
    assert d.row_ids(with_ids) == d.row_ids(t)
    assert d.add_row_ids(with_ids) is with_ids
    assert d.sample_set_of_table(with_ids).root == d.sample_set_of_table(t).root
    hex_ids = with_ids.set_column(
        2, "_prov_id", pa.array([i.hex() for i in d.row_ids(t)], pa.string())
    )
    assert d.add_row_ids(hex_ids) is hex_ids
    tampered = with_ids.set_column(0, "x", pa.array([1, 20, 3]))
    with pytest.raises(VerificationError, match="row 1"):
        d.add_row_ids(tampered)
    with pytest.raises(VerificationError, match="row 1"):
        d.sample_set_of_table(tampered)
    wrong_type = t.append_column("_prov_id", pa.array([1, 2, 3]))
    with pytest.raises(CanonicalizationError, match="_prov_id"):
        d.add_row_ids(wrong_type)


# --- reading files ----------------------------------------------------------------------------


def _same_data(tmp_path: Path) -> tuple[Path, Path, Path, pa.Table]:
    t = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "score": [0.5, -1.25, None],
            "name": ["alice", "", None],
            "ok": [True, False, None],
        }
    )
    parquet = tmp_path / "t.parquet"
    pq.write_table(t, parquet)
    csv = tmp_path / "t.csv"
    csv.write_text('id,score,name,ok\n1,0.5,alice,true\n2,-1.25,"",false\n3,,,\n')
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(
        '{"id": 1, "score": 0.5, "name": "alice", "ok": true}\n'
        '{"id": 2, "score": -1.25, "name": "", "ok": false}\n'
        '{"id": 3, "score": null, "name": null, "ok": null}\n'
    )
    return parquet, csv, jsonl, t


def test_formats_agree_when_types_agree(tmp_path: Path) -> None:
    parquet, csv, jsonl, t = _same_data(tmp_path)
    want = d.row_ids(t)
    assert d.row_ids(d.read_table(parquet)) == want
    assert d.row_ids(d.read_table(jsonl)) == want
    # CSV cannot tell an empty string from a missing one: pyarrow reads both as "".
    from_csv = d.read_table(csv)
    assert d.row_ids(from_csv)[:2] == want[:2]
    assert from_csv.column("name").to_pylist() == ["alice", "", ""]
    assert d.is_tabular(csv)
    assert d.is_tabular(parquet)
    assert d.is_tabular(jsonl)
    assert not d.is_tabular(tmp_path / "x.txt")


def test_read_table_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        d.read_table(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="not a table file"):
        d.read_table(tmp_path / "x.txt")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(InputError, match="not a regular file"):
        d.read_table(tmp_path / "dir.csv")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("a,b\n1,2\n3\n")
    with pytest.raises(FormatError, match=r"bad\.csv.*Expected 2 columns"):
        d.read_table(bad_csv)
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(FormatError, match=r"bad\.jsonl"):
        d.read_table(bad_json)
    bad_parquet = tmp_path / "bad.parquet"
    bad_parquet.write_bytes(b"not parquet at all")
    with pytest.raises(FormatError, match=r"bad\.parquet"):
        d.read_table(bad_parquet)
    dup = tmp_path / "dup.csv"
    dup.write_text("a,a\n1,2\n")
    with pytest.raises(FormatError, match="twice"):
        d.read_table(dup)


def _ids_of_file(path: Path) -> None:
    try:
        table = d.read_table(path)
        d.sample_set_of_table(table)
    except ProvgateError:
        pass


@given(st.binary(max_size=300))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_fuzz_bytes_as_tables_raise_only_provgate_errors(tmp_path: Path, data: bytes) -> None:
    for suffix in (".csv", ".jsonl", ".parquet"):
        path = tmp_path / f"fuzz{suffix}"
        path.write_bytes(data)
        _ids_of_file(path)


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["a", "b", "c"]),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(-(2**70), 2**70),
                st.floats(),
                st.text(max_size=5),
                st.lists(st.integers(0, 3), max_size=2),
                st.dictionaries(st.just("k"), st.integers(0, 3), max_size=1),
            ),
        ),
        max_size=4,
    )
)
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_fuzz_json_lines_raise_only_provgate_errors(
    tmp_path: Path, rows: list[dict[str, object]]
) -> None:
    path = tmp_path / "fuzz.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _ids_of_file(path)


# --- sample sets and proofs -----------------------------------------------------------------


def _ids(n: int, dup: int = 0) -> list[bytes]:
    out = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]
    return out + out[:dup]


def test_sample_set_root_is_rfc9162_over_sorted_ids() -> None:
    ids = _ids(13, dup=2)
    s = d.SampleSet.of_ids(ids, leaf_encoding=d.FILE_SAMPLE_ENCODING)
    ordered = sorted(ids)
    assert s.count == 15
    assert s.ids() == ordered
    # The ids are the level-0 hashes: no second leaf-hash pass.
    assert s.root == merkle.root_of(ordered)
    assert s.root == merkle.MemoryTree(ordered).root()
    assert s.root == sorted_root(b"".join(ordered))
    assert s.summary() == {
        "count": 15,
        "algorithm": "sha256",
        "leafEncoding": "provgate-file/v1",
        "root": s.root.hex(),
    }
    assert ordered[0] in s
    assert ordered[0].hex() in s
    assert bytes(32) not in s


def test_table_sample_set_matches_generic_path() -> None:
    t = pa.table({"x": [i % 7 for i in range(500)], "y": [float(i) for i in range(500)]})
    t = pa.concat_tables([t, t.slice(0, 5)])  # duplicate rows are kept
    s = d.sample_set_of_table(t)
    generic = d.SampleSet.of_ids(d.row_ids(t), leaf_encoding=d.ROW_ENCODING)
    assert s.sorted_ids() == generic.sorted_ids()
    assert s.root == generic.root == sorted_root(s.sorted_ids())
    assert s.count == 505
    assert (s.algorithm, s.leaf_encoding) == ("sha256", "provgate-row/v1")


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 13])
def test_membership_and_non_membership_proofs_verify(n: int) -> None:
    ids = _ids(n, dup=1 if n else 0)
    s = d.SampleSet.of_ids(ids, leaf_encoding=d.FILE_SAMPLE_ENCODING)
    for sid in ids:
        proof = d.prove_sample(s, sid)
        assert isinstance(proof, d.MembershipProof)
        assert d.check_sample_proof(proof, s.root, s.count) is True
        assert d.sample_proof_from_json(json.dumps(proof.to_json())) == proof
    ordered = sorted(ids)
    probes = [bytes(32), b"\xff" * 32] + [
        bytes([i[0]]) + i[1:31] + bytes([i[31] ^ 1]) for i in ordered
    ]
    for probe in probes:
        if probe in ids:
            continue
        proof = d.prove_sample(s, probe.hex())
        assert isinstance(proof, d.NonMembershipProof)
        assert d.check_sample_proof(proof, s.root.hex(), s.count) is True
        assert d.sample_proof_from_json(proof.to_json()) == proof
        if n == 0:
            assert proof.left is None
            assert proof.right is None


def test_proofs_against_the_wrong_tree_fail() -> None:
    s = d.SampleSet.of_ids(_ids(10), leaf_encoding=d.FILE_SAMPLE_ENCODING)
    other = d.SampleSet.of_ids(_ids(11), leaf_encoding=d.FILE_SAMPLE_ENCODING)
    proof = d.prove_sample(s, s.id_at(3))
    with pytest.raises(ProofError, match="root"):
        d.check_sample_proof(proof, other.root, s.count)
    with pytest.raises(ProofError, match="samples"):
        d.check_sample_proof(proof, s.root, 11)


def _tamper_membership() -> list[tuple[str, dict[str, object]]]:
    return [
        ("index", {"index": 4}),
        ("id", {"id": "00" * 32}),
        ("path", {"path": ["11" * 32]}),
    ]


def test_tampered_membership_proofs_fail() -> None:
    s = d.SampleSet.of_ids(_ids(10), leaf_encoding=d.FILE_SAMPLE_ENCODING)
    doc = d.prove_sample(s, s.id_at(3)).to_json()
    for _, change in _tamper_membership():
        bad = d.sample_proof_from_json({**doc, **change})
        with pytest.raises(ProofError):
            d.check_sample_proof(bad, s.root, s.count)
    flipped = list(doc["path"])
    flipped[0] = ("0" if flipped[0][0] != "0" else "1") + flipped[0][1:]
    with pytest.raises(ProofError):
        d.check_sample_proof(d.sample_proof_from_json({**doc, "path": flipped}), s.root, s.count)


def test_tampered_non_membership_proofs_fail() -> None:
    s = d.SampleSet.of_ids(_ids(10), leaf_encoding=d.FILE_SAMPLE_ENCODING)
    ordered = s.ids()
    # An absent id between leaves 4 and 5.
    absent = bytes(ordered[4][:31] + bytes([(ordered[4][31] + 1) % 256]))
    assert ordered[4] < absent < ordered[5]
    doc = d.prove_sample(s, absent).to_json()
    assert doc["left"]["index"] == 4
    assert doc["right"]["index"] == 5
    d.check_sample_proof(d.sample_proof_from_json(doc), s.root, s.count)
    # A present id dressed up as absent: the real leaf 5 claimed absent via leaves 4 and 6.
    present = d.NonMembershipProof(
        sample_id=ordered[5],
        count=s.count,
        root=s.root,
        left=d.prove_sample(s, absent).left,
        right=Neighbour(ordered[6], 6, tuple(s.tree().prove_inclusion(6))),
        algorithm="sha256",
        leaf_encoding=s.leaf_encoding,
    )
    with pytest.raises(ProofError, match="adjacent"):
        d.check_sample_proof(present, s.root, s.count)
    # Neighbours in the wrong order, and a non-neighbour at an end.
    swapped = {**doc, "left": doc["right"], "right": doc["left"]}
    with pytest.raises(ProofError):
        d.check_sample_proof(d.sample_proof_from_json(swapped), s.root, s.count)
    only_right = {**doc, "left": None}
    with pytest.raises(ProofError, match="leaf 0"):
        d.check_sample_proof(d.sample_proof_from_json(only_right), s.root, s.count)
    only_left = {**doc, "right": None}
    with pytest.raises(ProofError, match="last leaf"):
        d.check_sample_proof(d.sample_proof_from_json(only_left), s.root, s.count)
    neither = {**doc, "left": None, "right": None}
    with pytest.raises(ProofError, match="no neighbour"):
        d.check_sample_proof(d.sample_proof_from_json(neither), s.root, s.count)
    forged_id = {**doc, "right": {**doc["right"], "id": "ff" * 32}}
    with pytest.raises(ProofError, match="right neighbour"):
        d.check_sample_proof(d.sample_proof_from_json(forged_id), s.root, s.count)
    # Non-membership in an empty set needs the empty root.
    empty = d.SampleSet.of_ids([], leaf_encoding=d.FILE_SAMPLE_ENCODING)
    e = d.prove_sample(empty, absent)
    with pytest.raises(ProofError, match="root"):
        d.check_sample_proof(e, s.root, 0)


@pytest.mark.parametrize(
    "doc",
    [
        "not json",
        "[]",
        {"type": "other"},
        {
            "type": "membership",
            "id": "AB" * 32,
            "count": 1,
            "root": "00" * 32,
            "algorithm": "blake3",
            "leafEncoding": "x",
            "index": 0,
            "path": [],
        },
        {
            "type": "membership",
            "id": "ab" * 32,
            "count": True,
            "root": "00" * 32,
            "algorithm": "blake3",
            "leafEncoding": "x",
            "index": 0,
            "path": [],
        },
        {
            "type": "membership",
            "id": "ab" * 32,
            "count": 1,
            "root": "00" * 32,
            "algorithm": "blake3",
            "leafEncoding": "x",
            "index": 0,
            "path": [],
            "extra": 1,
        },
        {
            "type": "non-membership",
            "id": "ab" * 32,
            "count": 1,
            "root": "00" * 32,
            "algorithm": "blake3",
            "leafEncoding": "x",
            "left": None,
        },
        {
            "type": "non-membership",
            "id": "ab" * 32,
            "count": 1,
            "root": "00" * 32,
            "algorithm": "blake3",
            "leafEncoding": "x",
            "left": None,
            "right": {"id": "ab" * 32, "index": -1, "path": []},
        },
    ],
)
def test_proof_json_is_parsed_strictly(doc: object) -> None:
    with pytest.raises(FormatError):
        d.sample_proof_from_json(doc)  # type: ignore[arg-type]


def test_prove_rejects_bad_ids() -> None:
    s = d.SampleSet.of_ids(_ids(3), leaf_encoding=d.FILE_SAMPLE_ENCODING)
    with pytest.raises(InputError):
        d.prove_sample(s, "zz")
    with pytest.raises(InputError):
        d.prove_sample(s, b"short")


def test_csv_round_trip_ids_via_pyarrow_writer(tmp_path: Path) -> None:
    t = pa.table({"a": [1, 2], "b": ["x", "y"]})
    path = tmp_path / "w.csv"
    pcsv.write_csv(t, path)
    assert d.row_ids(d.read_table(path)) == d.row_ids(t)


def test_row_id_test_vector_from_the_docs() -> None:
    t = pa.table(
        {
            "s": ["héllo"],
            "n": pa.array([None], pa.string()),
            "i": pa.array([-42], pa.int16()),
            "f": [1.5],
            "b": [True],
        }
    )
    encoded = bytes.fromhex(
        "0100000062420101000000664600000000"
        "0000f83f010000006949030000002d3432"
        "010000006e4e0100000073530600000068c3a96c6c6f"
    )
    assert _rows.encode_rows(t).to_pylist() == [encoded]
    assert d.row_ids(t)[0].hex() == (
        "ed66f8ce123e5471e77beb89eb478a8989c70d0a033434a690ab2433366e120c"
    )
    s = d.sample_set_of_table(pa.table({"x": [1, 2, 3]}))
    assert [i.hex() for i in s.ids()] == [
        "05f79c36bc446d40cafa9dbf2e09d382693ba0638f9b5aecef414a7d146ddc97",  # x = 3
        "4f72630a5789428c21f70d6bb50940834ad4e43084d91174255eb0304a4b9fee",  # x = 1
        "ab473de86711af68aabbf918dbd4a5a3bbf9f6fd7cb7376588f53dc6a165d8aa",  # x = 2
    ]
    assert s.root.hex() == "8ee1d727f00c1fdb8d5c072c8ffbce2d9f42a55e5b048178bba9189104ba3ec7"
    # A file holding b"abc": BLAKE3 6437b3ac…9d85, sample id SHA-256(0x00 || those 32 bytes).
    b3 = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
    assert blake3.blake3(b"abc").hexdigest() == b3
    assert d.file_id_of_digest(b3).hex() == (
        "57e2817034b593f37fa9bba46438db448338e8fdbfd1f625d25de7967abfb47c"
    )


# --- ids are RFC 9162 leaf hashes -------------------------------------------------------------


def test_root_is_checkable_with_standard_rfc9162_tooling() -> None:
    # A tool that knows nothing of provgate: leaves hold the rows' bytes, sorted by leaf hash.
    t = pa.table({"x": [i % 50 for i in range(300)], "s": [str(i % 7) for i in range(300)]})
    s = d.sample_set_of_table(t)
    data = _rows.encode_rows(t).to_pylist()
    standard = merkle.MemoryTree.from_data(sorted(data, key=merkle.leaf_hash))
    assert standard.root() == s.root
    row = t.slice(123, 1)
    proof = d.prove_sample(s, d.row_id(row))
    assert isinstance(proof, d.MembershipProof)
    merkle.check_inclusion(
        proof.index, s.count, merkle.leaf_hash(data[123]), list(proof.path), s.root
    )


def test_row_id_from_a_one_row_table_or_a_mapping() -> None:
    t = pa.table({"i": pa.array([7, 8], pa.int16()), "s": ["a", "b"], "f": [0.5, 1.5]})
    ids = d.row_ids(t)
    assert d.row_id(t.slice(1, 1)) == ids[1]
    assert d.row_id({"s": "a", "f": 0.5, "i": 7}) == ids[0]  # int width does not matter
    assert d.row_id({"s": "a", "f": 0.5, "i": pa.scalar(7, pa.int16())}) == ids[0]
    assert d.row_id({"s": "a", "f": 0.5, "i": pa.scalar(7.0)}) != ids[0]  # a float is not an int
    assert d.row_id({"s": pa.scalar(None, pa.string()), "f": 0.5, "i": 7}) != ids[0]
    assert d.row_id({"n": None}) == merkle.leaf_hash(_cell("n", b"N", prefixed=False))
    with pytest.raises(InputError, match="one row"):
        d.row_id(t)
    with pytest.raises(CanonicalizationError):
        d.row_id({"x": object()})
    s = d.sample_set_of_table(t)
    assert d.row_id({"s": "b", "f": 1.5, "i": 8}) in s
    absent = d.prove_sample(s, d.row_id({"s": "c", "f": 1.5, "i": 8}))
    assert isinstance(absent, d.NonMembershipProof)
    assert d.check_sample_proof(absent, s.root, s.count)


def test_file_samples_are_leaf_hashes_of_their_blake3(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"alpha")
    (tmp_path / "b.txt").write_bytes(b"beta")
    tree = d.digest_path(tmp_path)
    s = d.SampleSet.of_files(f.blake3 for f in tree.files)
    assert s.summary()["algorithm"] == "sha256"
    assert s.leaf_encoding == d.FILE_SAMPLE_ENCODING == "provgate-file/v1"
    a = d.file_id(tmp_path / "a.txt")
    assert a == merkle.leaf_hash(blake3.blake3(b"alpha").digest())
    assert a == d.file_id_of_digest(blake3.blake3(b"alpha").digest())
    assert d.SampleSet.of_files(bytes.fromhex(f.blake3) for f in tree.files).root == s.root
    assert (
        s.root
        == merkle.MemoryTree.from_data(
            sorted((bytes.fromhex(f.blake3) for f in tree.files), key=merkle.leaf_hash)
        ).root()
    )
    proof = d.prove_sample(s, a)
    assert isinstance(proof, d.MembershipProof)
    assert d.check_sample_proof(proof, s.root, s.count)
    (tmp_path / "c.txt").write_bytes(b"gamma")
    assert d.file_id(tmp_path / "c.txt") not in s
    with pytest.raises(InputError, match="BLAKE3 digest"):
        d.SampleSet.of_files(["abcd"])


def test_a_proof_for_other_ids_is_refused() -> None:
    s = d.SampleSet.of_ids(_ids(5), leaf_encoding=d.FILE_SAMPLE_ENCODING)
    doc = {**d.prove_sample(s, s.id_at(2)).to_json(), "algorithm": "blake3"}
    with pytest.raises(ProofError, match="blake3"):
        d.check_sample_proof(d.sample_proof_from_json(doc), s.root, s.count)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 64, 65, 1000, 1025])
def test_bucketed_sort_and_root_match_the_reference(
    monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    monkeypatch.setattr(_rows, "_BUCKET_MIN_IDS", 4)
    monkeypatch.setattr(_samples, "_NODE_CHUNK", 8)
    ids = _ids(n, dup=3 if n > 3 else 0)
    if n > 3:  # distinct ids that share their first 8 bytes: the tie-break must order them
        ids += [ids[0][:8] + bytes([b]) * 24 for b in (0, 255, 7)]
    for buckets in (1, 2, 8):
        for block in (1, 2, 16, 1 << 16):  # subtree blocks, hashed apart then combined
            monkeypatch.setattr(_rows, "SORT_BUCKETS", buckets)
            monkeypatch.setattr(_rows, "TREE_BLOCK_IDS", block)
            sorted_blob, root = _rows.sorted_ids_and_root(b"".join(ids))
            assert sorted_blob == b"".join(sorted(ids))
            assert root == merkle.root_of(sorted(ids))
            assert root == (merkle.MemoryTree(sorted(ids)).root() if ids else merkle.EMPTY_ROOT)


def test_prov_id_check_names_the_first_bad_row_and_accepts_any_hex_case() -> None:
    t = pa.table({"x": list(range(10))})
    ids = d.row_ids(t)
    upper = t.append_column("_prov_id", pa.array([i.hex().upper() for i in ids]))
    assert d.add_row_ids(upper) is upper
    bad = list(ids)
    bad[6] = bytes(32)
    wrong = t.append_column("_prov_id", pa.array(bad, pa.binary(32)))
    with pytest.raises(VerificationError, match="row 6"):
        d.sample_set_of_table(wrong)
    nulls = t.append_column("_prov_id", pa.array([*ids[:9], None], pa.binary(32)))
    with pytest.raises(VerificationError, match="row 9"):
        d.add_row_ids(nulls)
