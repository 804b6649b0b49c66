"""`segmenter demo`: embedded broker, worker, sinks, simulated shop and a live view, on one machine."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from rules import DefinitionError, load_definitions
from rules.language.model import Definitions
from stream.broker import EmbeddedBroker, free_port
from stream.demo.process import WorkerProcess
from stream.demo.sinks import SINK_DLQ_TOPIC, DemoSinks
from stream.demo.traffic import history, play_live, send_history
from stream.demo.view import DemoView
from stream.kafka.topics import ensure_topics, worker_topics
from stream.settings import Settings

HELP = "run everything on this machine: embedded broker, worker, sinks, simulated shop, live changes and sizes"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STOP_WITHIN = 5.0  # seconds the demo gives its own producer and consumer to stop on Ctrl-C


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=150.0, help="live events per second (default 150)")
    parser.add_argument("--customers", type=int, default=1500, help="customers in the backfilled history")
    parser.add_argument("--days", type=int, default=240, help="days of history to backfill")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until Ctrl-C)")
    parser.add_argument("--plain", action="store_true", help="print a status line every few seconds instead of the live view")


def run(args: argparse.Namespace) -> int:
    # Ctrl-C, `kill -INT` and `kill` (SIGTERM) all stop the demo and everything it
    # started. A demo launched as a background job of a script inherits SIGINT ignored,
    # and SIGTERM would end it without stopping its children (each in its own session).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="segmenter-demo-"))
    segments = workdir / "segments"
    segments.mkdir()
    sinks = DemoSinks(workdir, EXAMPLES)
    (segments / "shop.yaml").write_text(sinks.shop_yaml((EXAMPLES / "segments" / "shop.yaml").read_text()))
    shutil.copy(EXAMPLES / "live" / "live.yaml", segments / "live.yaml")
    try:
        definitions = load_definitions(segments)
    except DefinitionError as exc:
        print(exc, file=sys.stderr)
        return 1
    view = DemoView({name: seg.description for name, seg in definitions.segments.items()})
    broker = EmbeddedBroker(log_path=workdir / "broker.log")
    worker: WorkerProcess | None = None
    try:
        print("starting the embedded broker ...", file=sys.stderr)
        broker.start()
        view.broker = broker.bootstrap
        settings = Settings(brokers=[broker.url], segments=segments, store="memory://", data_dir=workdir / "data",
                            web_port=free_port())
        asyncio.run(ensure_topics(settings, [*worker_topics(settings), SINK_DLQ_TOPIC]))
        print("starting the worker (joins its consumer group in a few seconds) ...", file=sys.stderr)
        worker = WorkerProcess(settings, workdir / "worker.log")
        host = "127.0.0.1" if settings.web_host in ("", "0.0.0.0") else settings.web_host
        print(f"worker API: http://{host}:{settings.web_port} (/customers/<id>, /segments, /metrics, /health); "
              f"broker: {broker.bootstrap}", file=sys.stderr)
        print("starting the sinks ...", file=sys.stderr)
        view.sinks = sinks.start(settings)
        print(view.sinks, file=sys.stderr, flush=True)
        asyncio.run(_main(args, view, broker, worker, sinks, definitions))
    except KeyboardInterrupt:
        pass
    finally:
        sinks.stop()
        if worker is not None:
            worker.stop()
        broker.stop()
        where = f"\n{view.sinks}" if sinks.process is not None else ""
        print(f"\nstopped. {view.summary_line()}{where}\nlogs: {workdir}", file=sys.stderr)
    return 0


async def _main(args: argparse.Namespace, view: DemoView, broker: EmbeddedBroker, worker: WorkerProcess,
                sinks: DemoSinks, definitions: Definitions) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    consumer = AIOKafkaConsumer("segment-changes", "segmenter-dlq", SINK_DLQ_TOPIC, bootstrap_servers=broker.bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=20)
    await producer.start()
    await consumer.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        tasks.append(asyncio.create_task(_read_changes(consumer, view)))
        tasks.append(asyncio.create_task(_traffic(args, view, producer, worker)))
        if sinks.process is not None:
            tasks.append(asyncio.create_task(_read_sink_counts(view, sinks, definitions)))
        await _show(args, view, worker, sinks)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        # Ctrl-C must not wait on a slow or stuck broker (a producer's stop flushes what is
        # queued, with 40 s request timeouts): what is not sent by then is dropped.
        for client in (producer, consumer):
            with contextlib.suppress(Exception):  # TimeoutError included
                await asyncio.wait_for(client.stop(), STOP_WITHIN)


async def _traffic(args: argparse.Namespace, view: DemoView, producer: AIOKafkaProducer, worker: WorkerProcess) -> None:
    view.phase = "waiting for the worker"
    await asyncio.to_thread(worker.wait_ready, 120.0)
    view.phase = f"backfilling {args.days} days of history"
    events = await asyncio.to_thread(history, args.customers, args.days)

    def sent(count: int) -> None:
        view.produced += count

    await send_history(producer, events, sent)
    view.phase = "live traffic"
    await play_live(producer, args.rate, sent)


async def _read_changes(consumer: AIOKafkaConsumer, view: DemoView) -> None:
    while True:
        batch = await consumer.getmany(timeout_ms=200)
        for partition, records in batch.items():
            for record in records:
                if partition.topic == "segmenter-dlq":
                    view.dead_letters += 1
                elif partition.topic == SINK_DLQ_TOPIC:
                    view.on_sink_dead_letter(record.value)
                else:
                    view.on_change(record.value)


async def _read_sink_counts(view: DemoView, sinks: DemoSinks, definitions: Definitions) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            await asyncio.sleep(1.0)
            try:
                view.sink_counts = await sinks.counts(session, definitions)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass  # not serving yet


async def _show(args: argparse.Namespace, view: DemoView, worker: WorkerProcess, sinks: DemoSinks) -> None:
    deadline = time.monotonic() + args.duration if args.duration else None
    plain = args.plain or not sys.stdout.isatty()

    def finished() -> bool:
        if worker.exited():
            raise RuntimeError(f"the worker stopped unexpectedly; see {worker.log}")
        if sinks.exited():
            raise RuntimeError(f"the sinks stopped unexpectedly; see {sinks.log}")
        return deadline is not None and time.monotonic() >= deadline

    if plain:
        while not finished():
            await asyncio.sleep(3.0)
            view.tick()
            print(view.summary_line(), flush=True)
        return
    from rich.live import Live

    with Live(view.render(), refresh_per_second=4, screen=False) as live:
        while not finished():
            await asyncio.sleep(0.25)
            live.update(view.render())
