"""canonical_json equals rfc8785.dumps and rejects what it rejects; parse_json is strict."""

from __future__ import annotations

import collections
import contextlib
import datetime
import decimal
import enum
import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from prov_core import canonical
from prov_core.canonical import canonical_json, parse_json
from prov_core.errors import CanonicalizationError, FormatError

SAFE = 2**53 - 1

# Keys mix ASCII, BMP private-use (sorts after surrogates in UTF-16) and
# astral characters, so the UTF-16 versus code point order difference shows.
_tricky_chars = st.sampled_from(
    ["a", "B", "\ue000", "\uffff", "\U0001f600", "é", "\x00", '"', "\\"]
)
keys = st.text(alphabet=_tricky_chars | st.characters(exclude_categories=("Cs",)), max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE, max_value=SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)
no_float_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-SAFE, max_value=SAFE) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=30,
)


@given(json_values)
@settings(max_examples=400)
def test_equals_rfc8785_for_any_json_value(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@given(no_float_values)
@settings(max_examples=300)
def test_fast_path_taken_and_equal_without_floats_or_astral_keys(value: Any) -> None:
    has_astral_key = max(json.dumps(value, ensure_ascii=False) or "a") >= "\U00010000"
    if not has_astral_key:
        assert canonical._walk(value, 0) is True
    assert canonical_json(value) == rfc8785.dumps(value)


@given(json_values)
@settings(max_examples=300)
def test_parse_then_canonicalize_is_idempotent(value: Any) -> None:
    first = canonical_json(value)
    assert canonical_json(parse_json(first)) == first


def test_astral_keys_sort_by_utf16_code_units() -> None:
    value = {"\ue000": 1, "\U0001f600": 2, "a": 3}
    # Python sorts by code point (U+E000 first); RFC 8785 by UTF-16 (D83D DE00 first).
    assert canonical_json(value) == '{"a":3,"\U0001f600":2,"\ue000":1}'.encode()
    assert canonical._walk(value, 0) is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-3e-07, b"-3e-7"),
        (1e21, b"1e+21"),
        (1e20, b"100000000000000000000"),
        (0.1, b"0.1"),
        (-0.0, b"0"),
        (1.0, b"1"),
        (5e-324, b"5e-324"),
    ],
)
def test_floats_use_the_ecmascript_number_form(value: float, expected: bytes) -> None:
    assert canonical_json(value) == expected


def test_string_escapes_match_rfc8785() -> None:
    text = "".join(chr(c) for c in range(0x20)) + '"\\/\x7f\u2028é\U0001f600'
    assert canonical_json(text) == rfc8785.dumps(text)
    assert canonical_json(text).startswith(b'"\\u0000\\u0001')


@pytest.mark.parametrize(
    "value",
    [
        2**53,
        -(2**53),
        {"a": [2**64]},
        float("nan"),
        float("inf"),
        [float("-inf")],
        "\ud800",
        {"k\udfff": 1},
        {1: "a"},
        {None: 1},
        {True: 1},
        {(1, 2): 1},
        {"a": 1, 2: "b"},
        datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
        b"bytes",
        {1, 2},
        decimal.Decimal("1.5"),
        object(),
        {"nested": [{"deep": datetime.date(2025, 1, 1)}]},
        {"a": frozenset()},
    ],
)
def test_rejects_exactly_what_rfc8785_rejects(value: Any) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_json(value)
    with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError, AttributeError)):
        rfc8785.dumps(value)


def test_unknown_type_is_never_stringified() -> None:
    class Stringy:
        def __str__(self) -> str:
            return "looks-fine"

    with pytest.raises(CanonicalizationError, match="Stringy is not a JSON type"):
        canonical_json({"x": Stringy()})


class Color(enum.IntEnum):
    RED = 1


class Kind(enum.StrEnum):
    DATA = "data"


@pytest.mark.parametrize(
    "value",
    [
        {"c": Color.RED},
        [Kind.DATA],
        {Kind.DATA: 1},
        collections.OrderedDict([("b", 1), ("a", 2)]),
        (1, "two", (3,)),
        [True, False, None],
    ],
)
def test_subclasses_and_tuples_match_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_deep_nesting_is_a_canonicalization_error() -> None:
    value: Any = 1
    for _ in range(300):
        value = [value]
    with pytest.raises(CanonicalizationError, match="nested deeper"):
        canonical_json(value)


def test_circular_reference_is_a_canonicalization_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(CanonicalizationError):
        canonical_json(loop)


# ---------------------------------------------------------------- parse_json


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a":1,"a":2}', "duplicate object key 'a'"),
        (b'{"a":{"b":1,"b":1}}', "duplicate"),
        (b"NaN", "NaN"),
        (b"[Infinity]", "Infinity"),
        (b"-Infinity", "Infinity"),
        (b"1e400", "overflows"),
        (b"9007199254740993", "exactly"),
        (b"1" * 5000, "too long"),
        (b"\xef\xbb\xbf{}", "byte order mark"),
        (b'"\xff"', "UTF-8"),
        ('"é"'.encode("latin-1"), "UTF-8"),
        ('"x"'.encode("utf-16"), "UTF-8"),
        (b'"\\ud800"', "surrogate"),
        (b'{"\\udc00":1}', "surrogate"),
        (b"{} {}", "Extra data"),
        (b"", "invalid JSON"),
        (b"{'a':1}", "invalid JSON"),
        (b'"tab\there"', "Invalid control character"),
        (b"[1,]", "invalid JSON"),
    ],
)
def test_parse_json_refuses(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_json(data)


def test_parse_json_accepts_large_integers_a_double_holds_exactly() -> None:
    assert parse_json(b"100000000000000000000") == 1e20
    assert parse_json(b"[9007199254740991]") == [SAFE]


def test_parse_json_size_limit() -> None:
    assert parse_json(b"[1,2]", max_bytes=5) == [1, 2]
    with pytest.raises(FormatError, match="exceeds the limit of 5"):
        parse_json(b"[1,2 ]", max_bytes=5)


def test_parse_json_depth_limit() -> None:
    assert parse_json(b"[" * 64 + b"]" * 64) is not None
    with pytest.raises(FormatError, match="deeper than 64"):
        parse_json(b"[" * 65 + b"]" * 65)
    with pytest.raises(FormatError, match="deeper than 3"):
        parse_json(b'{"a":{"b":{"c":[]}}}', max_depth=3)
    # brackets inside strings do not count
    assert parse_json(b'["' + b"[" * 100 + b'"]', max_depth=2) == ["[" * 100]
    # very deep input fails cleanly, not with RecursionError
    with pytest.raises(FormatError):
        parse_json(b"[" * 100_000)


def test_parse_json_refuses_non_bytes() -> None:
    with pytest.raises(FormatError, match="expected bytes"):
        parse_json("{}")  # type: ignore[arg-type]


@given(st.binary(max_size=200))
@settings(max_examples=500)
def test_parse_json_fuzz_bytes_raise_only_format_error(data: bytes) -> None:
    with contextlib.suppress(FormatError):  # anything else fails the test
        parse_json(data)


_json_tokens = st.sampled_from(
    ['{', '}', '[', ']', ',', ':', '"a"', '"\\ud800"', '"\\u00e9"', "1", "-0", "1e999", "NaN",
     "true", "null", " ", '"', "\\", "1.5e-7", "12345678901234567890", "\xff", "\U0001f600"]
)  # fmt: skip


@given(st.lists(_json_tokens, max_size=30))
@settings(max_examples=500)
def test_parse_json_fuzz_json_like_text(tokens: list[str]) -> None:
    data = "".join(tokens).encode("utf-8", "surrogatepass")
    try:
        value = parse_json(data)
    except FormatError:  # anything else fails the test
        return
    # whatever parses can be canonicalized
    canonical_json(value)


def test_public_surface_is_pinned() -> None:
    import prov_core.canonical as module

    assert sorted(module.__all__) == [
        "DEFAULT_MAX_BYTES",
        "DEFAULT_MAX_DEPTH",
        "canonical_json",
        "parse_json",
    ]
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    }
    assert defined <= set(module.__all__)
