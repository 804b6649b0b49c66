"""Syntax tree -> Python closures. Definitions are data: nothing here calls `eval`.

`Compiler.value(node)` returns `f(context) -> value` implementing the contract's
null-propagating arithmetic and comparisons and SQL three-valued logic; inside
`where=` filters, closures take the event's properties instead of a context.
"""
from __future__ import annotations

from collections.abc import Callable

from rules.evaluate import aggregates, comparison, exact
from rules.evaluate.aggregates import AggregateSpec
from rules.evaluate.context import Context
from rules.language import ast
from rules.language.model import Definitions
from rules.timeutil import timestamp_or_none

Fn = Callable[[object], object]
COMPARE = comparison.COMPARE
ARITHMETIC = exact.OPERATIONS
"""Decimal arithmetic on numbers (see `exact`): 1100.10 - 200.10 is 900."""
_MISSING = object()


def truth(value: object) -> bool | None:
    """A value used as a condition: null stays null (unknown)."""
    if value is None or value is True or value is False:
        return value  # type: ignore[return-value]
    return bool(value)


def _on_instants(op: Callable[[object, object], object], a: object, b: object) -> object:
    """Times kept as text (profile attributes) take part in arithmetic as the instants
    they write, as they do in `since()` and comparisons: `profile.last_login -
    profile.signup` is a duration. Other text is no number: null."""
    a = timestamp_or_none(a) if type(a) is str else a
    b = timestamp_or_none(b) if type(b) is str else b
    if a is None or b is None:
        return None
    try:
        return op(a, b)
    except (TypeError, ZeroDivisionError):
        return None


def property_path(path: tuple[str, ...]) -> Fn:
    """Event property lookup for where= filters: scalar, or a list when a list is crossed."""
    if len(path) == 1:
        name = path[0]
        return lambda props: props.get(name)  # type: ignore[attr-defined]

    def lookup(props: object) -> object:
        current: object = props
        for index, part in enumerate(path):
            if isinstance(current, list):
                return aggregates.values_at({"_": current}, ("_",) + path[index:])
            if not isinstance(current, dict):
                return None
            current = current.get(part)
        return current

    return lookup


class Compiler:
    def __init__(self, defs: Definitions) -> None:
        self.defs = defs
        self.specs: dict[str, AggregateSpec] = {}
        self.where: dict[str, Fn] = {}  # spec key -> filter over properties
        self._traits: dict[str, Fn] = {}

    def aggregate_spec(self, node: ast.Call) -> AggregateSpec:
        target: ast.Name = node.args[0]  # type: ignore[assignment]
        kwargs = dict(node.kwargs)
        within = kwargs.get("within")
        where = kwargs.get("where")
        spec = AggregateSpec(
            aggregates.spec_kind(node.function, len(target.parts) > 1),
            target.parts[0],
            target.parts[1:],
            within.value if isinstance(within, ast.Literal) else None,  # type: ignore[arg-type]
            where.text if where is not None else None,
        )
        if spec.key not in self.specs:
            self.specs[spec.key] = spec
            if where is not None:
                self.where[spec.key] = self.value(where, in_where=True)
        return self.specs[spec.key]

    def condition(self, node: ast.Node) -> Callable[[Context], bool]:
        """A compiled condition: null counts as false."""
        fn = self.value(node)
        return lambda ctx: truth(fn(ctx)) is True

    def value(self, node: ast.Node, in_where: bool = False) -> Fn:
        method = getattr(self, f"_{type(node).__name__.lower()}")
        return method(node, in_where)  # type: ignore[no-any-return]

    def _literal(self, node: ast.Literal, in_where: bool) -> Fn:
        constant = node.value
        return lambda _: constant

    def _listliteral(self, node: ast.ListLiteral, in_where: bool) -> Fn:
        items = [self.value(item, in_where) for item in node.items]
        return lambda c: [item(c) for item in items]

    def _name(self, node: ast.Name, in_where: bool) -> Fn:
        if in_where:
            return property_path(node.parts)
        head = node.parts[0]
        if head == "now" and len(node.parts) == 1:
            return lambda ctx: ctx.now  # type: ignore[attr-defined]
        if head == "profile":
            rest = node.parts[1:]
            if len(rest) == 1:
                attribute = rest[0]
                return lambda ctx: ctx.profile.get(attribute)  # type: ignore[attr-defined]
            lookup = property_path(rest)
            return lambda ctx: lookup(ctx.profile)  # type: ignore[attr-defined]
        return self.trait(head)

    def trait(self, name: str) -> Fn:
        if name not in self._traits:
            inner = self.value(self.defs.traits[name].expr)

            def memoised(ctx: Context) -> object:
                cache = ctx.cache
                found = cache.get(name, _MISSING)
                if found is _MISSING:
                    found = cache[name] = inner(ctx)
                return found

            self._traits[name] = memoised  # type: ignore[assignment]
        return self._traits[name]

    def _negate(self, node: ast.Negate, in_where: bool) -> Fn:
        operand = self.value(node.operand, in_where)

        def negate(c: object) -> object:
            value = operand(c)
            return -value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

        return negate

    def _arithmetic(self, node: ast.Arithmetic, in_where: bool) -> Fn:
        left, right, op = self.value(node.left, in_where), self.value(node.right, in_where), ARITHMETIC[node.op]

        def arithmetic(c: object) -> object:
            a, b = left(c), right(c)
            if a is None or b is None:
                return None
            try:
                return op(a, b)
            except ZeroDivisionError:
                return None
            except TypeError:
                return _on_instants(op, a, b)

        return arithmetic

    def _compare(self, node: ast.Compare, in_where: bool) -> Fn:
        left, right, op = self.value(node.left, in_where), self.value(node.right, in_where), node.op
        direct = COMPARE[op]

        def compare(c: object) -> object:
            a, b = left(c), right(c)
            kind_a, kind_b = type(a), type(b)
            if (kind_a is int or kind_a is float) and (kind_b is int or kind_b is float):
                return direct(a, b)  # numbers, the common case
            return comparison.compare(op, a, b)

        return compare

    def _membership(self, node: ast.Membership, in_where: bool) -> Fn:
        item, container, negated = self.value(node.item, in_where), self.value(node.container, in_where), node.negated

        def membership(c: object) -> object:
            found = comparison.contains(item(c), container(c))
            return None if found is None else found is not negated

        return membership

    def _isnull(self, node: ast.IsNull, in_where: bool) -> Fn:
        operand, negated = self.value(node.operand, in_where), node.negated
        if negated:
            return lambda c: operand(c) is not None
        return lambda c: operand(c) is None

    def _logical(self, node: ast.Logical, in_where: bool) -> Fn:
        operands = [self.value(o, in_where) for o in node.operands]
        stop = node.op == "or"  # the value that decides: true for or, false for and

        def logical(c: object) -> object:
            unknown = False
            for operand in operands:
                value = truth(operand(c))
                if value is None:
                    unknown = True
                elif value is stop:
                    return stop
            return None if unknown else not stop

        return logical

    def _not(self, node: ast.Not, in_where: bool) -> Fn:
        operand = self.value(node.operand, in_where)

        def negation(c: object) -> object:
            value = truth(operand(c))
            return None if value is None else not value

        return negation

    def _call(self, node: ast.Call, in_where: bool) -> Fn:
        name = node.function
        if name == "since":
            inner = self.value(node.args[0])

            def since(ctx: Context) -> object:
                moment = inner(ctx)
                if isinstance(moment, str):
                    moment = timestamp_or_none(moment)
                if not isinstance(moment, (int, float)) or isinstance(moment, bool):
                    return None
                return ctx.now - moment

            return since  # type: ignore[return-value]
        if name == "in_segment":
            segment = str(node.args[0].value)  # type: ignore[attr-defined]
            return lambda ctx: ctx.members.get(segment, False)  # type: ignore[attr-defined]
        if name == "coalesce":  # also inside where=, on the event's properties
            options = [self.value(arg, in_where) for arg in node.args]

            def coalesce(ctx: object) -> object:
                for option in options:
                    value = option(ctx)
                    if value is not None:
                        return value
                return None

            return coalesce
        spec = self.aggregate_spec(node)
        if spec.within is None:
            key, (empty, _, _, finish) = spec.key, aggregates.KINDS[spec.kind]
            return lambda ctx: finish(ctx.slots.get(key, empty))  # type: ignore[attr-defined]
        return lambda ctx: aggregates.value(spec, ctx.slots, ctx.now)  # type: ignore[attr-defined]
