"""Definitions -> `Program`: everything the engine needs, precomputed once.

Per event type: which aggregate slots to update (with their `where=` filters) and which
segments to re-evaluate, already in dependency order; per segment: compiled
conditions, tier position, holdout share and, for time-dependent segments, the
function that finds the next flip.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rules.evaluate import aggregates
from rules.evaluate.aggregates import AggregateSpec
from rules.evaluate.analysis import Dependencies, conjuncts, dependencies
from rules.evaluate.codegen import Fallback, compile_condition
from rules.evaluate.flipgen import NextFlipFast, compile_next_flip
from rules.evaluate.compile import Compiler, Fn
from rules.evaluate.context import Context
from rules.evaluate.timing import NextFlip, next_flip_function
from rules.language import ast
from rules.language.model import Definitions, Segment

PROFILE_EVENTS = ("customer_created", "customer_updated")


@dataclass
class CompiledSegment:
    name: str
    index: int  # position in dependency order
    when: Callable[[Context], bool]
    exit_when: Callable[[Context], bool] | None
    holdout: float
    earlier_levels: tuple[str, ...]  # tier levels that win over this one
    next_flip: NextFlip | None
    dependencies: Dependencies
    dependents: tuple[int, ...] = ()  # indexes of segments that read this one
    fast_flip: NextFlipFast | None = None  # generated equivalent of next_flip, where one exists


@dataclass
class Updater:
    spec: AggregateSpec
    where: Fn | None
    update: aggregates.Update


@dataclass
class Program:
    version: str
    segments: list[CompiledSegment]
    updaters: dict[str, list[Updater]]
    affected: dict[str, tuple[int, ...]]  # event type -> segment indexes, in order
    profile_affected: tuple[int, ...]
    specs: dict[str, AggregateSpec]
    by_name: dict[str, CompiledSegment] = field(default_factory=dict)
    compiler: Compiler | None = None
    update_functions: dict[str, tuple[aggregates.Update, ...]] = field(default_factory=dict)
    # for a customer's first event: segments that may hold, by event type (see `_fresh`)
    fresh: dict[str, tuple[int, ...]] = field(default_factory=dict)
    fresh_other: tuple[int, ...] = ()
    # event types whose properties something reads: the profile events, and the types
    # of aggregates over a property or with a `where=` filter
    property_readers: frozenset[str] = frozenset(PROFILE_EVENTS)

    def first_event(self, kind: str) -> tuple[int, ...]:
        """Segments to evaluate for a customer's very first event of type `kind`."""
        return self.fresh.get(kind, self.fresh_other)

    def all_segments(self) -> tuple[int, ...]:
        return tuple(range(len(self.segments)))

    def closure(self, indexes: set[int]) -> tuple[int, ...]:
        """`indexes` plus every segment that reads one of them, in dependency order."""
        result, stack = set(indexes), list(indexes)
        while stack:
            for dependent in self.segments[stack.pop()].dependents:
                if dependent not in result:
                    result.add(dependent)
                    stack.append(dependent)
        return tuple(sorted(result))


def _order(defs: Definitions, reads: dict[str, set[str]]) -> list[Segment]:
    """Segments in dependency order (Kahn), keeping definition order among equals."""
    names = list(defs.segments)
    remaining = {name: set(reads[name]) for name in names}
    ordered: list[Segment] = []
    while remaining:
        ready = [n for n in names if n in remaining and not remaining[n]]
        if not ready:  # validation rejects cycles; keep going rather than loop forever
            ready = [next(n for n in names if n in remaining)]
        for name in ready:
            del remaining[name]
            ordered.append(defs.segments[name])
            for other in remaining.values():
                other.discard(name)
    return ordered


def _analysed(defs: Definitions) -> tuple[Compiler, dict[str, Dependencies]]:
    """A compiler that has met every aggregate of `defs`, and each segment's dependencies."""
    compiler = Compiler(defs)
    for trait in defs.traits.values():  # every trait is kept, used by a segment or not
        dependencies(trait.expr, compiler)
    deps: dict[str, Dependencies] = {}
    for name, segment in defs.segments.items():
        found = dependencies(segment.when, compiler)
        if segment.exit_when is not None:
            dependencies(segment.exit_when, compiler, found)
        deps[name] = found
    return compiler, deps


def _property_readers(compiler: Compiler) -> frozenset[str]:
    return frozenset(PROFILE_EVENTS).union(
        spec.event for spec in compiler.specs.values() if spec.path or spec.where_text is not None)


def property_readers(defs: Definitions) -> frozenset[str]:
    """`Program.property_readers` of `defs`, without compiling the program (a file is
    read before its engines are built)."""
    return _property_readers(_analysed(defs)[0])


def compile_program(defs: Definitions) -> Program:
    compiler, deps = _analysed(defs)
    reads: dict[str, set[str]] = {}
    for name, segment in defs.segments.items():
        reads[name] = set(deps[name].segments) | set(defs.levels_above(segment))
    ordered = _order(defs, reads)
    index = {segment.name: i for i, segment in enumerate(ordered)}
    compiled: list[CompiledSegment] = []
    for i, segment in enumerate(ordered):
        conditions = [segment.when] + ([segment.exit_when] if segment.exit_when is not None else [])
        compiled.append(CompiledSegment(
            name=segment.name,
            index=i,
            when=compiler.condition(segment.when),
            exit_when=compiler.condition(segment.exit_when) if segment.exit_when is not None else None,
            holdout=segment.holdout,
            earlier_levels=defs.levels_above(segment),
            next_flip=next_flip_function(conditions, compiler) if deps[segment.name].timed else None,
            dependencies=deps[segment.name],
            fast_flip=compile_next_flip(conditions, compiler) if deps[segment.name].timed else None,
        ))
    for segment in compiled:
        segment.dependents = tuple(sorted(index[n] for n, r in reads.items() if segment.name in r))
    updaters: dict[str, list[Updater]] = {}
    for spec in compiler.specs.values():
        where = compiler.where.get(spec.key)
        updaters.setdefault(spec.event, []).append(Updater(spec, where, aggregates.make_update(spec, where)))
    program = Program(defs.version, compiled, updaters, {}, (), compiler.specs,
                      {s.name: s for s in compiled}, compiler)
    program.affected = {
        event: program.closure({s.index for s in compiled if event in s.dependencies.events})
        for event in updaters
    }
    program.update_functions = {event: tuple(u.update for u in items) for event, items in updaters.items()}
    program.profile_affected = program.closure({s.index for s in compiled if s.dependencies.profile})
    for event in PROFILE_EVENTS:
        program.affected[event] = tuple(sorted(set(program.affected.get(event, ())) | set(program.profile_affected)))
    possible = {s.index for s in compiled if not _false_when_empty(defs.segments[s.name].when, compiler)}
    program.fresh = {event: program.closure(possible | set(found)) for event, found in program.affected.items()}
    program.fresh_other = program.closure(possible)
    program.property_readers = _property_readers(compiler)
    return program


def _false_when_empty(when: ast.Node, compiler: Compiler) -> bool:
    """Is `when` false for a customer with no events, no profile and no memberships,
    whatever the time? Then a customer's first event need not evaluate the segment
    unless that event's type feeds it (it is then in `affected`): most segments need
    orders, spend or views that a new customer does not have yet."""
    for operand in conjuncts(when):
        found = dependencies(operand, compiler)
        if found.clock or found.segments:
            continue  # an empty window stays empty; the clock and other segments do not stay put
        condition = compile_condition(operand, compiler)
        try:
            if condition is not None and not condition({}, {}, 0, {}):
                return True
        except Fallback:
            continue
    return False
