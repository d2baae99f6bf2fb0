"""Parse expression text into the whitelisted tree of :mod:`transforms.expr.ast`.

The grammar (``grammar.lark``) is the whole language. Input is bounded before it
reaches the parser (length, nesting depth) and the tree is bounded after (node count),
so a hostile spec cannot exhaust the process.

>>> parse("coalesce(engagement_score, 0) * 1.5")
BinOp(op='*', left=Call(name='coalesce', args=(Path(parts=('engagement_score',), col=10), Literal(value=0, col=28)), col=1), right=Literal(value=1.5, col=33), col=1)
>>> parse("activity.level is not null")
UnaryOp(op='is_not_null', operand=Path(parts=('activity', 'level'), col=1), col=1)
>>> parse("a +")
Traceback (most recent call last):
...
transforms.expr.parser.ExprError: column 4: unexpected end of expression
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path as FsPath

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from transforms.expr import ast

MAX_LENGTH = 4000  # characters of one expression
MAX_DEPTH = 32  # nesting of parentheses / brackets
MAX_NODES = 500  # nodes in one tree
MAX_TREE_DEPTH = 200  # levels of the parse tree (a parenthesis adds 5); bounds chains of `not`, `-` and CASE too


class ExprError(ValueError):
    """A malformed or over-limit expression; ``col`` is 1-based in the expression text."""

    def __init__(self, message: str, col: int = 0):
        self.col = col
        self.message = message
        super().__init__(f"column {col}: {message}" if col else message)


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = (FsPath(__file__).parent / "grammar.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def _col(meta_or_tok) -> int:
    return getattr(meta_or_tok, "column", 0) or 0


@v_args(meta=True)
class _ToAst(Transformer):
    def number(self, meta, children):
        text = str(children[0])
        value = float(text) if any(c in text for c in ".eE") else int(text)
        return ast.Literal(value, _col(meta))

    def string(self, meta, children):
        return ast.Literal(str(children[0])[1:-1].replace("''", "'"), _col(meta))

    def true(self, meta, children):
        return ast.Literal(True, _col(meta))

    def false(self, meta, children):
        return ast.Literal(False, _col(meta))

    def null(self, meta, children):
        return ast.Literal(None, _col(meta))

    def path(self, meta, children):
        parts: list[str | int] = []
        for tok in children:
            if tok.type == "INT":
                parts.append(int(tok))
            elif tok.type == "QUOTED_NAME":
                parts.append(str(tok)[1:-1])
            else:
                parts.append(str(tok))
        return ast.Path(tuple(parts), _col(meta))

    def expr_list(self, meta, children):
        return tuple(children)

    def call(self, meta, children):
        name, args = children
        return ast.Call(str(name).lower(), tuple(args or ()), _col(meta))

    def case(self, meta, children):
        items = list(children)
        default = items.pop() if len(items) % 2 == 1 else None
        branches = tuple((items[i], items[i + 1]) for i in range(0, len(items), 2))
        return ast.Case(branches, default, _col(meta))

    def _fold(self, meta, op, children):
        node = children[0]
        for other in children[1:]:
            node = ast.BinOp(op, node, other, _col(meta))
        return node

    def or_(self, meta, children):
        return self._fold(meta, "or", children)

    def and_(self, meta, children):
        return self._fold(meta, "and", children)

    def concat_(self, meta, children):
        return self._fold(meta, "||", children)

    def arith(self, meta, children):
        node = children[0]
        for i in range(1, len(children), 2):
            node = ast.BinOp(str(children[i]), node, children[i + 1], _col(meta))
        return node

    def not_(self, meta, children):
        return ast.UnaryOp("not", children[0], _col(meta))

    def neg(self, meta, children):
        (operand,) = children
        if isinstance(operand, ast.Literal) and isinstance(operand.value, (int, float)) and not isinstance(operand.value, bool):
            return ast.Literal(-operand.value, _col(meta))
        return ast.UnaryOp("neg", operand, _col(meta))

    def compare(self, meta, children):
        left, op, right = children
        op = {"==": "=", "<>": "!="}.get(str(op), str(op))
        return ast.BinOp(op, left, right, _col(meta))

    def is_null(self, meta, children):
        return ast.UnaryOp("is_null", children[0], _col(meta))

    def is_not_null(self, meta, children):
        return ast.UnaryOp("is_not_null", children[0], _col(meta))

    def in_(self, meta, children):
        return ast.InList(children[0], tuple(children[1]), False, _col(meta))

    def not_in(self, meta, children):
        return ast.InList(children[0], tuple(children[1]), True, _col(meta))

    def between(self, meta, children):
        x, lo, hi = children
        c = _col(meta)
        return ast.BinOp("and", ast.BinOp(">=", x, lo, c), ast.BinOp("<=", x, hi, c), c)

    def like(self, meta, children):
        return ast.BinOp("like", children[0], children[1], _col(meta))

    def not_like(self, meta, children):
        return ast.UnaryOp("not", ast.BinOp("like", children[0], children[1], _col(meta)), _col(meta))


def _check_bounds(text: str) -> None:
    if not isinstance(text, str):
        raise ExprError(f"an expression must be text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    depth = 0
    in_str = False
    for i, ch in enumerate(text):
        if ch == "'":
            in_str = not in_str
        elif not in_str and ch in "([":
            depth += 1
            if depth > MAX_DEPTH:
                raise ExprError(f"nesting deeper than {MAX_DEPTH}", i + 1)
        elif not in_str and ch in ")]":
            depth -= 1


def _tree_depth(tree: Tree) -> int:
    """Depth of a parse tree, computed without recursion (the tree may be hostile)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in node.children if isinstance(c, Tree))
    return deepest


def _describe(err: UnexpectedInput) -> ExprError:
    col = getattr(err, "column", 0) or 0
    if isinstance(err, UnexpectedEOF) or (isinstance(err, UnexpectedToken) and err.token.type == "$END"):
        return ExprError("unexpected end of expression", col if col > 0 else 0)
    if isinstance(err, UnexpectedCharacters):
        return ExprError(f"unexpected character {err.char!r}", col)
    if isinstance(err, UnexpectedToken):
        return ExprError(f"unexpected {str(err.token)!r}", col)
    return ExprError("cannot parse expression", col)


@lru_cache(maxsize=4096)
def parse(text: str) -> ast.Node:
    """Parse one expression; raise :class:`ExprError` with a column on any problem."""
    _check_bounds(text)
    if not text.strip():
        raise ExprError("empty expression", 1)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as err:
        e = _describe(err)
        if isinstance(err, UnexpectedToken) and err.token.type == "$END":
            e = ExprError("unexpected end of expression", len(text) + 1)
        raise e from None
    except RecursionError:
        raise ExprError(f"nesting deeper than {MAX_DEPTH}") from None
    if _tree_depth(tree) > MAX_TREE_DEPTH:
        raise ExprError("expression nests too deeply (operators, parentheses, CASE)")
    node = _ToAst().transform(tree)
    if isinstance(node, (Tree, Token)):  # pragma: no cover - the grammar maps every rule
        raise ExprError("cannot parse expression")
    count = sum(1 for _ in ast.walk(node))
    if count > MAX_NODES:
        raise ExprError(f"expression has {count} nodes; the limit is {MAX_NODES}")
    return node
