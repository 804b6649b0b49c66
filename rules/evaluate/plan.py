"""Evaluation plans: the membership step for one set of segments, as one generated function.

An event re-evaluates a fixed set of segments (those its type can affect, in
dependency order), and the same few sets come back event after event. For each set
the engine asks for, this module writes the evaluation out as straight-line Python:
each segment's conditions (`codegen`) and next-flip search (`flipgen`) inlined, its
name, holdout share and tier levels as constants. Compared with a loop over the
segments calling a generated condition and a generated flip function for each, that
removes per segment two calls, a row lookup and the branches that do not apply.

Segments are evaluated in dependency order; where a generated condition or flip
meets a value it does not handle, that segment falls back to the closures (the
reference).
"""
from __future__ import annotations

from collections.abc import Callable

from rules.evaluate.changes import Change
from rules.evaluate.codegen import UNHANDLED, TooBig, _Source, compiled
from rules.evaluate.flipgen import flip_lines
from rules.evaluate.context import Context
from rules.evaluate.holdout import in_holdout
from rules.evaluate.program import CompiledSegment, Program
from rules.evaluate.state import CustomerState
from rules.language.model import Segment

Plan = Callable[[str, CustomerState, int, int, str], list[Change]]


class _Members:
    """`in_segment()` of the closures reads live memberships from the sequence numbers."""

    __slots__ = ("seqs",)

    def __init__(self, seqs: dict[str, int]) -> None:
        self.seqs = seqs

    def get(self, segment: str, default: bool = False) -> bool:
        return bool(self.seqs.get(segment, 0) & 1)


def decide(segment: CompiledSegment, slots: dict, profile: dict, now: int, seqs: dict[str, int], member: int) -> bool:
    """The reference decision with the closure compiler (when generated code bails out)."""
    ctx = Context(slots, profile, now, _Members(seqs))  # type: ignore[arg-type]
    if segment.earlier_levels:
        return segment.when(ctx) and not any(seqs.get(level, 0) & 1 for level in segment.earlier_levels)
    if member and segment.exit_when is not None:
        return not segment.exit_when(ctx)
    return segment.when(ctx)


def slow_flip(segment: CompiledSegment, slots: dict, profile: dict, now: int, seqs: dict[str, int]) -> int | None:
    assert segment.next_flip is not None
    return segment.next_flip(Context(slots, profile, now, _Members(seqs)))  # type: ignore[arg-type]


def compile_plan(program: Program, targets: tuple[int, ...]) -> Plan:
    """The function (key, state, now, at, cause) -> changes for the segments `targets`.

    Written with every condition and flip search generated; if Python cannot compile
    that (a condition nested deeper than its parser allows), written again with each
    such part left to the closures, which only this rare case pays to find out."""
    name = f"<plan {','.join(map(str, targets))}>"
    source = _Source(program.compiler)  # type: ignore[arg-type]
    code = compiled(_plan_text(program, targets, source, checked=False), name)
    if code is None:
        source = _Source(program.compiler)  # type: ignore[arg-type]
        code = compiled(_plan_text(program, targets, source, checked=True), name)
    assert code is not None, "every part that may not compile is checked"
    namespace: dict[str, object] = dict(source.env)
    namespace.update({"_Change": Change, "_holdout": in_holdout, "_decide": decide, "_slow_flip": slow_flip})
    exec(code, namespace)  # noqa: S102 - from validated trees
    return namespace["plan"]  # type: ignore[return-value]


def _plan_text(program: Program, targets: tuple[int, ...], source: _Source, checked: bool) -> str:
    """The plan's source; `checked`: leave each generated part Python cannot compile
    to the closures. Parts that would be too big (`TooBig`) always are."""
    assert program.compiler is not None
    compiler = program.compiler
    lines = ["def plan(key, state, now, at, cause):",
             "    seqs, flips, slots, profile = state.seqs, state.flips, state.slots, state.profile",
             "    changes, enters = [], []  # within one evaluation, exits come before enters"]
    for index in targets:
        segment = program.segments[index]
        definition = compiler.defs.segments[segment.name]
        ref = source.constant(segment)
        name = repr(segment.name)
        lines.append(f"    # {segment.name}")
        lines.append(f"    seq = seqs.get({name}, 0)")
        fallback = f"wanted = _decide({ref}, slots, profile, now, seqs, seq & 1)"
        wanted = _wanted(segment, definition, source)
        if wanted is not None and (not checked or compiled(wanted, "<check>") is not None):
            lines += ["    try:", f"        {wanted}", f"    except {UNHANDLED}:", f"        {fallback}"]
        else:  # too big or too deep for Python: the closures decide
            lines.append(f"    {fallback}")
        lines.append("    if wanted != seq & 1:")
        lines.append("        seq += 1")
        lines.append(f"        seqs[{name}] = seq")
        holdout = f"_holdout(key, {name}, {segment.holdout!r})" if segment.holdout else "False"
        for branch, kind, into in (("if wanted:", "enter", "enters"), ("else:", "exit", "changes")):
            lines.append(f"        {branch}")
            lines.append(f"            {into}.append(_Change(key, {name}, {kind!r}, seq, at, cause, {holdout}, "
                         f"{program.version!r}))")
        if segment.next_flip is not None:
            conditions = [definition.when] + ([definition.exit_when] if definition.exit_when is not None else [])
            try:
                body = flip_lines(conditions, compiler, source)  # None or empty: only the closure finds flips
            except TooBig:
                body = None
            if body and (not checked or compiled("\n".join(body), "<check>") is not None):
                lines.append("    try:")
                lines.extend("        " + line for line in body)
                lines.append(f"    except {UNHANDLED}:")
                lines.append(f"        best = _slow_flip({ref}, slots, profile, now, seqs)")
            else:
                lines.append(f"    best = _slow_flip({ref}, slots, profile, now, seqs)")
            lines.append("    if best is None:")
            lines.append(f"        flips.pop({name}, None)")
            lines.append("    else:")
            lines.append(f"        flips[{name}] = best")
    lines += ["    state.wake = min(flips.values()) if flips else None",
              f"    state.version = {program.version!r}",
              "    state.clock = now",
              "    if enters:",
              "        changes += enters",
              "    return changes", ""]
    return "\n".join(lines)


def _wanted(segment: CompiledSegment, definition: Segment, source: _Source) -> str | None:
    """`wanted = <the segment's decision>` as generated code; None when too big."""
    try:
        when = source.holds(definition.when)  # a polarity expression is a bool already
        if segment.earlier_levels:
            earlier = " or ".join(f"seqs.get({level!r}, 0) & 1" for level in segment.earlier_levels)
            return f"wanted = {when} and not ({earlier})"
        if definition.exit_when is not None:
            return f"wanted = (not {source.holds(definition.exit_when)}) if seq & 1 else {when}"
        return f"wanted = {when}"
    except TooBig:
        return None
