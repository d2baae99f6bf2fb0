"""The one registry of mapping functions. It also writes their documentation.

A function is declared with its parameters (name, static type, whether it must be
a literal), its result type, a one-line doc and an example; its kernel works on whole
Arrow arrays. Nothing outside this registry can be called from a spec.

>>> REGISTRY["lower"].signature
'lower(s: string) -> string'
>>> "hash" in REGISTRY and "open" not in REGISTRY
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc



@dataclass(frozen=True)
class Param:
    name: str
    type: str = "any"
    literal: bool = False  # must be a constant in the spec (patterns, formats, units, table names)
    optional: bool = False
    default: Any = None


@dataclass(frozen=True)
class Function:
    name: str
    params: tuple[Param, ...]
    returns: str | Callable[[list[str]], str]
    kernel: Callable[..., Any]
    doc: str
    example: str
    variadic: bool = False
    category: str = "string"

    @property
    def signature(self) -> str:
        ps = []
        for p in self.params:
            t = f"{p.name}: {'literal ' if p.literal else ''}{p.type}"
            ps.append(f"[{t}]" if p.optional else t)
        if self.variadic:
            ps.append("...")
        ret = self.returns if isinstance(self.returns, str) else "(depends on arguments)"
        return f"{self.name}({', '.join(ps)}) -> {ret}"

    def result_type(self, arg_types: list[str]) -> str:
        return self.returns if isinstance(self.returns, str) else self.returns(arg_types)


REGISTRY: dict[str, Function] = {}


def register(name, params, returns, doc, example, variadic=False, category="string"):
    def deco(kernel):
        REGISTRY[name] = Function(name, tuple(params), returns, kernel, doc, example, variadic, category)
        return kernel

    return deco


S = Param("s", "string")
X = Param("x", "float")
T = Param("t", "timestamp")


def _first_known(types: list[str]) -> str:
    return next((t for t in types if t not in ("any", "null")), "any")


def _all_ascii(arr) -> bool:
    """True when every byte of the string data is < 0x80 (one pass over the raw buffer, no decoding)."""
    import numpy as np

    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    for c in chunks:
        if not (pa.types.is_string(c.type) or pa.types.is_large_string(c.type)):
            return False
        data = c.buffers()[2]
        if data is not None and data.size and np.frombuffer(data, dtype=np.uint8).max() >= 0x80:
            return False
    return True


def _ascii_or_utf8(ascii_fn, utf8_fn):
    """Arrow's ASCII kernels are ~20x faster; use them when the whole batch is ASCII (same result then)."""

    def kernel(ctx, s):
        if isinstance(s, (pa.Array, pa.ChunkedArray)) and _all_ascii(s):
            return ascii_fn(s)
        return utf8_fn(s)

    return kernel


# ---------------------------------------------------------------- strings
_ASCII_SPACE = " \t\n\v\f\r\x1c\x1d\x1e\x1f"  # what utf8_trim_whitespace (and str.strip) trims below 0x80;
# ascii_trim_whitespace leaves \x1c-\x1f, so an all-ASCII batch would trim differently from a mixed one.
register("trim", [S], "string", "Remove white space at both ends.", "trim('  a ') = 'a'")(
    _ascii_or_utf8(lambda s: pc.ascii_trim(s, characters=_ASCII_SPACE), pc.utf8_trim_whitespace))
register("ltrim", [S], "string", "Remove white space at the start.", "ltrim('  a') = 'a'")(
    lambda ctx, s: pc.utf8_ltrim_whitespace(s))
register("rtrim", [S], "string", "Remove white space at the end.", "rtrim('a  ') = 'a'")(
    lambda ctx, s: pc.utf8_rtrim_whitespace(s))
register("lower", [S], "string", "Lower-case (Unicode, one character to one: 'İ' becomes 'i').", "lower('ÄB') = 'äb'")(_ascii_or_utf8(pc.ascii_lower, pc.utf8_lower))
register("upper", [S], "string", "Upper-case (Unicode, one character to one: 'ß' becomes 'ẞ', not 'SS').", "upper('ab') = 'AB'")(_ascii_or_utf8(pc.ascii_upper, pc.utf8_upper))
register("length", [S], "int", "Length in characters.", "length('abc') = 3")(
    lambda ctx, s: pc.cast(pc.utf8_length(s), pa.int64()))
register("concat", [Param("a"), Param("b")], "string",
         "Join values as text; a null counts as empty text.", "concat('a', null, 'b') = 'ab'", variadic=True)(
    lambda ctx, *xs: pc.binary_join_element_wise(*[pc.fill_null(ctx.text(x), "") for x in xs], ""))
register("substr", [S, Param("start", "int", literal=True), Param("length", "int", literal=True, optional=True)],
         "string", "Substring from 1-based start, of at most length characters.", "substr('abcdef', 2, 3) = 'bcd'")(
    lambda ctx, s, start, length=None: pc.utf8_slice_codeunits(
        s, start=max(start - 1, 0), stop=None if length is None else max(start - 1, 0) + length))
register("left", [S, Param("n", "int", literal=True)], "string", "The first n characters.", "left('abcdef', 2) = 'ab'")(
    lambda ctx, s, n: pc.utf8_slice_codeunits(s, start=0, stop=n))
register("right", [S, Param("n", "int", literal=True)], "string", "The last n characters.", "right('abcdef', 2) = 'ef'")(
    lambda ctx, s, n: pc.utf8_slice_codeunits(s, start=-n) if n else pc.utf8_slice_codeunits(s, start=0, stop=0))
register("replace", [S, Param("old", "string", literal=True), Param("new", "string", literal=True)], "string",
         "Replace every occurrence of old by new.", "replace('a-b-c', '-', '/') = 'a/b/c'")(
    lambda ctx, s, old, new: _replace(s, old, new))


def _replace(s, old: str, new: str):
    if not old:  # Arrow's replace_substring never returns on an empty pattern (the checks refuse it too)
        raise pa.ArrowInvalid("the text to replace must not be empty")
    return pc.replace_substring(s, pattern=old, replacement=new)
register("regex_extract", [S, Param("pattern", "string", literal=True), Param("group", "int", literal=True, optional=True, default=0)],
         "string", "The first match of an RE2 pattern (or one numbered group of it); null when it does not match.",
         r"regex_extract('order 42', '(\d+)', 1) = '42'")(lambda ctx, s, pattern, group=0: ctx.regex_extract(s, pattern, group))
register("regex_replace", [S, Param("pattern", "string", literal=True), Param("replacement", "string", literal=True)], "string",
         r"Replace every match of an RE2 pattern; \1 refers to a group.", r"regex_replace('a1b22', '\d+', '#') = 'a#b#'")(
    lambda ctx, s, pattern, replacement: pc.replace_substring_regex(s, pattern=pattern, replacement=replacement))
register("regex_match", [S, Param("pattern", "string", literal=True)], "bool", "True when the RE2 pattern matches anywhere.",
         r"regex_match('A-17', '^[A-Z]-\d+$') = true")(lambda ctx, s, pattern: pc.match_substring_regex(s, pattern=pattern))
register("contains", [S, Param("part", "string", literal=True)], "bool", "True when the text contains part.",
         "contains('refund please', 'refund') = true")(lambda ctx, s, part: pc.match_substring(s, pattern=part))
register("starts_with", [S, Param("prefix", "string", literal=True)], "bool", "True when the text starts with prefix.",
         "starts_with('WEB-1', 'WEB-') = true")(lambda ctx, s, prefix: pc.starts_with(s, pattern=prefix))
register("ends_with", [S, Param("suffix", "string", literal=True)], "bool", "True when the text ends with suffix.",
         "ends_with('a.pdf', '.pdf') = true")(lambda ctx, s, suffix: pc.ends_with(s, pattern=suffix))
register("split", [S, Param("sep", "string", literal=True)], "list", "Split text into a list at each separator.",
         "list_get(split('a,b', ','), 1) = 'b'")(lambda ctx, s, sep: pc.split_pattern(s, pattern=sep))
register("split_part", [S, Param("sep", "string", literal=True), Param("n", "int", literal=True)], "string",
         "The n-th (1-based) part of text split at a separator; null when there are fewer parts.",
         "split_part('a,b,c', ',', 2) = 'b'")(lambda ctx, s, sep, n: ctx.list_get(pc.split_pattern(s, pattern=sep), n - 1))
register("lpad", [S, Param("width", "int", literal=True), Param("fill", "string", literal=True, optional=True, default=" ")],
         "string", "Pad on the left to width characters.", "lpad('7', 3, '0') = '007'")(
    lambda ctx, s, width, fill=" ": pc.utf8_lpad(s, width=width, padding=fill))
register("contains_any", [S, Param("words", "string", literal=True)], "bool",
         "True when the text contains any of the comma-separated words (case-insensitive).",
         "contains_any('I want a REFUND', 'refund,cancel') = true", category="string")(
    lambda ctx, s, words: ctx.contains_any(s, words))

# ---------------------------------------------------------------- lists
L = Param("items", "list")
register("list_join", [L, Param("sep", "string", literal=True)], "string",
         "Join the text items of a list with a separator (null items skipped).", "list_join(split('a;b', ';'), ', ') = 'a, b'",
         category="list")(lambda ctx, items, sep: pc.binary_join(ctx.list_text(items), sep))
register("list_length", [L], "int", "Number of items in a list (null for a null list).", "list_length(split('a,b', ',')) = 2",
         category="list")(lambda ctx, items: pc.cast(pc.list_value_length(items), pa.int64()))
register("list_get", [L, Param("index", "int", literal=True)], "any",
         "The item at a 0-based index; null when the list is shorter.", "list_get(split('a,b', ','), 1) = 'b'",
         category="list")(lambda ctx, items, index: ctx.list_get(items, index))

# ---------------------------------------------------------------- numbers
register("round", [X, Param("digits", "int", literal=True, optional=True, default=0)],
         lambda ts: "int" if len(ts) == 1 and ts[0] == "int" else "float",
         "Round half to even to a number of digits.", "round(0.125, 2) = 0.12", category="number")(
    lambda ctx, x, digits=0: pc.round(x, ndigits=digits, round_mode="half_to_even"))
register("floor", [X], "float", "Largest integer not above x.", "floor(2.7) = 2", category="number")(lambda ctx, x: pc.floor(x))
register("ceil", [X], "float", "Smallest integer not below x.", "ceil(2.1) = 3", category="number")(lambda ctx, x: pc.ceil(x))
register("abs", [X], lambda ts: ts[0], "Absolute value.", "abs(-2) = 2", category="number")(lambda ctx, x: pc.abs_checked(x))
register("greatest", [Param("a"), Param("b")], _first_known, "The largest non-null argument.", "greatest(1, 5, 3) = 5",
         variadic=True, category="number")(lambda ctx, *xs: ctx.extreme(pc.max_element_wise, xs))
register("least", [Param("a"), Param("b")], _first_known, "The smallest non-null argument.", "least(1, 5, 3) = 1",
         variadic=True, category="number")(lambda ctx, *xs: ctx.extreme(pc.min_element_wise, xs))

# ---------------------------------------------------------------- nulls and conditions
register("coalesce", [Param("a"), Param("b")], _first_known, "The first non-null argument.", "coalesce(null, 0) = 0",
         variadic=True, category="condition")(lambda ctx, *xs: pc.coalesce(*ctx.unify(xs)))
register("nullif", [Param("a"), Param("b")], lambda ts: ts[0], "Null when a equals b, else a.", "nullif('', '') is null",
         category="condition")(lambda ctx, a, b: pc.if_else(pc.fill_null(pc.equal(a, b), False), pa.scalar(None, ctx.type_of(a)), a))
register("if", [Param("condition", "bool"), Param("then"), Param("otherwise")], lambda ts: _first_known(ts[1:]),
         "then where the condition is true, otherwise elsewhere (also where it is null).", "if(1 > 0, 'y', 'n') = 'y'",
         category="condition")(lambda ctx, c, a, b: ctx.if_else(c, a, b))

# ---------------------------------------------------------------- dates and times
_EXAMPLE_PARTS = {"year": 2026, "month": 11, "day": 24, "hour": 10, "minute": 30, "day_of_week": 1,
                  "quarter": 4}
for _part, _fn in [("year", pc.year), ("month", pc.month), ("day", pc.day), ("hour", pc.hour),
                   ("minute", pc.minute), ("day_of_week", pc.day_of_week), ("quarter", pc.quarter)]:
    register(_part, [T], "int", f"The {_part.replace('_', ' ')} of a date or timestamp (UTC)."
             + (" Monday is 0, Sunday 6." if _part == "day_of_week" else ""),
             f"{_part}(to_timestamp('2026-11-24T10:30:00Z')) = {_EXAMPLE_PARTS[_part]}", category="date")(
        (lambda f: lambda ctx, t: pc.cast(f(t), pa.int64()))(_fn))
register("date_trunc", [Param("unit", "string", literal=True), T], lambda ts: ts[1] if ts[1] != "any" else "timestamp",
         "Truncate to a unit: year, quarter, month, week, day, hour, minute, second.",
         "date_trunc('month', to_date('2026-11-24')) = to_date('2026-11-01')", category="date")(
    lambda ctx, unit, t: pc.floor_temporal(t, unit=unit))
register("add_days", [T, Param("n", "int")], lambda ts: ts[0], "Add n days.", "add_days(to_date('2026-11-24'), 7) = to_date('2026-12-01')",
         category="date")(lambda ctx, t, n: ctx.add_duration(t, n, 86_400_000_000))
register("add_hours", [T, Param("n", "int")], lambda ts: ts[0], "Add n hours.", "add_hours(to_timestamp('2026-11-24T23:00:00Z'), 2) = to_timestamp('2026-11-25T01:00:00Z')", category="date")(
    lambda ctx, t, n: ctx.add_duration(t, n, 3_600_000_000))
register("add_minutes", [T, Param("n", "int")], lambda ts: ts[0], "Add n minutes.", "add_minutes(to_timestamp('2026-11-24T23:45:00Z'), 30) = to_timestamp('2026-11-25T00:15:00Z')", category="date")(
    lambda ctx, t, n: ctx.add_duration(t, n, 60_000_000))
register("date_diff", [Param("unit", "string", literal=True), Param("start", "timestamp"), Param("end", "timestamp")], "int",
         "Unit boundaries crossed from start to end, as SQL DATEDIFF (day, hour, minute, second, week from Monday, month, year).",
         "date_diff('day', to_date('2026-11-01'), to_date('2026-11-24')) = 23", category="date")(
    lambda ctx, unit, a, b: ctx.date_diff(unit, a, b))
register("format_date", [T, Param("format", "string", literal=True)], "string", "Format a date or timestamp (strftime).",
         "format_date(to_date('2026-11-24'), '%d.%m.%Y') = '24.11.2026'", category="date")(
    lambda ctx, t, fmt: pc.strftime(ctx.whole_seconds(t), format=fmt))

# ---------------------------------------------------------------- casts (bad values are quarantined)
def _cast_fn(target):
    def kernel(ctx, x, *opts):
        fmt = opts[0] if len(opts) > 0 else None
        tz = opts[1] if len(opts) > 1 else None
        return ctx.cast(x, target, fmt, tz)

    return kernel


_EXAMPLE_CASTS = {"string": "to_string(42) = '42'", "int": "to_int(' 42 ') = 42", "float": "to_float('1.5') = 1.5",
                  "bool": "to_bool('yes') = true"}
for _t in ("string", "int", "float", "bool"):
    register(f"to_{_t}", [Param("x")], _t, f"Cast to {_t}; a value that cannot be cast is quarantined.",
             _EXAMPLE_CASTS[_t], category="cast")(_cast_fn(_t))
register("to_decimal", [Param("x"), Param("precision", "int", literal=True), Param("scale", "int", literal=True)], "decimal",
         "Cast to decimal(precision, scale); a value that cannot be cast is quarantined.", "to_decimal('12.50', 12, 2) = 12.50",
         category="cast")(lambda ctx, x, p, s: ctx.cast(x, f"decimal({p},{s})"))
register("to_date", [Param("x"), Param("format", "string", literal=True, optional=True)], "date",
         "Parse a date (ISO 8601, or a strptime format); unparseable values are quarantined.",
         "to_date('24.11.2026', '%d.%m.%Y') = to_date('2026-11-24')", category="cast")(_cast_fn("date"))
register("to_timestamp", [Param("x"), Param("format", "string", literal=True, optional=True),
                          Param("tz", "string", literal=True, optional=True)], "timestamp",
         "Parse a timestamp (ISO 8601 with zone, or a strptime format read in time zone tz); result in UTC.",
         "to_timestamp('24.11.2026 10:00', '%d.%m.%Y %H:%M', 'Europe/Berlin') = to_timestamp('2026-11-24T09:00:00Z')", category="cast")(_cast_fn("timestamp"))

# ---------------------------------------------------------------- personal data
register("hash", [Param("x")], "string", "Keyed hash (HMAC-SHA256, hex) under the deployment's subject key: "
         "stable pseudonym, not reversible without the key.", "length(hash('ann@example.com')) = 64", category="privacy")(
    lambda ctx, x: ctx.hmac(x))
register("mask", [S, Param("keep", "int", literal=True, optional=True, default=4)], "string",
         "Replace all but the last keep characters by '*'; a value of at most keep characters is masked entirely.",
         "mask('4111111111111111') = '************1111'",
         category="privacy")(lambda ctx, s, keep=4: ctx.mask(s, keep))
register("mask_email", [S], "string", "Keep the first letter and the domain of an e-mail address.",
         "mask_email('ann.lee@example.com') = 'a***@example.com'", category="privacy")(
    lambda ctx, s: pc.replace_substring_regex(s, pattern=r"^(.)[^@]*@", replacement=r"\1***@"))

# ---------------------------------------------------------------- reference data
register("lookup", [Param("table", "string", literal=True), Param("key"), Param("column", "string", literal=True)], "any",
         "The column of the row of a reference table (mappings/reference/<table>.csv or .parquet) whose first column "
         "equals key; null when there is none.", "lookup('country_regions', 'DE', 'region') = 'EMEA'",
         category="reference")(lambda ctx, table, key, column: ctx.lookup(table, key, column))


def markdown() -> str:
    """The function reference, generated from the registry (docs/functions.md)."""
    out = ["# Mapping functions", "", "Generated from `transforms/functions.py` by `weftline functions`; do not edit.", ""]
    for cat in sorted({f.category for f in REGISTRY.values()}):
        out += [f"## {cat}", "", "| function | what it does | example |", "|---|---|---|"]
        for f in sorted((f for f in REGISTRY.values() if f.category == cat), key=lambda f: f.name):
            out.append(f"| `{f.signature}` | {f.doc} | `{f.example}` |")
        out.append("")
    return "\n".join(out)
