"""Strict casts that never null a value silently: they return the bad rows instead.

The vectorised cast runs on the whole array; only when Arrow refuses does the array
get bisected, so k bad rows cost O(k log n) casts, not a per-row loop.

>>> import pyarrow as pa
>>> out, bad = safe_cast(pa.array(["1", "x", None, "3"]), "int")
>>> out.to_pylist(), bad.to_pylist()
([1, None, None, 3], [False, True, False, False])
>>> out, bad = safe_cast(pa.array([True, None]), "date")  # a type that cannot be a date at all
>>> out.type, bad.to_pylist()
(DataType(date32[day]), [True, False])
>>> out, bad = safe_cast(pa.array(["2026-11-24 10:00", "24.11.2026"]), "timestamp", tz="Europe/Berlin")
>>> out[0].as_py().isoformat(), bad.to_pylist()
('2026-11-24T09:00:00+00:00', [False, True])
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.types import arrow_type, base

_TRUE = ["true", "t", "yes", "y", "1", "on"]
_FALSE = ["false", "f", "no", "n", "0", "off"]


def _bisect(arr: pa.Array, convert) -> tuple[pa.Array, pa.Array]:
    """Apply ``convert`` to ``arr``; where it raises, split until the bad rows are isolated."""
    if len(arr) == 0:
        try:
            return convert(arr), pa.array([], pa.bool_())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, OverflowError):
            return pa.nulls(0), pa.array([], pa.bool_())
    try:
        out = convert(arr)
        return out, pa.array(np.zeros(len(arr), dtype=bool))
    except (pa.ArrowInvalid, ValueError, OverflowError):
        if len(arr) == 1:
            try:
                probe = convert(pa.nulls(1, arr.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, OverflowError):
                probe = pa.nulls(1)
            return probe, pa.array([True])
        mid = len(arr) // 2
        lo, lo_bad = _bisect(arr.slice(0, mid), convert)
        hi, hi_bad = _bisect(arr.slice(mid), convert)
        return pa.concat_arrays([lo, hi]), pa.concat_arrays([lo_bad, hi_bad])


def _text_to_bool(arr: pa.Array) -> pa.Array:
    low = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
    is_t = pc.is_in(low, value_set=pa.array(_TRUE))
    is_f = pc.is_in(low, value_set=pa.array(_FALSE))
    if pc.all(pc.or_kleene(pc.or_(is_t, is_f), pc.is_null(arr))).as_py() is False:
        raise pa.ArrowInvalid("not a boolean")
    return pc.if_else(pc.is_null(arr), pa.scalar(None, pa.bool_()), is_t)


def _strptime(text: pa.Array, fmt: str) -> pa.Array:
    """strptime that refuses impossible dates (Arrow rolls 31.02. over to March): the result must format back."""
    parsed = pc.strptime(text, format=fmt, unit="us", error_is_null=False)
    if "%" in fmt and not any(d in fmt for d in ("%f", "%z", "%Z", "%j", "%b", "%B", "%a", "%A", "%p", "%y")):
        back = pc.strftime(parsed, format=fmt)
        if pc.all(pc.or_kleene(pc.equal(back, text), pc.is_null(text))).as_py() is False:
            raise pa.ArrowInvalid("not a valid date for the format")
    return parsed


def _to_timestamp(arr: pa.Array, fmt: str | None, tz: str | None) -> pa.Array:
    target = pa.timestamp("us", tz="UTC")
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is None:
            arr = pc.assume_timezone(arr, tz or "UTC")
        return arr.cast(target)
    if pa.types.is_date(arr.type):
        return pc.assume_timezone(arr.cast(pa.timestamp("us")), tz or "UTC").cast(target)
    text = arr.cast(pa.string())
    if fmt:
        naive = _strptime(text, fmt)
        return pc.assume_timezone(naive, tz or "UTC").cast(target)
    text = pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2}) (\d)", r"\1T\2")
    has_zone = pc.match_substring_regex(text, r"(Z|[+-]\d{2}:?\d{2})$")
    if pc.any(has_zone).as_py():
        if pc.all(pc.or_kleene(has_zone, pc.is_null(text))).as_py() is False:
            raise pa.ArrowInvalid("mixed zoned and naive timestamps")
        return text.cast(target)
    return pc.assume_timezone(text.cast(pa.timestamp("us")), tz or "UTC").cast(target)


def _to_date(arr: pa.Array, fmt: str | None) -> pa.Array:
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        return arr.cast(pa.date32())
    if fmt:
        return _strptime(arr.cast(pa.string()), fmt).cast(pa.date32())
    return arr.cast(pa.string()).cast(pa.date32())


def converter(target: str, fmt: str | None = None, tz: str | None = None):
    """The strict whole-array conversion to a cast target (raises on any bad value)."""
    kind = base(target)
    out_type = arrow_type(target)

    def convert(arr: pa.Array) -> pa.Array:
        if pa.types.is_null(arr.type):
            return pa.nulls(len(arr), out_type)
        if arr.type == out_type:  # e.g. a date column given `type: date`: nothing to convert
            return arr
        if kind == "bool" and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return _text_to_bool(arr)
        if kind == "timestamp":
            return _to_timestamp(arr, fmt, tz)
        if kind == "date":
            return _to_date(arr, fmt)
        if kind in ("int", "float", "decimal") and pa.types.is_string(arr.type):
            arr = pc.utf8_trim_whitespace(arr)
        if kind == "decimal":
            if pa.types.is_floating(arr.type):
                arr = pc.round(arr, ndigits=out_type.scale, round_mode="half_to_even")
            elif pa.types.is_integer(arr.type):
                arr = pc.cast(arr, pa.decimal128(38, out_type.scale))
        if kind == "string" and pa.types.is_timestamp(arr.type):
            return pc.strftime(arr, format=fmt or "%Y-%m-%dT%H:%M:%S.%fZ" if arr.type.tz else "%Y-%m-%dT%H:%M:%S")
        return pc.cast(arr, out_type, safe=True)

    return convert


def safe_cast(arr: pa.Array, target: str, fmt: str | None = None, tz: str | None = None) -> tuple[pa.Array, pa.Array]:
    """Cast ``arr`` to ``target``; return ``(values, bad)`` where ``bad`` marks rows that could not be cast."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    try:
        return _bisect(arr, converter(target, fmt, tz))
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):  # e.g. bool → date: no value of this type can be cast
        return pa.nulls(len(arr), arrow_type(target)), pc.is_valid(arr)
