"""`segmenter sinks`: carry out the actions of segment changes, from the changes topic."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aiokafka.errors import KafkaError

from sinks import settings as sink_settings_module
from sinks.app import Prepared, prepare_from_arguments
from sinks.processor import ChangeProcessor
from sinks.registry import close_all, start_all
from sinks.runner import SinksRunner

HELP = "carry out segment actions (groups, price lists, emails, webhooks, CSV exports) from the changes topic"


def register(parser: argparse.ArgumentParser) -> None:
    sink_settings_module.add_arguments(parser)


async def _serve(prepared: Prepared, runner: SinksRunner) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    settings, sink = runner.settings, runner.sink_settings

    def ready() -> None:
        print(f"segmenter sinks ready: {len(prepared.definitions.segments)} segments "
              f"(definition {prepared.definitions.version}), destinations "
              f"{', '.join(sorted(prepared.sinks)) or 'none'}; {settings.changes_topic} as group "
              f"{sink.sinks_group}, dead letters to {sink.sink_dlq_topic}", file=sys.stderr, flush=True)

    await start_all(prepared.sinks, prepared.context)
    try:
        await runner.run(stop, ready)
    finally:
        await close_all(prepared.sinks, prepared.context)


def run(args: argparse.Namespace) -> int:
    loaded = prepare_from_arguments(args)
    if loaded is None:
        return 1
    settings, sink, prepared = loaded
    processor = ChangeProcessor(prepared.definitions, prepared.dispatcher, prepared.stats)
    runner = SinksRunner(settings, sink, processor, prepared.stats)
    try:
        asyncio.run(_serve(prepared, runner))
    except (OSError, KafkaError) as exc:
        print(f"sinks stopped: {exc}", file=sys.stderr)
        return 1
    return 0
