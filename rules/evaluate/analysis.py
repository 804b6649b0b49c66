"""What an expression depends on: which aggregates (so which event types), the profile,
the clock, and other segments. This is how an event re-evaluates only the segments it
can affect, and how the engine knows which segments need time-based flips.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rules.evaluate.compile import Compiler
from rules.language import ast


@dataclass
class Dependencies:
    specs: set[str] = field(default_factory=set)  # aggregate slot keys
    events: set[str] = field(default_factory=set)
    windowed: set[str] = field(default_factory=set)  # windowed aggregate slot keys
    profile: bool = False
    clock: bool = False  # uses now or since()
    segments: set[str] = field(default_factory=set)  # in_segment targets

    @property
    def timed(self) -> bool:
        return self.clock or bool(self.windowed)

    def add(self, other: Dependencies) -> None:
        self.specs |= other.specs
        self.events |= other.events
        self.windowed |= other.windowed
        self.profile |= other.profile
        self.clock |= other.clock
        self.segments |= other.segments


def dependencies(node: ast.Node, compiler: Compiler, found: Dependencies | None = None) -> Dependencies:
    found = found if found is not None else Dependencies()
    if isinstance(node, ast.Name):
        head = node.parts[0]
        if head == "now" and len(node.parts) == 1:
            found.clock = True
        elif head == "profile":
            found.profile = True
        elif head in compiler.defs.traits:
            dependencies(compiler.defs.traits[head].expr, compiler, found)
        return found
    if isinstance(node, ast.Call):
        if node.function == "since":
            found.clock = True
        elif node.function == "in_segment":
            found.segments.add(str(node.args[0].value))  # type: ignore[attr-defined]
            return found
        elif node.function != "coalesce":
            spec = compiler.aggregate_spec(node)
            found.specs.add(spec.key)
            found.events.add(spec.event)
            if spec.within is not None:
                found.windowed.add(spec.key)
            return found  # where= filters see properties only
    for child in ast.children(node):
        dependencies(child, compiler, found)
    return found


def comparisons(node: ast.Node, compiler: Compiler, seen: set[str] | None = None) -> list[ast.Node]:
    """Every comparison reachable from `node`, through traits; candidates for flips."""
    seen = seen if seen is not None else set()
    found: list[ast.Node] = []
    if isinstance(node, ast.Compare):
        found.append(node)
    if isinstance(node, ast.Name) and node.parts[0] in compiler.defs.traits and len(node.parts) == 1:
        if node.parts[0] not in seen:
            seen.add(node.parts[0])
            found.extend(comparisons(compiler.defs.traits[node.parts[0]].expr, compiler, seen))
        return found
    if isinstance(node, ast.Call) and node.function not in ("since", "coalesce"):
        return found
    for child in ast.children(node):
        found.extend(comparisons(child, compiler, seen))
    return found


def conjuncts(node: ast.Node) -> list[ast.Node]:
    """The parts of `a and b and c` (a single part otherwise)."""
    if isinstance(node, ast.Logical) and node.op == "and":
        return [part for operand in node.operands for part in conjuncts(operand)]
    return [node]
