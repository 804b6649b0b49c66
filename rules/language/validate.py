"""Static checks: names, types, aggregate arguments, `in_segment`, cycles, destinations.

Types are coarse on purpose (number, string, bool, duration, timestamp, set, any);
`any` stands for values whose type is only known at run time (profile attributes and
event properties), so the checker only rejects what is certainly wrong, such as
comparing a duration with a number.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from rules.language import ast
from rules.language.depth import depth_problems
from rules.language.model import (ACTION_KINDS, ACTION_SETTINGS, DESTINATION_NEEDS, DESTINATION_SETTINGS,
                                  NUMBER_SETTINGS, URL_SCHEMES, Action, Definitions, Destination, Segment,
                                  is_template_name)
from rules.language.source import Problem

AGGREGATES = ast.AGGREGATES
FUNCTIONS = {"since", "in_segment", "coalesce"} | AGGREGATES
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
ORDERED = {"number", "string", "duration", "timestamp", "any", "null"}


FAILED = "failed"
"""The type of a part whose error is already reported: every check accepts it, so
one mistake gives one message, and the other parts of the expression are still
checked (three typos in one condition are three messages of one run)."""


class _Failed(Exception):
    """Stops checking one part of an expression after its error; `expr` catches it and
    gives the part the type `FAILED`."""


class _Checker:
    def __init__(self, defs: Definitions) -> None:
        self.defs = defs
        self.problems: list[Problem] = []
        self.trait_types: dict[str, tuple[str, bool]] = {}
        self.trait_stack: list[str] = []
        self.segment_refs: dict[str, set[str]] = {}  # segment -> segments its conditions read
        self.trait_segments: dict[str, set[str]] = {}  # trait -> segments it reads, through other traits too
        self.through: dict[tuple[str, str], str] = {}  # (segment, segment it reads) -> the trait it reads it by
        self._file = ""
        self._base_line = 0
        self._owner: str | None = None

    # -- reporting ---------------------------------------------------------------
    def fail(self, node: ast.Node, message: str) -> None:
        self.problems.append(Problem(self._file, self._base_line + node.line - 1, message))
        raise _Failed

    def check_expression(self, node: ast.Node, file: str, line: int, owner: str | None) -> tuple[str, bool]:
        saved = (self._file, self._base_line, self._owner)
        self._file, self._base_line, self._owner = file, line, owner
        try:
            return self.expr(node, where=False)
        finally:
            self._file, self._base_line, self._owner = saved

    # -- expressions: each returns (type, depends_on_time) ----------------------
    def expr(self, node: ast.Node, where: bool) -> tuple[str, bool]:
        method = getattr(self, f"_{type(node).__name__.lower()}")
        try:
            return method(node, where)  # type: ignore[no-any-return]
        except _Failed:
            return (FAILED, False)

    def _literal(self, node: ast.Literal, where: bool) -> tuple[str, bool]:
        return (node.kind, False)

    def _listliteral(self, node: ast.ListLiteral, where: bool) -> tuple[str, bool]:
        for item in node.items:
            self.expr(item, where)
        return ("set", False)

    def _name(self, node: ast.Name, where: bool) -> tuple[str, bool]:
        if where and node.parts[0] == "profile":
            self.fail(node, f"'{node.dotted}' inside where= would read an event property called 'profile', not "
                            "the customer's profile (a filter reads one event's properties); write the profile "
                            f"condition beside the aggregate, e.g. count(order_placed) >= 1 and {node.dotted} == ...")
        if where:
            return ("any", False)
        head = node.parts[0]
        if head == "now" and len(node.parts) == 1:
            return ("timestamp", True)
        if head == "profile":
            if len(node.parts) < 2:
                self.fail(node, "'profile' needs an attribute, e.g. profile.created_at")
            return ("any", False)
        if len(node.parts) == 1 and head in self.defs.traits:
            return self.trait(head, node)
        if len(node.parts) == 1 and ("trait", head) in self.defs.broken:
            raise _Failed  # its own error is reported
        known = list(self.defs.traits) + ["now", "profile"]
        hint = difflib.get_close_matches(head, known, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        if len(node.parts) > 1 and EVENT_TYPE.match(head):
            suggestion = suggestion or f" (to aggregate events, write e.g. sum({node.dotted}))"
        self.fail(node, f"unknown name {node.dotted!r}{suggestion}")
        raise AssertionError  # unreachable

    def trait(self, name: str, node: ast.Node) -> tuple[str, bool]:
        if name in self.trait_types:
            self._reads_through(name)
            return self.trait_types[name]
        if name in self.trait_stack:
            cycle = " -> ".join(self.trait_stack[self.trait_stack.index(name):] + [name])
            self.fail(node, f"cycle between traits: {cycle}")
        trait = self.defs.traits[name]
        self.trait_stack.append(name)
        try:
            result = self.check_expression(trait.expr, trait.origin.file, trait.origin.line, None)
        finally:
            self.trait_stack.pop()
        self.trait_types[name] = result
        self._reads_through(name)
        return result

    def _reads_through(self, trait: str) -> None:
        """The segments `trait` reads are read by whoever reads it; a segment's
        condition reading them so remembers the trait, to name it in a cycle."""
        segments = self.trait_segments.get(trait, set())
        if not self.trait_stack and self._owner is not None:
            for target in segments:
                self.through.setdefault((self._owner, target), trait)
        self._reads(segments)

    def _reads(self, segments: set[str]) -> None:
        """Segments read (by `in_segment`, or a trait that uses it) belong to the trait
        being checked, else to the segment whose condition is: a cycle may run through
        traits (`t: in_segment("s")` and `s: when: t`)."""
        if not segments:
            return
        if self.trait_stack:
            self.trait_segments.setdefault(self.trait_stack[-1], set()).update(segments)
        elif self._owner is not None:
            self.segment_refs.setdefault(self._owner, set()).update(segments)

    def _negate(self, node: ast.Negate, where: bool) -> tuple[str, bool]:
        kind, timed = self.expr(node.operand, where)
        if kind not in ("number", "duration", "any", "null", FAILED):
            self.fail(node, f"cannot negate a {kind}")
        return (kind, timed)

    def _arithmetic(self, node: ast.Arithmetic, where: bool) -> tuple[str, bool]:
        left, left_timed = self.expr(node.left, where)
        right, right_timed = self.expr(node.right, where)
        if FAILED in (left, right):
            return (FAILED, left_timed or right_timed)
        if node.op == "*" and left_timed and right_timed:
            self.fail(node, f"'{node.text}' multiplies two values that change with time; exact flips cannot be "
                            "scheduled (compare each one on its own, or use avg())")
        if node.op == "/" and right_timed and (left_timed or self._reads_clock(node.right)):
            self.fail(node, f"'{node.text}' divides by a value that changes with time; exact flips cannot be "
                            "scheduled (compare each one on its own, or use avg() for an average over a window)")
        if node.op in "+-" and {left, right} == {"any", "duration"}:
            self.fail(node, f"'{node.text}': a value read from the profile or an event cannot be moved by a "
                            "duration (a time written as text is read as a time only by since()): compare since() "
                            "with the duration instead, e.g. since(profile.created_at) < 30d")
        result = _arithmetic_type(node.op, left, right)
        if result is None:
            self.fail(node, f"cannot apply '{node.op}' to {left} and {right}{_duration_hint(left, right)}")
        return (result or "any", left_timed or right_timed)

    def _reads_clock(self, node: ast.Node) -> bool:
        """Does `node` change with every instant (`now`, `since`), through traits too?
        (A windowed aggregate changes in steps, which the flip search follows.)"""
        stack, seen = [node], set()
        while stack:
            current = stack.pop()
            if isinstance(current, ast.Call) and current.function == "since":
                return True
            if isinstance(current, ast.Name) and len(current.parts) == 1:
                name = current.parts[0]
                if name == "now":
                    return True
                if name in self.defs.traits and name not in seen:
                    seen.add(name)
                    stack.append(self.defs.traits[name].expr)
            stack.extend(ast.trait_operands(current))
        return False

    def _compare(self, node: ast.Compare, where: bool) -> tuple[str, bool]:
        left, left_timed = self.expr(node.left, where)
        right, right_timed = self.expr(node.right, where)
        if FAILED in (left, right):
            return ("bool", left_timed or right_timed)
        if not _comparable(left, right):
            self.fail(node, f"cannot compare {_a(left)} with {_a(right)}{_duration_hint(left, right)}")
        if {left, right} == {"any", "duration"}:
            data = node.left if left == "any" else node.right
            if self._from_data(data, where, set()):
                self.fail(node, f"cannot compare {data.text or 'a value from the data'} with a duration: a value "
                                "from the profile or an event is a number or text, never a duration (give a number "
                                f"its unit, e.g. {data.text or 'profile.minutes'} * 1m)")
        if node.op not in ("==", "!=") and (left not in ORDERED or right not in ORDERED):
            self.fail(node, f"'{node.op}' needs numbers, durations, timestamps or text, not {_a(left if left not in ORDERED else right)}")
        return ("bool", left_timed or right_timed)

    def _from_data(self, node: ast.Node, where: bool, seen: set[str]) -> bool:
        """Is `node` a value as the data holds it: a profile attribute, an event property,
        `first()` or `last()` of one, or a trait or `coalesce()` of such? JSON has no
        durations, so compared with one such a value would be read as milliseconds, which
        is never what `profile.minutes > 1d` means. (A value computed from such values,
        `profile.last_login - profile.signup`, may be a duration and is left alone.)"""
        while isinstance(node, ast.Negate):
            node = node.operand
        if isinstance(node, ast.Name):
            head = node.parts[0]
            if where or (head == "profile" and len(node.parts) > 1):
                return True
            if len(node.parts) == 1 and head in self.defs.traits and head not in seen:
                seen.add(head)
                return self._from_data(self.defs.traits[head].expr, False, seen)
            return False
        if isinstance(node, ast.Call):
            if node.function in ("first", "last"):
                target = node.args[0] if node.args else None
                return isinstance(target, ast.Name) and len(target.parts) > 1
            if node.function == "coalesce" and node.args:
                return all(self._from_data(arg, where, seen) for arg in node.args)
        return False

    def _membership(self, node: ast.Membership, where: bool) -> tuple[str, bool]:
        _, item_timed = self.expr(node.item, where)
        container, container_timed = self.expr(node.container, where)
        if container not in ("set", "string", "any", "null", FAILED):
            self.fail(node, f"'in' needs a list, a distinct(...) set or text on its right, not {_a(container)}")
        return ("bool", item_timed or container_timed)

    def _isnull(self, node: ast.IsNull, where: bool) -> tuple[str, bool]:
        return ("bool", self.expr(node.operand, where)[1])

    def _logical(self, node: ast.Logical, where: bool) -> tuple[str, bool]:
        timed = False
        for operand in node.operands:
            timed |= self.condition(operand, where)
        return ("bool", timed)

    def _not(self, node: ast.Not, where: bool) -> tuple[str, bool]:
        return ("bool", self.condition(node.operand, where))

    def condition(self, node: ast.Node, where: bool) -> bool:
        kind, timed = self.expr(node, where)
        if kind not in ("bool", "any", "null", FAILED):
            self.fail(node, f"expected a condition (true/false), got {_a(kind)}: '{node.text}'")
        return timed

    def _call(self, node: ast.Call, where: bool) -> tuple[str, bool]:
        name = node.function
        if name not in FUNCTIONS:
            hint = difflib.get_close_matches(name, sorted(FUNCTIONS), n=1)
            self.fail(node, f"unknown function {name}(){f' (did you mean {hint[0]}()?)' if hint else ''}")
        if where and name != "coalesce":
            self.fail(node, f"{name}() cannot be used inside where=: a filter reads one event's properties "
                            "(e.g. where=total > 100); write conditions on time, segments or other events "
                            "beside the aggregate, e.g. count(order_placed, where=total > 100) >= 1 and ...")
        if name in AGGREGATES:
            return self.aggregate(node)
        if node.kwargs:
            self.fail(node, f"{name}() takes no keyword arguments")
        if name == "since":
            if len(node.args) != 1:
                self.fail(node, "since() takes one timestamp, e.g. since(last(order_placed))")
            kind, _ = self.expr(node.args[0], where)
            if kind not in ("timestamp", "any", "null", FAILED):
                self.fail(node, f"since() needs a timestamp, not {_a(kind)}")
            return ("duration", True)
        if name == "in_segment":
            arg = node.args[0] if len(node.args) == 1 else None
            if not isinstance(arg, ast.Literal) or arg.kind != "string":
                self.fail(node, 'in_segment() takes one segment name in quotes, e.g. in_segment("vip")')
            target = str(arg.value)  # type: ignore[union-attr]
            if target not in self.defs.segments and ("segment", target) in self.defs.broken:
                raise _Failed  # its own error is reported
            if target not in self.defs.segments:
                hint = difflib.get_close_matches(target, list(self.defs.segments), n=1)
                self.fail(node, f"in_segment(): unknown segment {target!r}{f' (did you mean {hint[0]!r}?)' if hint else ''}")
            self._reads({target})
            return ("bool", False)
        # coalesce
        if not node.args:
            self.fail(node, "coalesce() needs at least one argument")
        kinds = [self.expr(arg, where) for arg in node.args]
        concrete = [k for k, _ in kinds if k not in ("any", "null", FAILED)]
        if len(set(concrete)) > 1:
            self.fail(node, f"coalesce() mixes {' and '.join(sorted(set(concrete)))}")
        return (concrete[0] if concrete else "any", any(t for _, t in kinds))

    def aggregate(self, node: ast.Call) -> tuple[str, bool]:
        name = node.function
        if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            self.fail(node, f"{name}() takes one event type{'' if name == 'count' else ' and property path'}, e.g. {name}({'order_placed' if name in ('count', 'first', 'last') else 'order_placed.total'})")
        target: ast.Name = node.args[0]  # type: ignore[assignment]
        event, path = target.parts[0], target.parts[1:]
        if not EVENT_TYPE.match(event):
            self.fail(node, f"{event!r} is not an event type ([a-z][a-z0-9_]*)")
        if name == "count" and path:
            self.fail(node, f"count() counts events: write count({event}), or filter with where=")
        if name in ("sum", "avg", "min", "max", "distinct") and not path:
            self.fail(node, f"{name}() needs a property path, e.g. {name}({event}.total)")
        timed = False
        for key, value in node.kwargs:
            if key == "within":
                if not (isinstance(value, ast.Literal) and value.kind == "duration" and value.value > 0):  # type: ignore[operator]
                    self.fail(value, "within= takes a positive duration such as 90d")
                timed = True
            elif key == "where":
                self.condition(value, where=True)
            else:
                self.fail(value, f"{name}() has no argument {key!r} (use within= or where=)")
        if name in ("count", "sum", "avg", "min", "max"):
            return ("number", timed)
        if name == "distinct":
            return ("set", timed)
        return ("timestamp" if not path else "any", timed)


def _a(kind: str) -> str:
    return {"any": "a value", "null": "null"}.get(kind, f"a{'n' if kind[0] in 'aeiou' else ''} {kind}")


def _duration_hint(left: str, right: str) -> str:
    if {left, right} == {"duration", "number"}:
        return " (write the number with a unit, e.g. 30d)"
    if {left, right} == {"duration", "timestamp"}:
        return " (use since(t) to turn a timestamp into a duration)"
    return ""


def _comparable(left: str, right: str) -> bool:
    return left == right or "any" in (left, right) or "null" in (left, right)


def _arithmetic_type(op: str, left: str, right: str) -> str | None:
    if "any" in (left, right) or "null" in (left, right):
        known = right if left in ("any", "null") else left
        return known if known in ("number", "duration") else "any"
    table = {
        ("+", "number", "number"): "number", ("-", "number", "number"): "number",
        ("*", "number", "number"): "number", ("/", "number", "number"): "number",
        ("+", "duration", "duration"): "duration", ("-", "duration", "duration"): "duration",
        ("-", "timestamp", "timestamp"): "duration", ("+", "timestamp", "duration"): "timestamp",
        ("-", "timestamp", "duration"): "timestamp", ("+", "duration", "timestamp"): "timestamp",
        ("*", "duration", "number"): "duration", ("*", "number", "duration"): "duration",
        ("/", "duration", "number"): "duration", ("/", "duration", "duration"): "number",
    }
    return table.get((op, left, right))


def _segment_cycles(defs: Definitions, refs: dict[str, set[str]],
                    through: dict[tuple[str, str], str]) -> list[Problem]:
    """Cycles of segments reading segments, each once, spelled with the traits they
    run through (`s1 -> (trait x) -> s1`: `s1` reads `x`, which reads `s1`)."""
    problems: list[Problem] = []
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(refs.get(name, ())):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    origin = defs.segments[name].origin
                    tiers = " (a tier level depends on the levels above it)" if any(
                        defs.segments[n].tier for n in cycle) else ""
                    hops = [cycle[0]] + [(f"(trait {through[(a, b)]}) -> {b}" if (a, b) in through else b)
                                         for a, b in zip(cycle, cycle[1:])]
                    problems.append(Problem(origin.file, origin.line,
                                            f"cycle between segments: {' -> '.join(hops)}{tiers}"))
            elif state.get(target) is None:
                visit(target, path + [target])
        state[name] = 2

    for name in defs.segments:
        if state.get(name) is None:
            visit(name, [name])
    return problems


def _action_settings_problems(action: Action) -> list[Problem]:
    """Settings an action's sink would refuse (or never read) when the change comes."""
    needs_one, known = ACTION_SETTINGS[action.kind]
    found: list[str] = []
    unknown = sorted(set(action.params) - known)
    if unknown:
        found.append(f"{action.kind} action: unknown setting {', '.join(map(repr, unknown))}"
                     + (f" (known: {', '.join(sorted(known))})" if known else " (it takes none but destination)"))
    if needs_one and not needs_one & {name for name, value in action.params.items() if value is not None}:
        found.append(f"{action.kind} action needs {' or '.join(sorted(needs_one))}")
    if action.kind == "email" and action.params.get("template") is not None and not isinstance(
            action.params["template"], str):
        found.append("email action: template must be a name, e.g. {email: {template: welcome}}")
    template = action.params.get("template") if action.kind == "email" else None
    if isinstance(template, str) and not is_template_name(template):
        found.append(f"email action: template {template!r} is no file name (letters, digits, '_', '.' and '-', "
                     "not starting with one of the last three nor holding '..'): the sink reads "
                     "<templates>/<destination>/<name>.txt or .html")
    for name in ("add", "remove"):
        groups = action.params.get(name) if action.kind == "group" else None
        if groups is not None and not all(isinstance(group, (str, int)) and str(group)
                                          for group in (groups if isinstance(groups, list) else [groups])):
            found.append(f"group action: {name} takes a group name or a list of names, got {groups!r}")
    discount = action.params.get("discount_percent")
    if discount is not None and (isinstance(discount, bool) or not isinstance(discount, (int, float))
                                 or not 0 <= discount <= 100):
        found.append(f"pricing action: discount_percent must be a number from 0 to 100, got {discount!r}")
    return [Problem(action.origin.file, action.origin.line, message) for message in found]


def _destination_settings_problems(destination: Destination) -> list[Problem]:
    """Settings of a destination its sink would never read (a typo) or could not read."""
    known = DESTINATION_SETTINGS[destination.type]
    found = [f"destination {destination.name!r}: unknown setting {name!r} for {destination.type} "
             f"(known: {', '.join(sorted(known))})" for name in sorted(set(destination.settings) - known)]
    url = destination.settings.get("url")
    schemes = URL_SCHEMES.get(destination.type)
    if schemes and isinstance(url, str) and url and "${" not in url:
        problem = _url_problem(url, schemes)
        if problem:
            found.append(f"destination {destination.name!r}: url {url!r} {problem}")
    for name, what in NUMBER_SETTINGS.items():
        value = destination.settings.get(name)
        if name in known and value is not None and not _number_setting(value, whole=what == "a whole number"):
            found.append(f"destination {destination.name!r}: {name} must be {what}, got {value!r}")
    return [Problem(destination.origin.file, destination.origin.line, message) for message in found]


def _url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """What keeps a sink's client from opening `url`, or None (read as the clients
    read it: scheme, host and port)."""
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        return f"must start with {' or '.join(f'{scheme}://' for scheme in schemes)}"
    if parts.scheme == "unix":
        return None if parts.path else "names no socket file"
    if not parts.hostname:
        return "names no host"
    try:
        parts.port  # noqa: B018 - raises for a port that is no number or out of range
    except ValueError:
        return "has a port that is no number from 0 to 65535"
    return None


def _number_setting(value: object, whole: bool) -> bool:
    if isinstance(value, str) and "${" in value:
        return True  # read from the environment when the sinks start
    if isinstance(value, bool):
        return False
    try:  # as the sinks read them: int(str(v)) for whole numbers, float(str(v)) for the rest
        number = int(str(value)) if whole else float(str(value))
    except ValueError:
        return False
    return number >= 0


def _destination_problems(defs: Definitions, segment: Segment) -> list[Problem]:
    problems = []
    for action in segment.on_enter + segment.on_exit:
        problems += _action_settings_problems(action)
        destination = defs.destinations.get(action.destination)
        needed = ACTION_KINDS[action.kind]
        if destination is None and ("destination", action.destination) in defs.broken:
            pass  # its own error is reported
        elif destination is None:
            known = ", ".join(sorted(defs.destinations)) or "none defined"
            problems.append(Problem(action.origin.file, action.origin.line,
                                    f"unknown destination {action.destination!r} for {action.kind} action (known: {known})"))
        elif destination.type != needed:
            problems.append(Problem(action.origin.file, action.origin.line,
                                    f"{action.kind} action needs a {needed} destination, but {action.destination!r} is {destination.type}"))
    return problems


def expression_types(defs: Definitions) -> Callable[[ast.Node], str]:
    """The coarse type of any expression of valid `defs` ("number", "duration",
    "timestamp", "set", "any", ...), for showing its value as a person reads it."""
    checker = _Checker(defs)
    return lambda node: checker.expr(node, where=False)[0]


def validate(defs: Definitions) -> list[Problem]:
    """Every problem in the merged definitions (empty when valid)."""
    checker = _Checker(defs)
    for destination in defs.destinations.values():
        needed = DESTINATION_NEEDS.get(destination.type)
        if needed and not destination.settings.get(needed):
            checker.problems.append(Problem(destination.origin.file, destination.origin.line,
                                            f"{destination.type} destination {destination.name!r} needs {needed}"))
        checker.problems.extend(_destination_settings_problems(destination))
    for name in defs.traits:
        checker.trait(name, defs.traits[name].expr) if name not in checker.trait_types else None
    for segment in defs.segments.values():
        for node, line in ((segment.when, segment.when_line), (segment.exit_when, segment.exit_line)):
            if node is not None:
                kind, _ = checker.check_expression(node, segment.origin.file, line, segment.name)
                if kind not in ("bool", "any", "null", FAILED):
                    checker.problems.append(Problem(segment.origin.file, line, f"segment {segment.name!r}: condition must be true/false, got {_a(kind)}"))
        checker.problems.extend(_destination_problems(defs, segment))
    reads = {name: checker.segment_refs.get(name, set()) | set(defs.levels_above(segment))
             for name, segment in defs.segments.items()}
    checker.problems.extend(_segment_cycles(defs, reads, checker.through))
    checker.problems.extend(depth_problems(defs))
    return checker.problems
