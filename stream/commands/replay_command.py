"""`segmenter replay`: the live evaluator over a file of events, in event time."""
from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import orjson

from rules import Change, DefinitionError, Engine, Event, load_definitions
from rules.evaluate.engine import ANONYMOUS
from rules.language.model import Definitions
from rules.language.loader import definition_files
from rules.timeutil import format_timestamp
from stream.progress import progress_bar
from stream.replay_file import (OutputError, checked_inputs, evaluate, input_path, nothing_to_evaluate, output_file,
                                output_path, read_events, report_bad_lines, wants_progress)
from stream.table import counted

HELP = "run the evaluator over a JSONL(.gz) file of events; write changes and final memberships"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--segments", required=True, help="definitions file or folder")
    parser.add_argument("--events", required=True, type=input_path, help="events, JSONL or .jsonl.gz")
    parser.add_argument("--as-of", help="evaluate as of this instant (RFC 3339 or epoch ms); default: last event")
    parser.add_argument("--changes", type=output_path, help="write change events here (JSONL)")
    parser.add_argument("--memberships", type=output_path, help="write final memberships here (JSONL)")
    parser.add_argument("--bad-lines", type=output_path, help="write every unusable line here (JSONL: line, reason)")
    parser.add_argument("--explain", metavar="CUSTOMER", action="append", default=[],
                        help="print why CUSTOMER is in or out of each segment as of the end (repeatable: "
                             "one indented JSON document per customer, one after the other, as jq reads them)")
    parser.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                        help="progress bar on stderr (auto: for files over 5 MB)")


def run(args: argparse.Namespace) -> int:
    try:
        defs = load_definitions(args.segments)
    except DefinitionError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        as_of = checked_inputs(args.events, args.as_of, (args.changes, args.memberships, args.bad_lines),
                               definition_files(Path(args.segments)))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        return _replay(args, defs, as_of)
    except OutputError as exc:
        print(exc, file=sys.stderr)
        return 1


def _replay(args: argparse.Namespace, defs: Definitions, as_of: int | None) -> int:
    started = time.perf_counter()
    with progress_bar(wants_progress(args.progress, args.events)) as bar:
        loaded = read_events(args.events, bar, defs)
        with ExitStack() as stack:
            changes_out = stack.enter_context(output_file(args.changes)) if args.changes else None

            def on_change(change: Change) -> None:
                if changes_out is not None:
                    changes_out.write(change.to_json() + b"\n")

            engine, summary = evaluate(defs, loaded, bar, as_of, on_change)
    if args.memberships:
        write_memberships(engine, args.memberships)
    if args.bad_lines:
        with output_file(args.bad_lines) as out:
            for line, reason in loaded.bad:
                out.write(orjson.dumps({"line": line, "reason": reason}) + b"\n")
    unknown = 0
    for customer in args.explain:
        explanation = explain(engine, customer, summary.as_of or 0)
        if explanation is None:
            unknown += 1
            print(f"--explain: {_not_found(customer, loaded.events, args.events, len(loaded.bad))}", file=sys.stderr)
        else:
            if explanation["customer_id"] != customer:
                print(f"--explain: {customer!r} is an anonymous id of customer {explanation['customer_id']!r}, "
                      "explained below", file=sys.stderr)
            sys.stdout.write(orjson.dumps(explanation, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    elapsed = time.perf_counter() - started
    report_bad_lines(args.events, loaded, listed=args.bad_lines)
    customers = len(engine.customers())
    rate = (summary.applied + summary.duplicates) / elapsed if elapsed else 0
    as_of_text = format_timestamp(summary.as_of or 0) if loaded.events else "- (no usable events)"
    print(
        f"replayed {counted(summary.applied, 'event')} of {counted(customers, 'customer')} as of "
        f"{as_of_text} in {elapsed:.1f}s ({rate:,.0f} events/s): "
        f"{counted(summary.changes, 'change')} ({summary.timer_changes:,} time-based), "
        f"{counted(summary.duplicates, 'duplicate')}, {counted(len(loaded.bad), 'bad line')}"
        + (f", {counted(summary.skipped_after_as_of, 'event')} after --as-of" if summary.skipped_after_as_of else ""),
        file=sys.stderr,
    )
    if loaded.bad and not loaded.events:  # a backfill in CI must not pass on a file it could not read
        print(nothing_to_evaluate(args.events, loaded, None), file=sys.stderr)
        return 1
    return 1 if unknown else 0  # a script asking for a customer learns it is not there


def write_memberships(engine: Engine, path: Path) -> None:
    with output_file(path) as out:
        for customer in engine.customers():
            segments, holdout = engine.memberships(customer)
            out.write(orjson.dumps({"customer_id": customer, "segments": segments, "holdout": holdout}) + b"\n")


def explain(engine: Engine, customer: str, as_of: int) -> dict[str, object] | None:
    """As the worker's `GET /customers/<id>` answers: a customer, else an anonymous id,
    for its customer once identified, or for the visitor's own history."""
    key = engine.aliases.get(customer, customer)
    explained = engine.explain(key, as_of)
    anonymous = explained is None
    if anonymous:
        explained = engine.explain(ANONYMOUS + customer, as_of)
        if explained is None:
            return None
        explained["customer_id"] = customer
    return {**explained, "anonymous": anonymous, "as_of": format_timestamp(as_of)}


def _not_found(customer: str, events: list[Event], path: Path, bad: int = 0) -> str:
    """Why a customer has nothing to explain: not in the file (perhaps only on its bad
    lines), or only after the as-of."""
    first = next((event.ts for event in events if customer in (event.customer_id, event.anonymous_id)), None)
    if first is None:
        skipped = f" (or only on the {counted(bad, 'bad line')} skipped)" if bad else ""
        return f"no customer {customer!r} among the usable events of {path}{skipped}"
    return (f"customer {customer!r} has no event at or before the as-of (the first is at "
            f"{format_timestamp(first)})")
