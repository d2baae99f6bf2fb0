"""The expression tree: a handful of frozen node types and nothing else.

Every node knows where it came from (``col``: 1-based column in the expression text),
so errors can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Literal:
    value: object  # str | int | float | bool | None
    col: int = 0


@dataclass(frozen=True)
class Path:
    """A path into the record: names and list indexes, e.g. ``contact.emails[0]``."""

    parts: tuple[Union[str, int], ...]
    col: int = 0

    @property
    def text(self) -> str:
        out = ""
        for p in self.parts:
            out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
        return out


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple["Node", ...]
    col: int = 0


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / % || = != < <= > >= and or like
    left: "Node"
    right: "Node"
    col: int = 0


@dataclass(frozen=True)
class UnaryOp:
    op: str  # neg, not, is_null, is_not_null
    operand: "Node"
    col: int = 0


@dataclass(frozen=True)
class InList:
    operand: "Node"
    items: tuple["Node", ...]
    negated: bool = False
    col: int = 0


@dataclass(frozen=True)
class Case:
    branches: tuple[tuple["Node", "Node"], ...]  # (condition, value)
    default: "Node | None" = None
    col: int = 0


Node = Union[Literal, Path, Call, BinOp, UnaryOp, InList, Case]


def walk(node: Node):
    """Every node of the tree, depth first.

    >>> [type(n).__name__ for n in walk(BinOp("+", Path(("a",)), Literal(1)))]
    ['BinOp', 'Path', 'Literal']
    """
    yield node
    if isinstance(node, Call):
        for a in node.args:
            yield from walk(a)
    elif isinstance(node, BinOp):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, UnaryOp):
        yield from walk(node.operand)
    elif isinstance(node, InList):
        yield from walk(node.operand)
        for i in node.items:
            yield from walk(i)
    elif isinstance(node, Case):
        for c, v in node.branches:
            yield from walk(c)
            yield from walk(v)
        if node.default is not None:
            yield from walk(node.default)


def paths(node: Node) -> list[str]:
    """The record paths an expression reads, in order of first use (per-field lineage).

    >>> paths(BinOp("||", Literal("WEB-"), Path(("submission_id",))))
    ['submission_id']
    """
    seen: dict[str, None] = {}
    for n in walk(node):
        if isinstance(n, Path):
            seen.setdefault(n.text, None)
    return list(seen)
