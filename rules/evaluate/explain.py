"""Why a customer is in or out of each segment: the value of every condition part.

The same compiled closures that decide membership evaluate each comparison and
predicate of a condition separately, so the explanation cannot disagree with the
decision it explains.
"""
from __future__ import annotations

import math

from rules.evaluate.compile import Compiler, truth
from rules.evaluate.context import Context
from rules.evaluate.events import LATEST_TIMESTAMP
from rules.evaluate.state import CustomerState
from rules.language import ast
from rules.language.model import Definitions, Segment
from rules.language.validate import expression_types
from rules.timeutil import format_timestamp, spell_duration

ATOMS = (ast.Compare, ast.Membership, ast.IsNull)


def _parts(node: ast.Node) -> list[ast.Node]:
    """Condition parts worth showing: the comparisons and predicates, left to right."""
    if isinstance(node, ATOMS) or (isinstance(node, ast.Call) and node.function == "in_segment"):
        return [node]
    if isinstance(node, (ast.Logical, ast.Not)):
        return [part for child in ast.children(node) for part in _parts(child)]
    return [node]


def _operands(part: ast.Node) -> list[ast.Node]:
    """The values a part compares or tests, other than the literals written in it."""
    if isinstance(part, ast.Compare):
        found = [part.left, part.right]
    elif isinstance(part, ast.Membership):
        found = [part.item, part.container]
    elif isinstance(part, ast.IsNull):
        found = [part.operand]
    else:
        found = []
    return [node for node in found if not isinstance(node, (ast.Literal, ast.ListLiteral))]


def readable(value: object, kind: str) -> object:
    """A value as a person reads it: a duration spelled out (`12d 4h 3m`), a time in
    RFC 3339. Other numbers stay exactly what the condition compared: rounding away
    float noise (0.19999999999999998 shown as 0.2) would show a value for which
    `>= 0.2` holds beside a part that says it does not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return value
    if kind == "duration":
        return spell_duration(round(value))
    if kind == "timestamp" and 0 <= value <= LATEST_TIMESTAMP:
        return format_timestamp(round(value))
    return value


class Explainer:
    def __init__(self, defs: Definitions, compiler: Compiler) -> None:
        self.defs = defs
        self.compiler = compiler
        self._cache: dict[int, object] = {}
        self._type_of = expression_types(defs)
        self._types: dict[int, str] = {}

    def _kind(self, node: ast.Node) -> str:
        kind = self._types.get(id(node))
        if kind is None:
            try:
                kind = self._type_of(node)
            except RecursionError:  # a chain of traits as deep as validate allows, under a deep caller
                kind = "any"  # shown as it is
            self._types[id(node)] = kind
        return kind

    def _operands(self, part: ast.Node) -> list[tuple[ast.Node, str]]:
        """The operands of `part` with the kind each is shown as. A value typed only
        at run time compared with a duration or a time is shown as one
        (`profile.last_login - profile.signup > 30d`: two times kept as text)."""
        other = {}
        if isinstance(part, ast.Compare):
            other = {id(part.left): part.right, id(part.right): part.left}
        shown = []
        for operand in _operands(part):
            kind = self._kind(operand)
            if kind == "any" and id(operand) in other and self._kind(other[id(operand)]) in ("duration", "timestamp"):
                kind = self._kind(other[id(operand)])
            shown.append((operand, kind))
        return shown

    def _value(self, node: ast.Node) -> object:
        key = id(node)
        if key not in self._cache:
            self._cache[key] = self.compiler.value(node)
        return self._cache[key]

    def _condition(self, node: ast.Node, ctx: Context) -> dict[str, object]:
        parts = []
        for part in _parts(node):
            shown: dict[str, object] = {"condition": part.text, "value": truth(self._value(part)(ctx))}  # type: ignore[operator]
            operands = {o.text: readable(self._value(o)(ctx), kind) for o, kind in self._operands(part)}  # type: ignore[operator]
            if operands:
                shown["values"] = operands
            parts.append(shown)
        return {"condition": node.text, "value": truth(self._value(node)(ctx)) is True, "parts": parts}  # type: ignore[operator]

    def explain(self, state: CustomerState, now: int, holdouts: set[str], anonymous: bool = False) -> dict[str, object]:
        """`anonymous`: the state is a visitor's, never identified (in no segment yet)."""
        ctx = Context(state.slots, state.profile, now, {s: state.member(s) for s in self.defs.segments})
        traits = {}
        for name in self.defs.traits:
            traits[name] = self.compiler.trait(name)(ctx)
        segments = {}
        for name, segment in self.defs.segments.items():
            entry: dict[str, object] = {
                "member": state.member(name),
                "holdout": name in holdouts,
                "when": self._condition(segment.when, ctx),
            }
            if segment.exit_when is not None:
                entry["exit_when"] = self._condition(segment.exit_when, ctx)
            if segment.tier:
                entry["tier"] = segment.tier
            entry["why"] = self._why(segment, entry, state, name in holdouts, anonymous)
            if name in state.flips:
                # the next instant a time-based part of its conditions can change: the
                # segment is evaluated again then, and membership may or may not change
                entry["next_check"] = state.flips[name]
                entry["next_check_at"] = format_timestamp(state.flips[name])
                entry["next_check_in"] = spell_duration(max(0, state.flips[name] - now))
            segments[name] = entry
        return {"traits": traits, "profile": dict(state.profile), "conditions": segments}

    def _why(self, segment: Segment, entry: dict[str, object], state: CustomerState, held: bool,
             anonymous: bool) -> str:
        """The membership in one sentence, from the values shown beside it: which
        condition decides, hysteresis, the tier level that matched first, the holdout."""
        holds = entry["when"]["value"]  # type: ignore[index]
        leave = entry["exit_when"]["value"] if "exit_when" in entry else None  # type: ignore[index]
        if anonymous:
            return "not a member: an anonymous visitor is in no segment until an identify links it to a customer"
        if entry["member"]:
            if holds and not leave:
                why = "member: when holds"
            elif segment.exit_when is not None and not leave:
                why = (f"member: entered earlier and stays until exit_when holds "
                       f"('{segment.exit_when.text}' does not)")
            else:
                why = "member until its next evaluation, which finds that it no longer holds"
            if held:
                why += (f"; in the {segment.holdout * 100:g} % holdout (control) group, so its actions do not run "
                        "(it is counted, and its changes are published with holdout true)")
            return why
        earlier = [level for level in self.defs.levels_above(segment) if state.member(level)]
        if earlier:
            return (f"not a member: when holds, but level {earlier[0]!r} of tier {segment.tier!r} matched first"
                    if holds else f"not a member: when does not hold (and level {earlier[0]!r} matched first)")
        if holds and leave:  # overlapping conditions: `lint` warns of them [hysteresis]
            return ("not a member: exit_when holds as well as when, so it left at its last evaluation and enters "
                    "again at its next one, an event of a type it reads or a timer (when and exit_when overlap: "
                    "see `segmenter lint`)")
        if holds:
            return "not a member yet: when holds now; the change is made at its next evaluation"
        return "not a member: when does not hold"
