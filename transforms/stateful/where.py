"""The ``where`` filter of a rate rule: an expression of the mapping language, evaluated on a batch.

Parsing is the mapping language's own parser (:mod:`transforms.expr.parser`), so there is
one language. Evaluation here covers the filter subset (paths, literals, comparisons,
``and``/``or``/``not``, ``in``, ``is [not] null``, ``like``) with pyarrow.compute kernels;
a null result counts as false. Anything else is refused when the spec is compiled.

>>> import pyarrow as pa
>>> f = compile_where("event_type = 'fault' and severity >= 2")
>>> t = pa.table({"event_type": ["fault", "fault", "info", None], "severity": [3, 1, 5, 2]})
>>> f(t).to_pylist()
[True, False, False, False]
>>> compile_where("upper(event_type) = 'FAULT'")
Traceback (most recent call last):
...
ValueError: column 1: upper() is not available in a where filter (use comparisons, and/or/not, in, is null, like)
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from transforms.expr import ast
from transforms.expr.parser import parse

_CMP = {"=": "equal", "!=": "not_equal", "<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal"}

Filter = Callable[[pa.Table], pa.Array]


def _check(node: ast.Node) -> None:
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            raise ValueError(f"column {n.col}: {n.name}() is not available in a where filter "
                             "(use comparisons, and/or/not, in, is null, like)")
        if isinstance(n, ast.Case) or (isinstance(n, ast.BinOp) and n.op not in (*_CMP, "and", "or", "like")):
            what = "case" if isinstance(n, ast.Case) else f"operator {n.op!r}"
            raise ValueError(f"column {n.col}: {what} is not available in a where filter")
        if isinstance(n, ast.UnaryOp) and n.op == "neg":
            raise ValueError(f"column {n.col}: arithmetic is not available in a where filter")
        if isinstance(n, ast.Path) and (len(n.parts) != 1 or not isinstance(n.parts[0], str)):
            raise ValueError(f"column {n.col}: only top-level columns in a where filter, not {n.text!r}")


def columns(node: ast.Node) -> list[str]:
    """The columns an expression reads."""
    return sorted({n.parts[0] for n in ast.walk(node) if isinstance(n, ast.Path)})


def _eval(node: ast.Node, t: pa.Table):
    if isinstance(node, ast.Literal):
        return pa.scalar(node.value)
    if isinstance(node, ast.Path):
        name = node.parts[0]
        if name not in t.column_names:
            raise KeyError(name)
        return t.column(name)
    if isinstance(node, ast.InList):
        values = pa.array([i.value for i in node.items if isinstance(i, ast.Literal)])
        hit = pc.is_in(_eval(node.operand, t), value_set=values)
        return pc.invert(hit) if node.negated else hit
    if isinstance(node, ast.UnaryOp):
        x = _eval(node.operand, t)
        return {"not": pc.invert, "is_null": pc.is_null, "is_not_null": pc.is_valid}[node.op](x)
    left, right = _eval(node.left, t), _eval(node.right, t)
    if node.op == "and":
        return pc.and_kleene(left, right)
    if node.op == "or":
        return pc.or_kleene(left, right)
    if node.op == "like":
        return pc.match_like(left, pattern=node.right.value)
    return pc.call_function(_CMP[node.op], [left, right])


def compile_where(text: str) -> Filter:
    """Compile a filter once; the result maps a table to a non-null boolean array."""
    node = parse(text)
    _check(node)
    for n in ast.walk(node):
        if isinstance(n, ast.InList) and not all(isinstance(i, ast.Literal) for i in n.items):
            raise ValueError(f"column {n.col}: an in (...) list holds literals only")
        if isinstance(n, ast.BinOp) and n.op == "like" and not isinstance(n.right, ast.Literal):
            raise ValueError(f"column {n.col}: like needs a literal pattern")

    def run(t: pa.Table) -> pa.Array:
        out = _eval(node, t)
        if isinstance(out, pa.Scalar):
            out = pa.array([out.as_py()] * t.num_rows, pa.bool_())
        out = out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out
        return pc.fill_null(out.cast(pa.bool_()), False)

    run.columns = columns(node)  # type: ignore[attr-defined]
    return run
