"""Expression syntax tree.

Nodes are plain frozen dataclasses; `line` and `column` are relative to the expression
text so errors can be mapped back to `file:line` of the YAML scalar that held it, and
`text` is the source slice, used when explaining why a customer is in a segment.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Node:
    line: int = field(default=1, kw_only=True, compare=False)
    column: int = field(default=1, kw_only=True, compare=False)
    text: str = field(default="", kw_only=True, compare=False)


@dataclass(frozen=True)
class Literal(Node):
    value: object
    kind: str  # "number" | "string" | "bool" | "null" | "duration"


@dataclass(frozen=True)
class ListLiteral(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Name(Node):
    """A dotted name: a trait, `profile.x`, `now`, or (inside `where=`) a property path."""

    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Negate(Node):
    operand: Node


@dataclass(frozen=True)
class Arithmetic(Node):
    op: str  # + - * /
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare(Node):
    op: str  # == != < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True)
class Membership(Node):
    """`item in container` / `item not in container`."""

    item: Node
    container: Node
    negated: bool


@dataclass(frozen=True)
class IsNull(Node):
    operand: Node
    negated: bool


@dataclass(frozen=True)
class Logical(Node):
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True)
class Call(Node):
    function: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...]


AGGREGATES = frozenset({"count", "sum", "avg", "min", "max", "first", "last", "distinct"})
"""Functions over one event type: their first argument names the type (and a path)."""


def children(node: Node) -> tuple[Node, ...]:
    """Direct sub-expressions, for generic walks (validation, dependency analysis)."""
    if isinstance(node, ListLiteral):
        return node.items
    if isinstance(node, (Negate, Not)):
        return (node.operand,)
    if isinstance(node, IsNull):
        return (node.operand,)
    if isinstance(node, (Arithmetic, Compare)):
        return (node.left, node.right)
    if isinstance(node, Membership):
        return (node.item, node.container)
    if isinstance(node, Logical):
        return node.operands
    if isinstance(node, Call):
        return node.args + tuple(value for _, value in node.kwargs)
    return ()


def trait_operands(node: Node) -> tuple[Node, ...]:
    """The sub-expressions of `node` in which a name can be a trait: an aggregate's first
    argument names an event type (and path), and inside `where=` names are properties."""
    if isinstance(node, Call) and node.function in AGGREGATES:
        return tuple(value for key, value in node.kwargs if key != "where")
    return children(node)


def canonical(node: Node) -> object:
    """`node` as plain data without where it was written (line, column, source text):
    spellings of one condition (spacing, line breaks, parentheses, `30d` or `720h`,
    the order of keyword arguments) are equal. The definition version hashes this. A
    `where=` filter stays as written: its text names the aggregate's state
    (`AggregateSpec.key`), so respelling it starts a new aggregate, a change of version."""
    if isinstance(node, Call):
        kwargs = sorted([key, value.text if key == "where" and node.function in AGGREGATES else canonical(value)]
                        for key, value in node.kwargs)
        return ["Call", node.function, [canonical(arg) for arg in node.args], kwargs]
    return [type(node).__name__, *(_plain(getattr(node, item.name)) for item in fields(node) if item.compare)]


def _plain(value: object) -> object:
    if isinstance(value, Node):
        return canonical(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value
