"""Evaluate a checked expression tree over one Arrow table, vectorised.

Run-time problems are data, not exceptions: a row whose value cannot be computed
(a bad cast, an overflow, a division by zero) is reported to the :class:`Errors`
sink with a reason and becomes null; the engine quarantines it. Data-dependent
kernel failures are isolated by bisection, so one bad row costs O(log n) kernel
calls, never a per-row loop.

>>> import pyarrow as pa
>>> from transforms.expr.parser import parse
>>> t = pa.table({"a": ["1", "x", "3"], "c": [{"e": "A"}, {"e": None}, None]})
>>> errs = Errors(3)
>>> ev = Evaluator(t, Env(), errs)
>>> ev.array(parse("to_int(a) * 2")).to_pylist()
[2, None, 6]
>>> errs.mask().to_pylist(), errs.reasons()[1]
([False, True, False], "cannot cast 'x' to int")
>>> ev.array(parse("lower(c.e) || '!'")).to_pylist()
['a!', None, None]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.hashing import hmac_sha256_hex
from transforms.casts import safe_cast
from transforms.expr import ast
from transforms.functions import REGISTRY

_ARITH = {"+": "add_checked", "-": "subtract_checked", "*": "multiply_checked", "%": "modulo"}
_CMP = {"=": "equal", "!=": "not_equal", "<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal"}
_NULL_AS = {"string": pa.string(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(),
            "timestamp": pa.timestamp("us", tz="UTC")}
_UNITS_US = {"week": 604_800_000_000, "day": 86_400_000_000, "hour": 3_600_000_000, "minute": 60_000_000, "second": 1_000_000}


@dataclass
class Env:
    """What an expression may use besides the record: the subject key and loaded reference tables."""

    subject_key: bytes = b""
    reference: dict[str, pa.Table] = field(default_factory=dict)


class Errors:
    """Per-row failures of one evaluation: a mask and a reason per failing row (first reason wins).

    Nothing is allocated until a row fails: the common, clean batch pays nothing.
    """

    def __init__(self, n: int):
        self.n = n
        self._bad: np.ndarray | None = None
        self._reasons: dict[int, str] = {}
        self._fields: dict[int, str] = {}
        self.field: str | None = None
        self.default_used: np.ndarray | None = None  # rows where a map's default applied (rule bookkeeping)

    def fail(self, mask: pa.Array | np.ndarray, reason: str | dict[int, str]) -> None:
        """Mark rows as failed with a reason: one text for all, or a {row: text} dict."""
        m = mask if isinstance(mask, np.ndarray) else pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
        if self._bad is None:
            self._bad = np.zeros(self.n, dtype=bool)
        idx = np.flatnonzero(m & ~self._bad)
        if not len(idx):
            return
        texts = [reason] * len(idx) if isinstance(reason, str) else [reason.get(i, "") for i in idx.tolist()]
        for i, text in zip(idx.tolist(), texts):
            self._reasons[i] = text
            self._fields[i] = self.field or ""
        self._bad[idx] = True

    def mask(self) -> pa.Array:
        return pa.array(self.bad_numpy())

    def any(self) -> bool:
        return self._bad is not None and bool(self._bad.any())

    def reasons(self) -> dict[int, str]:
        return self._reasons

    def fields(self) -> dict[int, str]:
        return self._fields

    def bad_numpy(self) -> np.ndarray:
        return self._bad if self._bad is not None else np.zeros(self.n, dtype=bool)


def _one_chunk(col):
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def _is_scalar(x: Any) -> bool:
    return isinstance(x, pa.Scalar)


def type_mismatch(name: str, args, err: Exception) -> str:
    """The reason given when the data's types do not fit an operation (schema drift in a batch)."""
    types = [str(a.type) for a in args if isinstance(a, (pa.Array, pa.ChunkedArray, pa.Scalar))]
    return f"{name}: cannot apply to {', '.join(types) or 'these'} values ({str(err).splitlines()[0]})"


def _quote(v: Any) -> str:
    return "null" if v is None else repr(v) if isinstance(v, str) else str(v)


def name_groups(pattern: str) -> tuple[str, int]:
    """Name the capturing groups of an RE2 pattern g1, g2, … in order (escapes and [classes] skipped).

    >>> name_groups("(a)[(]x(?:y)(?P<z>w)")
    ('(?P<g1>a)[(]x(?:y)(?P<g2>w)', 2)
    """
    out, n, i = [], 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if ch == "[":  # a character class: copy to its closing bracket ("[]…]" and "[^]…]" start with a literal ])
            j = i + 1 + (pattern[i + 1:i + 2] == "^")
            j += pattern[j:j + 1] == "]"
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            out.append(pattern[i:j + 1])
            i = j + 1
            continue
        if ch == "(":
            named = re.match(r"\(\?P?<[A-Za-z_][A-Za-z0-9_]*>", pattern[i:])
            if pattern[i + 1:i + 2] != "?" or named:
                n += 1
                out.append(f"(?P<g{n}>")
                i += len(named.group(0)) if named else 1
                continue
        out.append(ch)
        i += 1
    return "".join(out), n


@lru_cache(maxsize=4096)
def _scalar(kind: type, value: Any) -> pa.Scalar:
    """A literal's Arrow scalar, made once (scalars are immutable; ``kind`` keeps 1 and True apart)."""
    return pa.scalar(value)


class Evaluator:
    def __init__(self, table: pa.Table, env: Env, errors: Errors):
        self.table = table
        self.n = table.num_rows
        self.env = env
        self.errors = errors
        self.case_conditions: dict[int, list[pa.Array]] = {}  # id(Case node) -> its evaluated conditions
        self.case_index: dict[int, pa.Array] = {}  # id(Case node) -> branch taken per row, when already computed

    # ------------------------------------------------------------ entry points
    def array(self, node: ast.Node) -> pa.Array:
        """Evaluate and broadcast to a full-length array."""
        return self.broadcast(self.eval(node))

    def broadcast(self, x: Any) -> pa.Array:
        if _is_scalar(x):
            return pa.repeat(x, self.n) if x.is_valid else pa.nulls(self.n, x.type)
        return _one_chunk(x)

    def eval(self, node: ast.Node) -> Any:
        method = getattr(self, "_" + type(node).__name__.lower())
        return method(node)

    # ------------------------------------------------------------ nodes
    def _literal(self, node: ast.Literal):
        return _scalar(type(node.value), node.value)

    def _path(self, node: ast.Path):
        return self.resolve(node.parts)

    def resolve(self, parts: tuple) -> pa.Array:
        name = parts[0]
        if name not in self.table.column_names:
            return pa.nulls(self.n)  # absent in this batch (drift); required-ness is checked by the engine
        arr = _one_chunk(self.table.column(name))
        for p in parts[1:]:
            if isinstance(p, int):
                if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
                    return pa.nulls(self.n)
                arr = self.list_get(arr, p)
            else:
                if not pa.types.is_struct(arr.type) or arr.type.get_field_index(p) < 0:
                    return pa.nulls(self.n)
                arr = pc.struct_field(arr, p)
        return arr

    def _call(self, node: ast.Call):
        fn = REGISTRY[node.name]
        args = []
        for i, a in enumerate(node.args):
            param = fn.params[min(i, len(fn.params) - 1)]
            if param.literal and isinstance(a, ast.Literal):
                args.append(a.value)
                continue
            value = self.eval(a)
            if pa.types.is_null(value.type) and param.type in _NULL_AS:
                value = value.cast(_NULL_AS[param.type])  # an all-null column has no type yet
            args.append(value)
        return self.guarded(node.name, fn.kernel, self, *args)

    def _binop(self, node: ast.BinOp):
        op = node.op
        if op in ("and", "or"):
            left, right = self.eval(node.left), self.eval(node.right)
            fn = pc.and_kleene if op == "and" else pc.or_kleene
            return self.guarded(op, lambda ctx, a, b: fn(a, b), self, left, right)
        left, right = self.eval(node.left), self.eval(node.right)
        if op == "||":
            return pc.binary_join_element_wise(self.text(left), self.text(right), "", null_handling="emit_null")
        if op == "like":
            pattern = right.as_py() if _is_scalar(right) else None
            if pattern is None:
                return pa.nulls(self.n, pa.bool_())
            return self.guarded("like", lambda ctx, a: pc.match_like(a, pattern=pattern), self, left)
        if op in _CMP:
            left, right = self.unify([left, right])
            return self.guarded(op, lambda ctx, a, b: getattr(pc, _CMP[op])(a, b), self, left, right)
        if op == "/":
            zero = pc.fill_null(pc.equal(right, 0), False)
            if _is_scalar(zero) and zero.as_py():
                self.errors.fail(pc.is_valid(self.broadcast(left)), "division by zero")
                return pa.nulls(self.n, pa.float64())
            if not _is_scalar(zero) and pc.any(zero).as_py():
                self.errors.fail(pc.and_(zero, pc.is_valid(self.broadcast(left))), "division by zero")
                right = pc.if_else(zero, pa.scalar(None, pa.float64()), pc.cast(right, pa.float64()))
            return self.guarded("/", lambda ctx, a, b: pc.divide(pc.cast(a, pa.float64()), pc.cast(b, pa.float64())), self, left, right)
        return self.guarded(op, lambda ctx, a, b: getattr(pc, _ARITH[op])(a, b), self, left, right)

    def _unaryop(self, node: ast.UnaryOp):
        x = self.eval(node.operand)
        if node.op == "not":
            return self.guarded("not", lambda ctx, a: pc.invert(a), self, x)
        if node.op == "neg":
            return self.guarded("-", lambda ctx, a: pc.negate_checked(a), self, x)
        if node.op == "is_null":
            return pc.is_null(self.broadcast(x))
        return pc.is_valid(self.broadcast(x))

    def _inlist(self, node: ast.InList):
        x = self.broadcast(self.eval(node.operand))
        try:
            values = pa.array([i.value for i in node.items])
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed literal types, e.g. (1, 'a'): compare as text
            values = pa.array([None if i.value is None else str(i.value) for i in node.items], pa.string())
        if pa.types.is_null(x.type):  # a column null in the whole batch: typed like the list (null IN … is null)
            x = x.cast(values.type)
        elif values.type != x.type:
            try:
                values = values.cast(x.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                x = self.text(x)
                values = values.cast(pa.string())
        out = pc.is_in(x, value_set=values)
        out = pc.if_else(pc.is_null(x), pa.scalar(None, pa.bool_()), out)
        return pc.invert(out) if node.negated else out

    def _case(self, node: ast.Case):
        conds = [self._condition(c) for c, _ in node.branches]
        owns = self._owners(conds)
        # a branch fails only the rows that take it; one no row takes is not computed: only its type
        # counts, so the result has the same type in every batch
        values = [self._branch(v, own) if own.any() else self._typed_null(v)
                  for (_, v), own in zip(node.branches, owns)]
        if node.default is None:
            default = pa.scalar(None)
        else:
            default = self._branch(node.default, owns[-1]) if owns[-1].any() else self._typed_null(node.default)
        values = self.unify(values + [default])
        self.case_conditions[id(node)] = conds
        if not any(own.any() for own in owns[:-1]):
            return values[-1]
        if all(_is_scalar(v) for v in values) and not pa.types.is_null(values[0].type):
            # constant branches (the common case): one int8 branch index, then a take — and the index
            # doubles as the record of which branch fired
            idx = self._branch_index(conds)
            self.case_index[id(node)] = idx
            return pc.take(pa.array([v.as_py() for v in values], values[0].type), idx)
        return pc.case_when(pc.make_struct(*conds), *[self.broadcast(v) for v in values])

    def _owners(self, conds: list[pa.Array]) -> list[np.ndarray]:
        """Per branch, the rows whose first true condition is its own; last, the rows left for ELSE."""
        claimed = np.zeros(self.n, dtype=bool)
        owns = []
        for c in conds:
            holds = c.to_numpy(zero_copy_only=False)
            owns.append(holds & ~claimed)
            claimed |= holds
        return owns + [~claimed]

    def _branch(self, node: ast.Node, own: np.ndarray) -> Any:
        """A branch's value over all rows; its errors count for the rows in ``own`` only."""
        outer, self.errors = self.errors, Errors(self.n)
        try:
            value = self.eval(node)
        finally:
            local, self.errors = self.errors, outer
        if local.any():
            outer.fail(local.bad_numpy() & own, local.reasons())
        return value

    def _typed_null(self, node: ast.Node) -> pa.Scalar:
        """A null of the type ``node`` would have here, found on no rows."""
        empty = Evaluator(self.table.slice(0, 0), self.env, Errors(0))
        return pa.scalar(None, empty.eval(node).type)

    def _branch_index(self, conds: list[pa.Array]) -> pa.Array:
        k = len(conds)
        return pc.case_when(pc.make_struct(*conds), *[pa.scalar(i, pa.int8()) for i in range(k)], pa.scalar(k, pa.int8()))

    def _condition(self, node: ast.Node) -> pa.Array:
        """A CASE condition as true/false (null is false); data of another type fails every row, with why."""
        v = self.broadcast(self.eval(node))
        if pa.types.is_null(v.type):
            return pa.repeat(pa.scalar(False), self.n)
        if not pa.types.is_boolean(v.type):
            self.errors.fail(np.ones(self.n, dtype=bool), f"a CASE condition gives {v.type} values, not true/false")
            return pa.repeat(pa.scalar(False), self.n)
        return pc.fill_null(v, False)

    def branch_taken(self, node: ast.Case) -> np.ndarray:
        """Which branch of an evaluated CASE each row took (len(branches) for ELSE), as int8."""
        conds = self.case_conditions[id(node)]
        if not conds:
            return np.zeros(self.n, dtype=np.int8)
        idx = self.case_index.get(id(node))
        return (idx if idx is not None else self._branch_index(conds)).to_numpy(zero_copy_only=False)

    # ------------------------------------------------------------ helpers used by kernels
    def guarded(self, name: str, kernel, ctx, *args):
        """Run a kernel on whole arrays; isolate rows that make it fail, report them, null them."""
        try:
            return kernel(ctx, *args)
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
            # the batch's column has another type than the spec expects (drift): every row fails, with why
            self.errors.fail(np.ones(self.n, dtype=bool), type_mismatch(name, args, err))
            return pa.nulls(self.n)
        except pa.ArrowInvalid as err:
            if self.n == 0 or all(_is_scalar(a) or not isinstance(a, (pa.Array, pa.ChunkedArray)) for a in args):
                self.errors.fail(np.ones(self.n, dtype=bool), f"{name}: {err}")
                return pa.nulls(self.n)
            arrays = [self.broadcast(a) if isinstance(a, (pa.Array, pa.ChunkedArray, pa.Scalar)) else a for a in args]
            out, bad, reason = self._bisect(name, kernel, ctx, arrays, 0, self.n)
            self.errors.fail(bad, reason)
            return out

    def _bisect(self, name, kernel, ctx, arrays, start, length):
        sliced = [a.slice(start, length) if isinstance(a, pa.Array) else a for a in arrays]
        try:
            out = kernel(ctx, *sliced)
            out = pa.repeat(out, length) if _is_scalar(out) else out
            return out, np.zeros(length, dtype=bool) if start == 0 and length == self.n else None, None
        except pa.ArrowInvalid as err:
            if length == 1:
                nulls = [pa.nulls(1, a.type) if isinstance(a, pa.Array) else a for a in sliced]
                try:
                    out = kernel(ctx, *nulls)
                except pa.ArrowInvalid:
                    out = pa.nulls(1)
                bad = np.zeros(self.n, dtype=bool)
                bad[start] = True
                return out, bad, f"{name}: {err}"
            half = length // 2
            lo, lo_bad, r1 = self._bisect(name, kernel, ctx, arrays, start, half)
            hi, hi_bad, r2 = self._bisect(name, kernel, ctx, arrays, start + half, length - half)
            if lo.type != hi.type:
                lo, hi = (lo.cast(hi.type), hi) if pa.types.is_null(lo.type) else (lo, hi.cast(lo.type))
            bad = np.zeros(self.n, dtype=bool)
            for b in (lo_bad, hi_bad):
                if b is not None:
                    bad |= b
            return pa.concat_arrays([lo, hi]), bad, r1 or r2

    def text(self, x):
        t = x.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return x
        if pa.types.is_null(t):
            return x.cast(pa.string())
        if pa.types.is_timestamp(t):
            return pc.strftime(x, format="%Y-%m-%dT%H:%M:%S")
        return pc.cast(x, pa.string())

    def type_of(self, x) -> pa.DataType:
        return x.type

    def unify(self, xs: list) -> list:
        """Cast arguments to one common type (null < int < float; anything with text becomes text)."""
        types = [x.type for x in xs if not pa.types.is_null(x.type)]
        if not types or all(t == types[0] for t in types):
            target = types[0] if types else pa.null()
        elif all(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in types):
            decimals = [t for t in types if pa.types.is_decimal(t)]
            if any(pa.types.is_floating(t) for t in types):
                target = pa.float64()
            elif decimals:
                target = pa.decimal128(38, max(t.scale for t in decimals))  # wide enough for any int64 too
            else:
                target = pa.int64()
        elif any(pa.types.is_timestamp(t) for t in types) and all(pa.types.is_timestamp(t) or pa.types.is_date(t) for t in types):
            target = pa.timestamp("us", tz="UTC")
        else:
            target = pa.string()
        out = []
        for x in xs:
            if x.type == target:
                out.append(x)
            elif target == pa.string():
                out.append(self.text(x) if not pa.types.is_null(x.type) else x.cast(target))
            elif pa.types.is_timestamp(target) and pa.types.is_date(x.type):
                out.append(pc.assume_timezone(x.cast(pa.timestamp("us")), "UTC"))
            else:
                # int64 beyond 2**53 has no exact float64: round like SQL does rather than fail the batch
                out.append(pc.cast(x, target, safe=not (pa.types.is_floating(target) and pa.types.is_integer(x.type))))
        return out

    def if_else(self, c, a, b):
        a, b = self.unify([a, b])
        return pc.if_else(pc.fill_null(c, False), a, b)

    def list_get(self, arr, i: int):
        arr = self.broadcast(arr)
        long_enough = pc.fill_null(pc.greater(pc.list_value_length(arr), i), False)
        safe = pc.if_else(long_enough, arr, pa.scalar(None, arr.type))
        return pc.list_element(safe, i)

    def extreme(self, fn, xs):
        """greatest/least over unified arguments; temporal values compare as their integer ticks."""
        xs = self.unify(list(xs))
        t = xs[0].type
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            ticks = pa.int64() if pa.types.is_timestamp(t) else pa.int32()
            return fn(*[x.cast(ticks) for x in xs], skip_nulls=True).cast(t)
        return fn(*xs, skip_nulls=True)

    def whole_seconds(self, t):
        """Timestamps truncated to seconds (Arrow's %S prints the fraction of finer units)."""
        t = self.broadcast(t)
        if pa.types.is_timestamp(t.type) and t.type.unit != "s":
            return pc.floor_temporal(t, unit="second").cast(pa.timestamp("s", tz=t.type.tz))
        return t

    def list_text(self, items):
        """A list array with text items (nulls dropped), ready for joining."""
        items = self.broadcast(items)
        if pa.types.is_null(items.type):
            return pa.nulls(self.n, pa.list_(pa.string()))
        if not (pa.types.is_list(items.type) or pa.types.is_large_list(items.type)):
            raise pa.ArrowNotImplementedError(f"not a list: {items.type}")
        value_type = items.type.value_type
        if not pa.types.is_string(value_type):
            items = items.cast(pa.list_(pa.string()))
        flat = pc.list_flatten(items)
        parents = pc.list_parent_indices(items)
        keep = pc.is_valid(flat)
        if pc.all(keep).as_py() is not False:
            return items
        flat, parents = pc.filter(flat, keep), pc.filter(parents, keep)
        lengths = np.bincount(parents.to_numpy(), minlength=len(items))
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        rebuilt = pa.ListArray.from_arrays(offsets, flat)
        return pc.if_else(pc.is_null(items), pa.scalar(None, rebuilt.type), rebuilt)

    def regex_extract(self, s, pattern: str, group: int):
        named, n_groups = name_groups(pattern)
        if group > n_groups:
            raise pa.ArrowInvalid(f"pattern has {n_groups} group(s), not {group}")
        out = pc.extract_regex(self.broadcast(s), pattern=f"(?P<g0>{named})")  # Arrow wants every group named
        return pc.struct_field(out, f"g{group}")

    def contains_any(self, s, words: str):
        low = pc.utf8_lower(self.broadcast(s))
        terms = [w.strip().lower() for w in words.split(",") if w.strip()]
        out = pa.repeat(pa.scalar(False), self.n)
        for w in terms:
            out = pc.or_(out, pc.match_substring(low, pattern=w))
        return pc.if_else(pc.is_null(low), pa.scalar(None, pa.bool_()), out)

    def add_duration(self, t, n, unit_us: int):
        t = self.broadcast(t)
        is_date = pa.types.is_date(t.type)
        ts = pc.assume_timezone(t.cast(pa.timestamp("us")), "UTC") if is_date else t
        unit = ts.type.unit if pa.types.is_timestamp(ts.type) else "us"
        per = {"s": 1_000_000, "ms": 1000, "us": 1, "ns": 0.001}[unit]
        delta = pc.multiply_checked(pc.cast(n, pa.int64()), int(unit_us / per) if per >= 1 else unit_us * 1000)
        raw = pc.add_checked(ts.cast(pa.int64()), delta)
        out = raw.cast(ts.type)
        return out.cast(pa.date32()) if is_date else out

    def date_diff(self, unit: str, a, b):
        """Unit boundaries crossed from a to b (like SQL DATEDIFF): 23:00 → 01:00 next day is 1 day."""
        a, b = self.broadcast(a), self.broadcast(b)
        if unit == "month":  # Arrow has month_interval_between, but its result type has no Python wrapper
            years = pc.subtract(pc.year(b), pc.year(a))
            return pc.cast(pc.add(pc.multiply(years, 12), pc.subtract(pc.month(b), pc.month(a))), pa.int64())
        fns = {"year": pc.years_between, "week": pc.weeks_between, "day": pc.days_between, "hour": pc.hours_between,
               "minute": pc.minutes_between, "second": pc.seconds_between}
        if unit not in fns:
            raise pa.ArrowInvalid(f"unknown unit {unit!r}")
        return pc.cast(fns[unit](a, b), pa.int64())

    def cast(self, x, target: str, fmt: str | None = None, tz: str | None = None):
        arr = self.broadcast(x)
        out, bad = safe_cast(arr, target, fmt, tz)
        if pc.any(bad).as_py():
            values = pc.filter(arr, bad).to_pylist()
            idx = np.flatnonzero(bad.to_numpy(zero_copy_only=False))
            suffix = f" with format {fmt!r}" if fmt else ""
            self.errors.fail(bad, {i: f"cannot cast {_quote(v)} to {target}{suffix}" for i, v in zip(idx.tolist(), values)})
        return out

    def hmac(self, x):
        return hmac_sha256_hex(self.text(self.broadcast(x)), self.env.subject_key)

    def mask(self, s, keep: int):
        s = self.broadcast(s)
        n = pc.utf8_length(s)
        hidden = pc.if_else(pc.greater(n, keep), pc.subtract(n, keep), n)  # a short value is hidden entirely
        stars = pc.binary_repeat(pa.scalar("*"), hidden)
        tail = pc.utf8_slice_codeunits(s, start=-keep) if keep else pc.utf8_slice_codeunits(s, start=0, stop=0)
        shown = pc.if_else(pc.greater(n, keep), tail, pa.scalar(""))
        return pc.binary_join_element_wise(stars, shown, "")

    def lookup(self, table: str, key, column: str):
        ref = self.env.reference[table]
        keys = ref.column(0)
        key = self.broadcast(key)
        if key.type != keys.type:
            key = self.text(key)
            keys = keys.cast(pa.string())
        idx = pc.index_in(key, value_set=keys)
        return pc.take(ref.column(column), idx)
