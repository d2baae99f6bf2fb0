"""Load YAML keeping the line of every node, and refusing duplicate keys.

PyYAML silently keeps the last of two equal keys; in a mapping spec that hides a
field written twice, so it is an error here.

>>> doc = load_with_lines("a: 1\\nb:\\n  c: [x, y]\\n")
>>> doc.data, doc.line(("b", "c", 1)), doc.line(("a",))
({'a': 1, 'b': {'c': ['x', 'y']}}, 3, 1)
>>> load_with_lines("a: 1\\na: 2\\n").duplicates
[(('a',), 2)]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

MAX_BYTES = 1_000_000  # a spec file larger than this is refused


@dataclass
class Located:
    data: object
    lines: dict[tuple, int] = field(default_factory=dict)
    duplicates: list[tuple[tuple, int]] = field(default_factory=list)

    def line(self, path: tuple) -> int:
        """The line of the node at ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)


class YamlError(ValueError):
    def __init__(self, message: str, line: int):
        self.line = line
        super().__init__(message)


def _build(node: yaml.Node, path: tuple, out: Located):
    out.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict = {}
        for k_node, v_node in node.value:
            if not isinstance(k_node, yaml.ScalarNode):
                raise YamlError("keys must be plain values", k_node.start_mark.line + 1)
            key = _scalar(k_node)
            if isinstance(key, (list, dict)):
                raise YamlError("keys must be plain values", k_node.start_mark.line + 1)
            if key in result:
                out.duplicates.append((path + (key,), k_node.start_mark.line + 1))
            result[key] = _build(v_node, path + (key,), out)
            out.lines[path + (key,)] = k_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, path + (i,), out) for i, v in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node):
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    try:
        return yaml.SafeLoader("").construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError) as err:
        raise YamlError(f"YAML: cannot read value {getattr(node, 'value', '')!r}: {err}".split("\n")[0],
                        node.start_mark.line + 1) from None


def load_with_lines(text: str) -> Located:
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise YamlError(f"file is larger than {MAX_BYTES} bytes", 1)
    try:
        # SafeLoader only: no tags that build Python objects, no aliases beyond what compose allows.
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise YamlError(f"YAML: {err.problem or err.context}", (mark.line + 1) if mark else 1) from None
    except yaml.YAMLError as err:
        raise YamlError(f"YAML: {err}", 1) from None
    except RecursionError:  # PyYAML composes recursively: a hostile file nests thousands deep
        raise YamlError("nesting deeper than 64 levels", 1) from None
    out = Located(data=None)
    if node is None:
        return out
    _check_aliases(node)
    out.data = _build(node, (), out)
    return out


_PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp"))


def _check_aliases(node: yaml.Node, seen: set | None = None, depth: int = 0) -> None:
    """Refuse alias bombs (a node reached twice), nesting deeper than 64, and tags other than plain ones
    (``!!python/...`` and the like are refused even on lists and mappings, where SafeLoader would not look)."""
    seen = set() if seen is None else seen
    if depth > 64:
        raise YamlError("nesting deeper than 64 levels", node.start_mark.line + 1)
    if id(node) in seen and not isinstance(node, yaml.ScalarNode):
        raise YamlError("YAML anchors/aliases are not allowed in specs", node.start_mark.line + 1)
    seen.add(id(node))
    if node.tag not in _PLAIN_TAGS:
        raise YamlError(f"YAML tag {node.tag!r} is not allowed in specs (plain values, lists and mappings only)",
                        node.start_mark.line + 1)
    children = []
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    for c in children:
        _check_aliases(c, seen, depth + 1)
