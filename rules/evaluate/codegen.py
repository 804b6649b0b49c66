"""Conditions compiled to Python source, for speed.

The closure compiler (`compile.py`) is the reference; this module emits the same
semantics as straight-line Python so a condition costs one call instead of one call
per syntax node. Only validated syntax trees are translated, and the only user text
that reaches the source is literal values written with `repr()` and dictionary keys
written with `repr()`: definitions stay data, never code.

Three-valued logic is compiled by polarity: `holds(node)` is a Python expression that
is true exactly when the node evaluates to true, `fails(node)` exactly when it
evaluates to false; null is neither. Values use assignment expressions so each
operand is evaluated once. Anything unusual at run time (a TypeError from comparing
text with a number, a division by zero) makes the generated function raise
`Fallback`, and the engine answers with the closure instead.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from types import CodeType

from rules.evaluate import aggregates, comparison, exact, windows
from rules.evaluate.compile import Compiler
from rules.evaluate.exact import Slope, exact_factor
from rules.language import ast
from rules.timeutil import timestamp_or_none

Condition = Callable[[dict, dict, int, dict], bool]  # (slots, profile, now, seqs) -> bool
IDENTITY_KINDS = {"count", "sum", "min", "max", "first_ts", "last_ts"}
_PY_OP = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_NUMBER_CALLS = {"since", "count", "sum", "avg", "min", "max"}  # numbers only, or null
_ARITHMETIC = {"+": "_plus", "-": "_minus", "*": "_times", "/": "_divided"}
"""The generated names of the decimal operators (`exact.OPERATIONS`)."""


def _since(now: int, moment: object) -> object:
    if isinstance(moment, str):
        moment = timestamp_or_none(moment)
    if moment is None or isinstance(moment, bool) or not isinstance(moment, (int, float)):
        return None
    return now - moment


def _truth(value: object) -> object:
    if value is None or value is True or value is False:
        return value
    return bool(value)


def _coalesce(*values: object) -> object:
    for value in values:
        if value is not None:
            return value
    return None


def _event_time(node: ast.Node) -> bool:
    """Is `node` `first(type)` or `last(type)`: an event time, an integer or null?"""
    return (isinstance(node, ast.Call) and node.function in ("first", "last") and len(node.args) == 1
            and isinstance(node.args[0], ast.Name) and len(node.args[0].parts) == 1 and not node.kwargs)


class _Source:
    def __init__(self, compiler: Compiler) -> None:
        self.compiler = compiler
        self.names = itertools.count()
        self.inlined = 0  # traits written out so far (see MAX_INLINED_TRAITS)
        self.env: dict[str, object] = {
            "_since": _since, "_truth": _truth, "_coalesce": _coalesce, "_value": aggregates.value, "_wtotal": windows.window_total,
            "_wsum": windows.window_sum,
            "_KINDS": aggregates.KINDS, "_num": aggregates.is_number,
            "_compare": comparison.compare, "_contains": comparison.contains,
            **{_ARITHMETIC[op]: function for op, function in exact.OPERATIONS.items()},
        }

    def temp(self) -> str:
        return f"_v{next(self.names)}"

    def constant(self, value: object) -> str:
        name = f"_c{next(self.names)}"
        self.env[name] = value
        return name

    # -- values -------------------------------------------------------------------
    def value(self, node: ast.Node) -> str:
        if isinstance(node, ast.Literal):
            return repr(node.value) if node.kind != "string" else repr(str(node.value))
        if isinstance(node, ast.ListLiteral):
            return "[" + ", ".join(self.value(item) for item in node.items) + "]"
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Negate):
            t = self.temp()
            return f"(-{t} if _num({t} := {self.value(node.operand)}) else None)"
        if isinstance(node, ast.Arithmetic):
            a, b = self.temp(), self.temp()
            return (f"(None if ({a} := {self.value(node.left)}) is None or ({b} := {self.value(node.right)}) is None"
                    f" else {_ARITHMETIC[node.op]}({a}, {b}))")
        if isinstance(node, ast.Call):
            return self.call(node)
        # a condition used as a value: rebuild the three-valued result
        return f"(True if {self.holds(node)} else (False if {self.fails(node)} else None))"

    def name(self, node: ast.Name) -> str:
        head = node.parts[0]
        if node.parts == ("now",):
            return "now"
        if head == "profile":
            if len(node.parts) == 2:
                return f"profile.get({node.parts[1]!r})"
            lookup = self.constant(self._path_lookup(node.parts[1:]))
            return f"{lookup}(profile)"
        self.inlined += 1
        if self.inlined > MAX_INLINED_TRAITS:
            raise TooBig
        return f"({self.value(self.compiler.defs.traits[head].expr)})"

    @staticmethod
    def _path_lookup(path: tuple[str, ...]) -> Callable[[object], object]:
        from rules.evaluate.compile import property_path

        return property_path(path)

    def call(self, node: ast.Call) -> str:
        name = node.function
        if name == "since":
            arg = node.args[0]
            if _event_time(arg):
                t = self.temp()  # first/last timestamps are integers or null
                return f"(None if ({t} := {self.value(arg)}) is None else now - {t})"
            return f"_since(now, {self.value(arg)})"
        if name == "coalesce":
            return "_coalesce(" + ", ".join(self.value(a) for a in node.args) + ")"
        if name == "in_segment":
            return f"(seqs.get({str(node.args[0].value)!r}, 0) & 1 == 1)"  # type: ignore[attr-defined]
        spec = self.compiler.aggregate_spec(node)
        if spec.within is not None and spec.kind == "count":
            return f"_wtotal(slots.get({spec.key!r}), now - {spec.within!r})"
        if spec.within is not None and spec.kind == "sum":
            return f"_wsum(slots.get({spec.key!r}), now - {spec.within!r})"
        if spec.within is not None:
            return f"_value({self.constant(spec)}, slots, now)"
        empty, _, _, finish = aggregates.KINDS[spec.kind]
        if spec.kind in IDENTITY_KINDS:
            return f"slots.get({spec.key!r}, {empty!r})"
        return f"{self.constant(finish)}(slots.get({spec.key!r}, {empty!r}))"

    def numeric(self, node: ast.Node) -> bool:
        """Is `node` a number (durations and event times are numbers) or null, whatever
        the events say? Only such values are compared with Python's operators inline."""
        if isinstance(node, ast.Literal):
            return aggregates.is_number(node.value)
        if isinstance(node, (ast.Arithmetic, ast.Negate)):
            return True  # a number, or a TypeError that sends the part to the closures
        if isinstance(node, ast.Name):
            head = node.parts[0]
            return node.parts == ("now",) or (head != "profile" and self.numeric(self.compiler.defs.traits[head].expr))
        if isinstance(node, ast.Call):
            return node.function in _NUMBER_CALLS or _event_time(node)
        return False

    # -- polarity -----------------------------------------------------------------
    def holds(self, node: ast.Node) -> str:
        return self._polar(node, True)

    def fails(self, node: ast.Node) -> str:
        return self._polar(node, False)

    def _polar(self, node: ast.Node, want: bool) -> str:
        if isinstance(node, ast.Logical):
            parts = [self._polar(o, want) for o in node.operands]
            joiner = " and " if (node.op == "and") == want else " or "
            return "(" + joiner.join(parts) + ")"
        if isinstance(node, ast.Not):
            return self._polar(node.operand, not want)
        if isinstance(node, ast.Compare) and not (self.numeric(node.left) and self.numeric(node.right)):
            # text, bools, lists of values: the language's own rules (see `comparison`)
            return f"(_compare({node.op!r}, {self.value(node.left)}, {self.value(node.right)}) is {want!r})"
        if isinstance(node, ast.Compare) and isinstance(node.right, ast.Literal):
            a = self.temp()
            test = f"{a} {_PY_OP[node.op]} {self.value(node.right)}"
            return f"(({a} := {self.value(node.left)}) is not None and {'' if want else 'not '}({test}))"
        if isinstance(node, ast.Compare):
            a, b = self.temp(), self.temp()
            test = f"{a} {_PY_OP[node.op]} {b}"
            return (f"(({a} := {self.value(node.left)}) is not None and ({b} := {self.value(node.right)}) is not None"
                    f" and {'' if want else 'not '}({test}))")
        if isinstance(node, ast.Membership):
            found = f"_contains({self.value(node.item)}, {self.value(node.container)})"
            return f"({found} is {want != node.negated!r})"
        if isinstance(node, ast.IsNull):
            is_null = (want != node.negated)
            return f"({self.value(node.operand)} is {'' if is_null else 'not '}None)"
        if isinstance(node, ast.Literal) and node.kind == "bool":
            return repr(node.value is want)
        if isinstance(node, ast.Literal) and node.value is None:
            return "False"
        return f"(_truth({self.value(node)}) is {want!r})"


    # -- lines in time, for flip instants ----------------------------------------
    def line(self, node: ast.Node) -> tuple[Slope, str] | None:
        """(constant slope, intercept source) with value = slope * now + intercept; None
        when the slope is not a compile-time constant (the closure backend handles it)."""
        from rules.evaluate.analysis import dependencies

        if not dependencies(node, self.compiler).clock:
            if isinstance(node, ast.Literal) and aggregates.is_number(node.value):
                return (0, repr(node.value))  # a number or duration already: nothing to convert per call
            return (0, f"_instant({self.value(node)})")
        if isinstance(node, ast.Name):
            if node.parts == ("now",):
                return (1, "0")
            return self.line(self.compiler.defs.traits[node.parts[0]].expr)
        if isinstance(node, ast.Call) and node.function == "since":
            t = self.temp()
            moment = self.value(node.args[0])
            if not _event_time(node.args[0]):
                moment = f"_instant({moment})"  # first/last timestamps are integers or null already
            return (1, f"(None if ({t} := {moment}) is None else -{t})")
        if isinstance(node, ast.Negate):
            inner = self.line(node.operand)
            if inner is None:
                return None
            t = self.temp()
            return (-inner[0], f"(None if ({t} := {inner[1]}) is None else -{t})")
        if isinstance(node, ast.Arithmetic):
            left, right = self.line(node.left), self.line(node.right)
            if left is None or right is None:
                return None
            a, b = self.temp(), self.temp()
            joined = f"(None if ({a} := {left[1]}) is None or ({b} := {right[1]}) is None else {a} {{}} {b})"
            if node.op in "+-":
                slope = left[0] + right[0] if node.op == "+" else left[0] - right[0]
                return (slope, joined.format(node.op))
            factor_node, line = (node.right, left) if node.op == "/" or right[0] == 0 else (node.left, right)
            if not (isinstance(factor_node, ast.Literal) and factor_node.kind == "number" and factor_node.value):
                return None
            factor = exact_factor(factor_node.value, node.op)  # type: ignore[arg-type]
            t = self.temp()
            written = repr(factor) if type(factor) is int else self.constant(factor)
            return (line[0] * factor, f"(None if ({t} := {line[1]}) is None else {t} * {written})")
        return None


class Fallback(Exception):
    """The generated code met a value it does not handle; use the closure."""


UNHANDLED = "(TypeError, ZeroDivisionError, AttributeError)"
"""What generated code raises on a value it does not handle (text compared with a
number, a division by zero): the caller then answers with the closure."""


class TooBig(Exception):
    """Generated code would inline more traits than `MAX_INLINED_TRAITS`."""


MAX_INLINED_TRAITS = 2_000
"""Traits written out into one generated text at most. A condition used as a value
is written twice (once as "holds", once as "fails"), so a chain of traits each
negating the last doubles the text per level; past this, the closures evaluate it."""


def compiled(text: str, name: str) -> CodeType | None:
    """`text` compiled, or None when Python cannot compile it: a definition may nest
    deeper than its parser allows (a chain of traits each adding to the last inlines
    into one expression with hundreds of parentheses); such parts are left to the
    closures."""
    try:
        return compile(text, name, "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return None


def compile_condition(node: ast.Node, compiler: Compiler) -> Condition | None:
    """A function (slots, profile, now, seqs) -> bool that is true iff the condition
    holds; None when the generated code would be too big or deep for Python."""
    source = _Source(compiler)
    try:
        body = source.holds(node)
    except TooBig:
        return None
    text = (
        "def condition(slots, profile, now, seqs):\n"
        "    try:\n"
        f"        return bool({body})\n"
        f"    except {UNHANDLED}:\n"
        "        raise _Fallback from None\n"
    )
    code = compiled(text, f"<segment condition: {node.text[:60]}>")
    if code is None:
        return None
    source.env["_Fallback"] = Fallback
    namespace: dict[str, object] = dict(source.env)
    exec(code, namespace)  # noqa: S102 - generated from a validated tree
    return namespace["condition"]  # type: ignore[return-value]
