"""`segmenter redrive`: run the actions in the sink dead-letter topic again."""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka.errors import KafkaError

from sinks import settings as sink_settings_module
from sinks.app import configure_logging, prepare_from_arguments
from sinks.redrive import redrive
from sinks.registry import close_all, start_all

HELP = "run dead-lettered sink actions again (from the redrive group's offsets, or --from-beginning)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from-beginning", action="store_true",
                        help="read the whole dead-letter topic, not only what the redrive group has not read")
    parser.add_argument("--list", action="store_true", dest="list_only",
                        help="print the dead letters as JSON lines; run nothing, commit nothing")
    parser.add_argument("--idle", type=float, default=3.0,
                        help="stop once nothing new arrived for this many seconds (default 3)")
    sink_settings_module.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.list_only:
        return _list(args)
    loaded = prepare_from_arguments(args)
    if loaded is None:
        return 1
    settings, sink, prepared = loaded

    async def main() -> int:
        await start_all(prepared.sinks, prepared.context)
        try:
            report = await redrive(settings, sink, prepared.dispatcher, args.from_beginning, idle=args.idle,
                                   definitions=prepared.definitions)
        finally:
            await close_all(prepared.sinks, prepared.context)
        print(f"redrive: {report.read} read, {report.redriven} done, {report.dead_again} dead-lettered again, "
              f"{report.unreadable} unreadable"
              + (f", {report.unknown_segment} of segments these definitions lack (skipped)" if report.unknown_segment else ""),
              file=sys.stderr)
        return 1 if report.dead_again else 0

    return _stopped_on_errors(main)


def _list(args: argparse.Namespace) -> int:
    """`--list` runs no action: no destinations to set up, no variables to need."""
    configure_logging()
    try:
        settings, sink = sink_settings_module.from_arguments(args)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1

    async def main() -> int:
        report = await redrive(settings, sink, None, args.from_beginning, list_only=True, idle=args.idle)
        print(f"{report.read} dead letter(s)", file=sys.stderr)
        return 0

    return _stopped_on_errors(main)


def _stopped_on_errors(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    try:
        return asyncio.run(main())
    except (OSError, TimeoutError, KafkaError) as exc:
        print(f"redrive stopped: {exc}", file=sys.stderr)
        return 1
