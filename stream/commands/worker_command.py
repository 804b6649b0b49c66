"""`segmenter worker`: the streaming worker (Faust)."""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from rules import DefinitionError, load_definitions
from stream import settings as worker_settings

HELP = "run the streaming worker: consume events, keep state, publish membership changes"


def register(parser: argparse.ArgumentParser) -> None:
    worker_settings.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        settings = worker_settings.from_arguments(args)
    except ValueError as exc:
        print(f"{exc}\nworker not started", file=sys.stderr)
        return 1
    if settings.partitions < 1:
        print(f"--partitions must be 1 or more, not {settings.partitions} (topics are created with it)",
              file=sys.stderr)
        return 1
    if not Path(settings.segments).exists():
        default = Path(settings.segments) == Path("segments")
        print(f"{settings.segments}: no such file or folder for the definitions"
              + (" (the default; give them with --segments PATH or SEGMENTER_SEGMENTS)" if default else "")
              + "\nworker not started", file=sys.stderr)
        return 1
    try:
        definitions = load_definitions(settings.segments)
    except DefinitionError as exc:
        print(exc, file=sys.stderr)
        print("worker not started: fix the definitions above", file=sys.stderr)
        return 1
    if settings.processes < 1:
        print(f"--processes must be 1 or more, not {settings.processes}", file=sys.stderr)
        return 1
    if settings.processes > 1 and settings.web_url:
        print("--web-url names one process; with --processes each process i advertises "
              "http://<host>:<web-port + i>: leave --web-url unset, or run one process per worker", file=sys.stderr)
        return 1
    import faust

    from stream.kafka.app import SegmenterApp
    from stream.kafka.faustfixes import quiet_logging
    from stream.kafka.topics import ensure_topics

    try:
        asyncio.run(ensure_topics(settings))
    except Exception as exc:  # noqa: BLE001 - report any connection problem plainly
        print(f"cannot reach Kafka at {', '.join(settings.brokers)}: {exc}", file=sys.stderr)
        return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    if settings.processes > 1:
        from stream.supervisor import supervise

        return supervise(settings)
    segmenter = SegmenterApp(settings, definitions)
    worker = faust.Worker(segmenter.app, loglevel="warning", redirect_stdouts=False)
    worker.spinner = None  # the spinner is what leaves the root logger at DEBUG
    quiet_logging()
    print(f"segmenter worker: {len(definitions.segments)} segments (definition {definitions.version}), "
          f"topics {', '.join(settings.topics)} -> {settings.changes_topic}", file=sys.stderr, flush=True)
    worker.execute_from_commandline()
    return 0
