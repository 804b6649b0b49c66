"""`segmenter lint PATH [--events FILE]`: segment-quality warnings.

Exit codes: 0 no warnings, 1 warnings, 2 the definitions are invalid (or an input is
missing), so CI can tell "fix the file" from "look at the report".
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from itertools import takewhile

import orjson

from rules import Change, DefinitionError, load_definitions
from rules.language.model import Definitions, Origin
from rules.quality.finding import Finding
from rules.quality.freshness import epoch_seconds_findings, freshness_findings, outlying_time_findings
from rules.quality.population import overlaps, population_findings, segment_sizes
from rules.quality.profile_times import unreadable_time_findings
from rules.quality.property_data import profile_findings, property_findings
from rules.quality.static import CHECKS, static_findings
from rules.timeutil import format_timestamp, parse_duration
from stream.eventfile import LoadedEvents
from stream.progress import progress_bar
from stream.replay_file import (checked_inputs, evaluate, final_memberships, input_path, nothing_to_evaluate,
                                read_events, report_bad_lines, wants_progress)
from stream.table import counted, format_table

HELP = "segment-quality warnings: static checks, and sizes, overlaps and data freshness with --events"
EVENT_CHECKS = ("never-entered", "too-narrow", "too-broad", "overlap", "missing-events", "stale-events",
                "missing-properties", "mistyped-properties", "unreadable-times", "outlying-times", "epoch-seconds",
                "bad-events")
SHOWN_OVERLAPS = 10


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="definitions file or folder")
    parser.add_argument("--events", type=input_path, help="replay this JSONL(.gz) file and check sizes and overlaps")
    parser.add_argument("--as-of", help="memberships as of this instant (default: the last event)")
    parser.add_argument("--min-size", type=int, default=10, help="warn under this many members (default 10)")
    parser.add_argument("--max-share", type=float, default=0.9, help="warn over this share of customers (default 0.9)")
    parser.add_argument("--max-overlap", type=float, default=0.8, help="warn over this Jaccard overlap (default 0.8)")
    parser.add_argument("--stale-after", default="7d", help="warn when a counted event type is silent this long before as-of (default 7d)")
    parser.add_argument("--ignore", action="append", default=[], metavar="CHECK",
                        help=f"skip a check (repeatable or comma-separated): {', '.join(CHECKS + EVENT_CHECKS)}")
    parser.add_argument("--json", action="store_true", help="one JSON report on stdout instead of text")
    parser.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                        help="progress bar on stderr (auto: for files over 5 MB)")


def run(args: argparse.Namespace) -> int:
    try:
        definitions = load_definitions(args.path)
    except DefinitionError as exc:
        print(exc, file=sys.stderr)
        return 2
    for option, value in (("--max-share", args.max_share), ("--max-overlap", args.max_overlap)):
        if not 0 <= value <= 1:
            print(f"{option}: a fraction from 0 to 1 (0.9 means 90 %), got {value:g}", file=sys.stderr)
            return 2
    if args.min_size < 0:
        print(f"--min-size: a number of members, 0 or more, got {args.min_size}", file=sys.stderr)
        return 2
    ignored = _ignored(args)
    unknown = ignored - set(CHECKS + EVENT_CHECKS)
    if unknown:
        print(f"--ignore: unknown check {', '.join(sorted(unknown))} (the checks: {', '.join(CHECKS + EVENT_CHECKS)})",
              file=sys.stderr)
        return 2
    findings = static_findings(definitions)
    report: dict[str, object] = {"definition": definitions.version}
    if args.events is not None:
        try:
            as_of = checked_inputs(args.events, args.as_of)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        try:
            stale_after = parse_duration(args.stale_after)
        except ValueError as exc:
            print(f"--stale-after: {exc}", file=sys.stderr)
            return 2
        try:
            findings += _from_events(args, definitions, as_of, stale_after, report)
        except NothingToEvaluate as exc:
            print(exc, file=sys.stderr)
            return 2
    findings = sorted((f for f in findings if f.check not in ignored), key=Finding.sort_key)
    if args.json:
        report["warnings"] = [f.to_dict() for f in findings]
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_text(findings, report)
    return 1 if findings else 0


class NothingToEvaluate(Exception):
    """The events file gives nothing to evaluate (see `nothing_to_evaluate`)."""


def _ignored(args: argparse.Namespace) -> set[str]:
    return {name.strip() for value in args.ignore for name in value.split(",") if name.strip()}


def _from_events(args: argparse.Namespace, definitions: Definitions, as_of: int | None, stale_after: int,
                 report: dict[str, object]) -> list[Finding]:
    entered: Counter[str] = Counter()
    exited: Counter[str] = Counter()

    def count(change: Change) -> None:
        (entered if change.change == "enter" else exited)[change.segment] += 1

    with progress_bar(wants_progress(args.progress, args.events)) as bar:
        loaded = read_events(args.events, bar, definitions)
        problem = nothing_to_evaluate(args.events, loaded, as_of)
        if problem:
            report_bad_lines(args.events, loaded)
            raise NothingToEvaluate(problem)
        engine, summary = evaluate(definitions, loaded, bar, as_of, count)
    report_bad_lines(args.events, loaded)
    memberships = final_memberships(engine)
    sizes = segment_sizes(definitions.segments, memberships, entered, exited)
    pairs = overlaps(memberships)
    until = summary.as_of or 0
    report.update(events=str(args.events), as_of=format_timestamp(until), customers=len(memberships),
                  segments=[s.to_dict() for s in sizes], overlaps=[p.to_dict() for p in pairs])
    found = population_findings(definitions, sizes, pairs, args.min_size, args.max_share, args.max_overlap,
                                _ignored(args))
    found += freshness_findings(definitions, _last_seen(loaded, until), _first_seen(loaded), until, stale_after,
                                str(args.events))
    times = [event.ts for event in loaded.events]  # in time order
    if as_of is None:
        found += outlying_time_findings(times, stale_after, str(args.events))
    found += epoch_seconds_findings(times, str(args.events))
    profiles = [engine.states[customer].profile for customer in memberships]
    found += unreadable_time_findings(definitions, profiles)
    found += profile_findings(definitions, profiles)
    found += property_findings(definitions, takewhile(lambda event: event.ts <= until, loaded.events),
                               str(args.events))
    if loaded.bad:
        line, reason = loaded.bad[0]
        found.append(Finding("bad-events", f"{len(loaded.bad):,} of {counted(loaded.lines, 'line')} cannot be used "
                             f"(the first: {reason})", Origin(str(args.events), line)))
    return found


def _last_seen(loaded: LoadedEvents, until: int) -> dict[str, int]:
    """Latest timestamp per event type, at or before `until` (events are in time order)."""
    last: dict[str, int] = {}
    for event in loaded.events:
        if event.ts > until:
            break
        last[event.type] = event.ts
    return last


def _first_seen(loaded: LoadedEvents) -> dict[str, int]:
    """Earliest timestamp per event type in the whole file."""
    first: dict[str, int] = {}
    for event in loaded.events:
        first.setdefault(event.type, event.ts)
    return first


def _print_text(findings: list[Finding], report: dict[str, object]) -> None:
    for finding in findings:
        print(finding)
    if "segments" in report:
        sizes: list[dict[str, object]] = report["segments"]  # type: ignore[assignment]
        print(f"\n{counted(report['customers'], 'customer')} as of {report['as_of']} in {report['events']}")
        rows = [(s["segment"], s["members"], f"{s['share']:.1%}", s["entered"], s["exited"]) for s in sizes]
        print(format_table(("segment", "members", "share", "entered", "exited"), rows))
        pairs: list[dict[str, object]] = report["overlaps"]  # type: ignore[assignment]
        if pairs:
            print(f"\nlargest overlaps (Jaccard), {min(len(pairs), SHOWN_OVERLAPS)} of {len(pairs)} pairs with members in common")
            rows = [(p["first"], p["second"], p["both"], p["either"], f"{p['jaccard']:.2f}") for p in pairs[:SHOWN_OVERLAPS]]
            print(format_table(("segment", "segment", "both", "either", "jaccard"), rows))
    count = len(findings)
    gap = "\n" if findings or "segments" in report else ""  # a blank line only after what came before
    print(f"{gap}{count} warning{'s' if count != 1 else ''}" if count else f"{gap}no warnings")
