"""`segmenter preview --segments NEW --events FILE`: who would enter and exit if NEW went live.

The file is read once and replayed twice, under the live definitions and under NEW,
and the memberships as of the same instant are compared segment by segment.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import orjson

from rules import DefinitionError, load_definitions
from rules.language import ast
from rules.language.loader import definition_files
from rules.language.model import Definitions
from rules.quality.conditions import inline_traits
from rules.quality.diff import SegmentDiff, customer_diffs, segment_diffs
from rules.timeutil import format_timestamp
from stream.progress import progress_bar
from stream.replay_file import (OutputError, checked_inputs, evaluate, final_memberships_and_holdouts, input_path,
                                nothing_to_evaluate, output_file, output_path, read_events, report_bad_lines,
                                wants_progress)
from stream.table import counted, format_table

HELP = "compare memberships under new definitions with the live ones, over a file of events"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--segments", required=True, help="the new definitions, file or folder")
    parser.add_argument("--events", required=True, type=input_path, help="events, JSONL or .jsonl.gz")
    parser.add_argument("--live", help="the live definitions (default: SEGMENTER_SEGMENTS, else segments/)")
    parser.add_argument("--as-of", help="compare memberships as of this instant (default: the last event)")
    parser.add_argument("--out", type=output_path, help="write one JSON line per customer whose segments differ")
    parser.add_argument("--json", action="store_true", help="per-segment report as JSON on stdout")
    parser.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                        help="progress bar on stderr (auto: for files over 5 MB)")


def run(args: argparse.Namespace) -> int:
    live_path = args.live or os.environ.get("SEGMENTER_SEGMENTS") or "segments"
    if not Path(live_path).exists():
        given = "--live" if args.live else "SEGMENTER_SEGMENTS" if os.environ.get("SEGMENTER_SEGMENTS") else None
        print(f"{live_path}: no such file or folder for the live definitions"
              + (f" (from {given})" if given else " (the default; give them with --live PATH)"), file=sys.stderr)
        return 1
    try:
        new = load_definitions(args.segments)
        live = load_definitions(live_path)
    except DefinitionError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        as_of = checked_inputs(args.events, args.as_of, (args.out,),
                               definition_files(Path(args.segments)) + definition_files(Path(live_path)))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    with progress_bar(wants_progress(args.progress, args.events)) as bar:
        loaded = read_events(args.events, bar, live, new)
        problem = nothing_to_evaluate(args.events, loaded, as_of)
        if problem:
            report_bad_lines(args.events, loaded)
            print(problem, file=sys.stderr)
            return 1
        engine, summary = evaluate(live, loaded, bar, as_of, label="live")
        before, held_before = final_memberships_and_holdouts(engine)
        del engine  # one engine in memory at a time
        engine, _ = evaluate(new, loaded, bar, as_of, label="new")
        after, held_after = final_memberships_and_holdouts(engine)
    report_bad_lines(args.events, loaded)
    rows = segment_diffs(before, after, statuses(live, new), held_before, held_after)
    moved = list(customer_diffs(before, after, held_before, held_after))
    if args.out:
        try:
            with output_file(args.out) as out:
                out.writelines(orjson.dumps(line) + b"\n" for line in moved)
        except OutputError as exc:
            print(exc, file=sys.stderr)
            return 1
    header = {"live": str(live_path), "live_definition": live.version, "new": str(args.segments),
              "new_definition": new.version, "as_of": format_timestamp(summary.as_of or 0), "customers": len(after)}
    if args.json:
        report = {**header, "segments": [row.to_dict() for row in rows]}
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_text(header, rows)
    where = f", listed in {args.out}" if args.out else " (--out FILE lists them)"
    regrouped = sum(1 for line in moved if "holdout_before" in line and line["before"] == line["after"])
    also = f" and {regrouped:,} only their holdout (control) groups" if regrouped else ""
    print(f"{len(moved) - regrouped:,} customers change segments{also}{where}", file=sys.stderr)
    return 0


def statuses(live: Definitions, new: Definitions) -> dict[str, str]:
    """Each segment of either set: added, removed, changed or same (conditions with traits written out)."""
    found: dict[str, str] = {}
    for name, segment in new.segments.items():
        if name not in live.segments:
            found[name] = "added"
        else:
            found[name] = "same" if _meaning(live, name) == _meaning(new, name) else "changed"
    for name in live.segments:
        found.setdefault(name, "removed")
    return found


def _meaning(definitions: Definitions, name: str) -> tuple[object, ...]:
    """What decides membership: the conditions with traits written out, holdout, the earlier
    levels of its tier and the segments it reads with in_segment()."""
    segment = definitions.segments[name]
    exit_when = inline_traits(segment.exit_when, definitions) if segment.exit_when is not None else None
    earlier = definitions.levels_above(segment)
    when = inline_traits(segment.when, definitions)
    read = sorted(_in_segment(when) | (_in_segment(exit_when) if exit_when is not None else set()))
    return (when, exit_when, segment.holdout,
            tuple(_meaning(definitions, n) for n in (*earlier, *read) if n in definitions.segments))


def _in_segment(node: ast.Node) -> set[str]:
    if isinstance(node, ast.Call) and node.function == "in_segment":
        return {str(getattr(node.args[0], "value", ""))}
    return {name for child in ast.children(node) for name in _in_segment(child)}


def _print_text(header: dict[str, object], rows: list[SegmentDiff]) -> None:
    print(f"{counted(header['customers'], 'customer')} as of {header['as_of']}: {header['live']} -> {header['new']}")
    table: list[tuple[object, ...]] = [(r.segment, r.status, r.before, r.after, r.entered, r.exited, r.unchanged)
                                       for r in rows]
    columns: tuple[str, ...] = ("segment", "definition", "before", "after", "entered", "exited", "unchanged")
    if any(r.held_before or r.held_after for r in rows):  # only where some segment has a holdout
        columns += ("held out",)
        table = [(*line, f"{r.held_before:,} -> {r.held_after:,}" if r.held_before != r.held_after
                  else f"{r.held_after:,}") for line, r in zip(table, rows)]
    print(format_table(columns, table))
    for row in rows:
        for verb, count, sample in (("enter", row.entered, row.entered_sample), ("exit", row.exited, row.exited_sample)):
            if count:
                more = f" and {count - len(sample):,} more" if count > len(sample) else ""
                print(f"  {row.segment}: {verb} {', '.join(sample)}{more}")
