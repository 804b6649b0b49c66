"""Why a customer is in or out of each segment: the value of every condition part.

The same compiled closures that decide membership evaluate each comparison and
predicate of a condition separately, so the explanation cannot disagree with the
decision it explains.
"""
from __future__ import annotations

from rules.evaluate.compile import Compiler, truth
from rules.evaluate.context import Context
from rules.evaluate.state import CustomerState
from rules.language import ast
from rules.language.model import Definitions
from rules.timeutil import format_duration

ATOMS = (ast.Compare, ast.Membership, ast.IsNull)


def _parts(node: ast.Node) -> list[ast.Node]:
    """Condition parts worth showing: the comparisons and predicates, left to right."""
    if isinstance(node, ATOMS) or (isinstance(node, ast.Call) and node.function == "in_segment"):
        return [node]
    if isinstance(node, (ast.Logical, ast.Not)):
        return [part for child in ast.children(node) for part in _parts(child)]
    return [node]


class Explainer:
    def __init__(self, defs: Definitions, compiler: Compiler) -> None:
        self.defs = defs
        self.compiler = compiler
        self._cache: dict[int, object] = {}

    def _value(self, node: ast.Node) -> object:
        key = id(node)
        if key not in self._cache:
            self._cache[key] = self.compiler.value(node)
        return self._cache[key]

    def _condition(self, node: ast.Node, ctx: Context) -> dict[str, object]:
        parts = []
        for part in _parts(node):
            parts.append({"condition": part.text, "value": truth(self._value(part)(ctx))})  # type: ignore[operator]
        return {"condition": node.text, "value": truth(self._value(node)(ctx)) is True, "parts": parts}  # type: ignore[operator]

    def explain(self, state: CustomerState, now: int, holdouts: set[str]) -> dict[str, object]:
        ctx = Context(state.slots, state.profile, now, {s: state.member(s) for s in self.defs.segments})
        traits = {}
        for name in self.defs.traits:
            value = self.compiler.trait(name)(ctx)
            traits[name] = value
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
            if name in state.flips:
                entry["next_check"] = state.flips[name]
                entry["next_check_in"] = format_duration(max(0, state.flips[name] - now))
            segments[name] = entry
        return {"traits": traits, "profile": dict(state.profile), "conditions": segments}
