"""Canonical JSON (RFC 8785, JCS) and strict parsing of JSON from outside.

``canonical_json(value)`` returns the RFC 8785 bytes of a JSON value. These are
the bytes provgate signs, hashes and stores, so they must be exactly those of
RFC 8785 for every input, and every value RFC 8785 cannot represent must raise
:class:`~prov_core.errors.CanonicalizationError` (an unknown type is never
stringified).

Two paths produce the same bytes:

* the fast path, ``json`` from the standard library with sorted keys, no
  whitespace, no ASCII escaping (``ensure_ascii=False``) and no NaN. For values
  without floats and without object keys above U+FFFF its output *is* RFC 8785:
  integers print as decimal digits, strings escape exactly ``"``, ``\\`` and the
  C0 controls (``\\b \\t \\n \\f \\r`` short forms, others ``\\u00xx``
  lowercase; RFC 8785 section 3.2.2.2), and Python's key order (by code point)
  equals RFC 8785's order (by UTF-16 code unit, section 3.2.3) when no key has a
  character outside the BMP;
* the exact path, :func:`rfc8785.dumps`, for everything else (floats need the
  ECMAScript number format of section 3.2.2.3: ``-3e-7``, not ``-3e-07``).

One walk over the value decides which path applies and rejects what RFC 8785
rejects (integers beyond +-(2**53 - 1), NaN and infinities, lone surrogates,
non-string keys, types other than ``None``/``bool``/``int``/``float``/``str``/
``list``/``tuple``/``dict``). Subclasses of the container and scalar types take
the exact path, so their behaviour is whatever :mod:`rfc8785` does.

Measured with ``.venv/bin/python -m prov_core.canonical`` (best of 7 x 5,000)
on a realistic 1,058-byte in-toto Statement with an ingest predicate, on the
shared 2-vCPU development VM (load ~1.7, where Ed25519 signing measured 44 us
and ``rfc8785.dumps`` 90 us, i.e. about 1.8x slower than an idle machine)::

    fast path   (no floats)                    ~48,000 records/s   ~21 us/record
    exact path  (one float in the predicate)    ~9,650 records/s  ~104 us/record
    rfc8785.dumps alone                        ~11,100 records/s   ~90 us/record

The exact path costs the decision walk (~9 us) on top of :mod:`rfc8785`.

``parse_json(data)`` parses bytes from outside strictly: UTF-8 only (no BOM),
no duplicate object keys, no ``NaN``/``Infinity``, only numbers a double holds
exactly (an integer beyond +-(2**53 - 1) parses as a float when it is the
RFC 8785 form of one, else is refused; overflow to infinity is refused), no
lone surrogates (RFC 7493), a size limit and a nesting limit. Every failure is
a :class:`~prov_core.errors.FormatError`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

import rfc8785

from prov_core.errors import CanonicalizationError, FormatError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "canonical_json",
    "parse_json",
]

_INT_MAX: Final = 2**53 - 1
_INT_MIN: Final = -(2**53 - 1)

#: Largest input :func:`parse_json` accepts by default (bytes).
DEFAULT_MAX_BYTES: Final = 16 * 1024 * 1024
#: Deepest nesting of arrays and objects :func:`parse_json` accepts by default.
DEFAULT_MAX_DEPTH: Final = 64

# Nesting beyond this is refused by canonical_json before Python's own
# recursion limit is reached inside json or rfc8785.
_MAX_CANONICAL_DEPTH: Final = 256

# check_circular=False: _walk has already refused any value nested deeper
# than _MAX_CANONICAL_DEPTH, which a cycle always is, so the encoder's own
# bookkeeping of the containers it is inside (~15% of its time) is not needed.
_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    sort_keys=True,
    separators=(",", ":"),
    check_circular=False,
)


def _one_shot_encoder() -> Callable[[Any], str]:
    """``_ENCODER.encode`` without its per-call set-up, or ``_ENCODER.encode`` itself.

    ``JSONEncoder.encode`` builds a new C encoder for every call; building it
    once saves ~10% of the encoding time. ``c_make_encoder`` is CPython's
    private constructor: it is used only if it exists, takes the arguments
    ``JSONEncoder.iterencode`` passes it, and produces the same bytes on a
    sample; otherwise the public encoder is used.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - not CPython
        return _ENCODER.encode
    try:
        c_encode = make(
            None,  # markers: check_circular=False
            _ENCODER.default,
            json.encoder.encode_basestring,  # ensure_ascii=False
            None,  # indent
            ":",
            ",",
            True,  # sort_keys
            False,  # skipkeys
            False,  # allow_nan
        )

        def encode(value: Any) -> str:
            return "".join(c_encode(value, 0))

        sample = {"b": [1, -2, True, None, '\u00e9\n\x1f"\\'], "a": {"z": "", "y": []}}
        if encode(sample) == _ENCODER.encode(sample) and encode("x") == '"x"':
            return encode
    except (TypeError, ValueError):  # pragma: no cover - another signature
        pass
    return _ENCODER.encode  # pragma: no cover


_encode: Final[Callable[[Any], str]] = _one_shot_encoder()

# A key needs the exact path when it holds a character above U+FFFF.
_NON_BMP: Final = re.compile("[\U00010000-\U0010ffff]")
# A lone surrogate (U+D800..U+DFFF) cannot be encoded as UTF-8.
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical bytes of ``value``.

    Raises :class:`CanonicalizationError` for values RFC 8785 cannot represent.
    """
    try:
        fast = _walk(value, 0)
    except RecursionError as exc:  # pragma: no cover - depth is checked first
        raise CanonicalizationError("value is nested too deeply") from exc
    try:
        if fast:
            return _encode(value).encode("utf-8")
        return bytes(rfc8785.dumps(value))
    except UnicodeEncodeError as exc:
        raise CanonicalizationError("string contains a lone surrogate (not UTF-8)") from exc
    except (rfc8785.CanonicalizationError, ValueError, TypeError, RecursionError) as exc:
        raise CanonicalizationError(str(exc)) from exc


def _walk(value: Any, depth: int) -> bool:
    """Validate ``value``; return True if the fast path yields RFC 8785 bytes.

    Exact ``str``/``bool``/``None`` items are checked inline in the container
    loops: they are most of a record, and a call per scalar would cost more
    than the encoding itself.
    """
    t = type(value)
    if t is dict:
        if depth >= _MAX_CANONICAL_DEPTH:
            raise CanonicalizationError(
                f"value is nested deeper than {_MAX_CANONICAL_DEPTH} levels"
            )
        fast = True
        for key, item in value.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise CanonicalizationError(
                        f"object key {key!r} is a {type(key).__name__}, not a string"
                    )
                fast = False
            elif not key.isascii() and _NON_BMP.search(key):
                fast = False
            ti = type(item)
            if ti is not str and ti is not bool and item is not None and not _walk(item, depth + 1):
                fast = False
        return fast
    if t is list or t is tuple:
        if depth >= _MAX_CANONICAL_DEPTH:
            raise CanonicalizationError(
                f"value is nested deeper than {_MAX_CANONICAL_DEPTH} levels"
            )
        fast = True
        for item in value:
            ti = type(item)
            if ti is not str and ti is not bool and item is not None and not _walk(item, depth + 1):
                fast = False
        return fast
    if t is int:
        if _INT_MIN <= value <= _INT_MAX:
            return True
        raise CanonicalizationError(f"integer {value} is outside the RFC 8785 range +-(2**53 - 1)")
    if t is str or t is bool or value is None:
        return True
    if isinstance(value, float):  # float or a subclass: exact path
        if math.isfinite(value):
            return False
        raise CanonicalizationError(f"{value!r} has no RFC 8785 representation")
    if isinstance(value, int):  # int subclass other than bool (IntEnum ...)
        if _INT_MIN <= value <= _INT_MAX:
            return False
        raise CanonicalizationError(
            f"integer {int(value)} is outside the RFC 8785 range +-(2**53 - 1)"
        )
    if isinstance(value, str):
        return False
    if isinstance(value, dict):
        _walk(dict(value), depth)
        return False
    if isinstance(value, list | tuple):
        _walk(list(value), depth)
        return False
    raise CanonicalizationError(
        f"{type(value).__module__}.{type(value).__qualname__} is not a JSON type"
    )


# --------------------------------------------------------------------------
# Strict parsing of outside bytes


def _reject_constant(name: str) -> Any:
    raise FormatError(f"{name} is not valid JSON")


def _parse_int(text: str) -> int | float:
    """An integer literal; beyond +-(2**53 - 1) only in the RFC 8785 form of a double.

    RFC 8785 numbers are IEEE doubles, and its canonical form of ``1e20`` is
    ``100000000000000000000``: a literal that is exactly the canonical form of
    a double parses as that double, so canonical output always parses back.
    Other large integers (``9007199254740993``) would silently change value
    and are refused.
    """
    try:
        number = int(text)
    except ValueError as exc:  # more digits than int() accepts
        raise FormatError(f"integer with {len(text)} digits is too long") from exc
    if _INT_MIN <= number <= _INT_MAX:
        return number
    as_float = float(text)
    if math.isfinite(as_float) and rfc8785.dumps(as_float) == text.encode():
        return as_float
    raise FormatError(f"integer {text[:40]} cannot be represented exactly as a JSON number")


def _parse_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise FormatError(f"number {text[:40]} overflows a double")
    return number


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise FormatError(f"duplicate object key {key!r}")
            seen.add(key)
    return obj


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_pairs,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_reject_constant,
)


def parse_json(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Parse untrusted JSON bytes strictly; raise :class:`FormatError` on anything doubtful."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FormatError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise FormatError(f"JSON document of {len(data)} bytes exceeds the limit of {max_bytes}")
    raw = bytes(data)
    if raw.startswith(b"\xef\xbb\xbf"):
        raise FormatError("JSON must not start with a byte order mark")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"JSON is not valid UTF-8 (byte {exc.start})") from exc
    _check_nesting(text, max_depth)
    try:
        value = _DECODER.decode(text)
    except FormatError:
        raise
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"invalid JSON: {exc}") from exc
    _check_strings(value)
    return value


def _check_nesting(text: str, max_depth: int) -> None:
    """Refuse input whose brackets nest deeper than ``max_depth`` before parsing it.

    Brackets inside strings are counted too, which can only over-estimate the
    depth of input that is refused anyway when it is deep; a cheap upper bound
    is checked first so ordinary documents skip the scan.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                raise FormatError(f"JSON nests deeper than {max_depth} levels")
        elif ch in "]}":
            depth -= 1


def _check_strings(value: Any) -> None:
    """Refuse lone surrogates (``"\\ud800"``): they are not Unicode text (RFC 7493 2.1)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is str:
            if not item.isascii() and _SURROGATE.search(item):
                raise FormatError("JSON string contains a lone surrogate escape")
        elif type(item) is dict:
            for key, sub in item.items():
                if not key.isascii() and _SURROGATE.search(key):
                    raise FormatError("JSON object key contains a lone surrogate escape")
                stack.append(sub)
        elif type(item) is list:
            stack.extend(item)


def _benchmark() -> None:  # pragma: no cover - measurement helper
    """Print records/s of both paths on a ~1 KB statement (``python -m prov_core.canonical``)."""
    import timeit

    statement: dict[str, Any] = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "dataset/reviews@3f2a", "digest": {"sha256": "ab" * 32}},
        ],
        "predicateType": "https://provgate.dev/ingest/v1",
        "predicate": {
            "source": {"uri": "https://example.org/data/reviews.parquet", "issuer": "Example Org"},
            "retrievedOn": "2025-01-02T03:04:05Z",
            "collectionMethod": "download",
            "originGeography": ["DE", "FR"],
            "license": {"expression": "CC-BY-4.0", "uri": "https://creativecommons.org/l/by/4.0/"},
            "confidentiality": "public",
            "consentLocation": "https://example.org/consent",
            "intendedUse": "training a sentiment classifier",
            "collector": {"id": "https://provgate.dev/collector/dagster", "version": "0.1.0"},
            "samples": {
                "count": 120000,
                "algorithm": "blake3",
                "leafEncoding": "arrow-row-v1",
                "root": "cd" * 32,
            },
            "files": {
                "count": 12,
                "totalBytes": 104857600,
                "algorithm": "blake3",
                "root": "ef" * 32,
            },
            "annotations": {"pipeline": "reviews", "run": "8c1e0f0a", "attempt": 1},
        },
    }
    with_float = json.loads(json.dumps(statement))
    with_float["predicate"]["annotations"]["sampleRate"] = 0.25
    n = 5000
    size = len(canonical_json(statement))

    def best(fn: Any) -> float:
        return min(timeit.repeat(fn, number=n, repeat=7)) / n

    for label, value in (("fast path", statement), ("exact path", with_float)):
        seconds = best(lambda v=value: canonical_json(v))
        print(f"{label:12} {size} B {1 / seconds:10.0f} records/s {seconds * 1e6:7.1f} us")
    seconds = best(lambda: rfc8785.dumps(statement))
    print(f"{'rfc8785':12} {size} B {1 / seconds:10.0f} records/s {seconds * 1e6:7.1f} us")


if __name__ == "__main__":  # pragma: no cover
    _benchmark()
