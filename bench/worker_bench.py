"""The streaming worker on the embedded broker: throughput, latency, timer lateness, and baselines.

    python -m bench.worker_bench [--events 200000] [--quick]

Everything runs in one go on ONE embedded broker (stream.broker.EmbeddedBroker), each
phase on its own topics (created first, 4 partitions) and its own consumer group:

 1. throughput (3 runs): about N generated shop events (examples.traffic, ~16 per
    customer over 400 days ending now, keyed by customer, split over
    orders/behavior/customers as the demo does) are produced up front with aiokafka's
    batch API; then a `segmenter worker` process (memory store, example definitions)
    is timed from its "segmenter worker ready" line until
      * its last state write: the greatest producer timestamp of anything it wrote
        (table changelog, changes, repartition, dead letters), i.e. processing done;
      * its committed offsets reach the end of the inputs and of its repartition
        topic (Faust commits every 10,000 events or 2.8 s, so this comes later);
    with the worker's and the broker's CPU seconds (/proc/<pid>/stat) and the time the
    worker waited for a core (/proc/<pid>/task/*/schedstat: the machine is shared);
 2. the bare loop over the same events: AIOKafkaConsumer getmany + orjson.loads;
 3. event-to-change latency at 2,000 events/s (3 runs of 30 s + a 2 s warm-up that is
    left out): definitions in which every event enters a segment
    (`count(page_view) >= 1`, a new customer per event), events stamped with the wall
    clock when sent, changes read with a 10 ms fetch wait; latency = receive time - `at`;
 4. timer lateness: `since(last(ping)) < 60s`, one ping per customer for 100,000
    customers, stamped now - uniform(0, 60 s), so every exit falls due within the next
    minute; lateness = receive time of the `exit` (cause "timer") - its `at`. Reported
    for all exits, and for those due once the pings were all taken in and the input
    had been idle for the worker's watermark threshold (until then a partition's flips
    follow its event time, by design, so those exits wait for the intake to end);
 4b. timer lateness while busy: 100,000 pings sent live at 2,500/s, each stamped with
    its send time, with `since(last(ping)) < 30s`: exits fall due while later pings are
    still arriving; lateness of those exits (the worker is busy) and of all;
 5. a naive Faust agent (bench/naive_faust.py): its rate over the first 100,000 of the
    same pre-produced events and its latency at 500 events/s, with the adjustments this
    project uses on this broker and (not with --quick) with Faust's own settings.

The end offsets of the pre-produced inputs are counted from what was produced (the
embedded broker's ListOffsets(latest) under-reports them) and checked against the
high watermarks the bare loop sees. `--quick` runs smaller sizes, one run each
(~2 minutes). Processes started here (broker, workers, Faust apps) are stopped on the
way out, errors included; their logs stay in the printed work directory. Per-slice
latencies and per-run details go to stderr; the table of medians to stdout.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from examples.traffic import TrafficConfig, generate, key_of
from stream.broker import EmbeddedBroker
from stream.demo.process import settings_env
from stream.demo.traffic import topic_for
from stream.kafka import timers as worker_timers
from stream.kafka.topics import ensure_topics, worker_topics
from stream.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SEGMENTS = REPO / "examples" / "segments"
INPUTS = ["orders", "behavior", "customers"]
PARTITIONS = 4
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
IDLE_MS = getattr(worker_timers, "IDLE_MS", 1000)  # a partition idle this long lets its flips follow the wall clock

LATENCY_DEFINITIONS = """\
segments:
  viewed:
    description: Viewed a page at least once (each benchmark event is a new customer, so each enters)
    when: count(page_view) >= 1
"""

TIMER_DEFINITIONS = """\
segments:
  recent:
    description: Pinged within the last {window}
    when: since(last(ping)) < {window}
"""


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def wall_ms() -> int:
    return int(time.time() * 1000)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def cpu_wait_seconds(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a core (/proc/<pid>/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def at_ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


# --------------------------------------------------------------------------- processes

class Child:
    """A subprocess in its own process group; its output lines are kept with their arrival time."""

    running: list[Child] = []

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.lines: list[tuple[float, str]] = []
        self.process = subprocess.Popen(
            argv, cwd=REPO, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True,
        )
        Child.running.append(self)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.log_path.open("a") as out:
            for line in self.process.stdout:
                self.lines.append((time.time(), line))
                out.write(line)
                out.flush()

    def tail(self, n: int = 25) -> str:
        return "".join(line for _, line in self.lines[-n:])

    async def wait_line(self, marker: str, timeout: float) -> tuple[float, str]:
        """(arrival wall time, line) of the first output line containing `marker`."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            lines = self.lines
            for stamp, line in lines[seen:]:
                if marker in line:
                    return stamp, line
            seen = len(lines)
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no {marker!r} after {timeout:.0f}s; see {self.log_path}\n"
                                   f"{self.tail()}")
            await asyncio.sleep(0.02)

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}\n"
                               f"{self.tail()}")

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def waited(self) -> float:
        return cpu_wait_seconds(self.process.pid)

    def stop(self, timeout: float = 15.0) -> None:
        if self in Child.running:
            Child.running.remove(self)
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass

    @classmethod
    def stop_all(cls) -> None:
        for child in list(cls.running):
            child.stop()


class Usage:
    """CPU used by a child and the broker, and the child's wait for a core, over a `with` block."""

    def __init__(self, child: Child, broker: EmbeddedBroker) -> None:
        self.child = child
        self.broker_pid = broker.process.pid if broker.process else 0

    def __enter__(self) -> Usage:
        self.began = time.monotonic()
        self.cpu, self.waited, self.broker = self.child.cpu(), self.child.waited(), cpu_seconds(self.broker_pid)
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.monotonic() - self.began
        self.cpu = self.child.cpu() - self.cpu
        self.waited = self.child.waited() - self.waited
        self.broker = cpu_seconds(self.broker_pid) - self.broker

    def text(self, name: str) -> str:
        wall = max(self.wall, 1e-9)
        return (f"{name} CPU {self.cpu / wall:.0%} of a core (waited for one {self.waited / wall:.0%} of the time), "
                f"broker {self.broker / wall:.0%}")


@dataclass
class Bench:
    broker: EmbeddedBroker
    workdir: Path
    ends: dict[TopicPartition, int] = field(default_factory=dict)  # pre-produced inputs: true end offsets

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def total(self) -> int:
        return sum(self.ends.values())

    def settings(self, name: str, segments: Path, topics: list[str]) -> Settings:
        return Settings(brokers=[self.broker.url], segments=segments, topics=topics, app_id=name,
                        changes_topic=f"{name}-changes", repartition_topic=f"{name}-repartition",
                        dlq_topic=f"{name}-dlq", partitions=PARTITIONS, store="memory://",
                        data_dir=self.workdir / name, web_port=0)

    async def start_worker(self, settings: Settings) -> Child:
        await ensure_topics(settings, worker_topics(settings))
        env = {**settings_env(settings), "SEGMENTER_APP_ID": settings.app_id,
               "SEGMENTER_TOPICS": ",".join(settings.topics), "SEGMENTER_CHANGES_TOPIC": settings.changes_topic,
               "SEGMENTER_REPARTITION_TOPIC": settings.repartition_topic, "SEGMENTER_DLQ_TOPIC": settings.dlq_topic}
        return Child(settings.app_id, [sys.executable, "-m", "stream.cli", "worker"], env,
                     self.workdir / f"{settings.app_id}.log")

    async def create(self, *names: str) -> None:
        await ensure_topics(Settings(brokers=[self.broker.url], partitions=PARTITIONS), list(names))


# --------------------------------------------------------------------------- producing

async def produce_batched(bootstrap: str, messages: list[tuple[str, bytes | None, bytes]]) -> dict[TopicPartition, int]:
    """Produce with aiokafka's batch API, one sender per partition; returns messages per partition."""
    partitions = list(range(PARTITIONS))
    partitioner = DefaultPartitioner()
    by_tp: dict[TopicPartition, list[tuple[bytes | None, bytes]]] = defaultdict(list)
    for topic, key, value in messages:
        by_tp[TopicPartition(topic, partitioner(key, partitions, partitions))].append((key, value))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024,
                                max_request_size=4 * 1024 * 1024)
    await producer.start()

    async def send(tp: TopicPartition, items: list[tuple[bytes | None, bytes]]) -> None:
        futures = []
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(batch, tp.topic, partition=tp.partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        if batch.record_count():
            futures.append(await producer.send_batch(batch, tp.topic, partition=tp.partition))
        await asyncio.gather(*futures)

    try:
        await asyncio.gather(*(send(tp, items) for tp, items in by_tp.items()))
    finally:
        await producer.stop()
    return {tp: len(items) for tp, items in by_tp.items()}


async def pre_produce(bench: Bench, n: int) -> int:
    """N generated shop events, ending now; returns the number of customers simulated."""
    await bench.create(*INPUTS)
    customers = max(200, n // 16)  # ~16 events per customer over 400 days: the stream ends about now
    config = TrafficConfig(customers=customers, days=400, start=datetime.now(timezone.utc) - timedelta(days=400))
    started = time.perf_counter()
    events = list(itertools.islice(generate(config), n))
    messages = [(topic_for(raw), key_of(raw), raw) for raw in events]
    generated = time.perf_counter() - started
    started = time.perf_counter()
    counts = await produce_batched(bench.bootstrap, messages)
    produced = time.perf_counter() - started
    bench.ends = {TopicPartition(topic, p): counts.get(TopicPartition(topic, p), 0)
                  for topic in INPUTS for p in range(PARTITIONS)}
    log(f"generated {len(events):,} events of {customers:,} customers in {generated:.1f}s, "
        f"produced in {produced:.1f}s ({len(events) / produced:,.0f}/s)")
    return customers


# --------------------------------------------------------------------------- reading

async def bare_loop(bench: Bench) -> float:
    """Seconds for a bare consumer (getmany + orjson.loads) to read all pre-produced events."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bench.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = list(bench.ends)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        want, seen, usable = bench.total, 0, 0
        started = time.perf_counter()
        while seen < want:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    seen += 1
                    try:
                        usable += type(orjson.loads(record.value)) is dict
                    except orjson.JSONDecodeError:
                        pass
            if time.perf_counter() - started > 300:
                raise TimeoutError(f"bare loop read {seen:,} of {want:,} events")
        seconds = time.perf_counter() - started
        for tp, end in bench.ends.items():
            high = consumer.highwater(tp)
            if high is not None and high != end:
                log(f"warning: {tp.topic}[{tp.partition}] high watermark {high} != {end} produced")
        return seconds
    finally:
        await consumer.stop()


async def change_summary(bootstrap: str, topic: str) -> dict[str, int]:
    """Read a changes topic whole: changes by cause, re-sent duplicates, memberships at the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    seen: set[tuple[str, str, int]] = set()
    timer = duplicates = 0
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        pending, deadline = set(tps), time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    change = orjson.loads(record.value)
                    ident = (change["customer_id"], change["segment"], change["seq"])
                    if ident in seen:
                        duplicates += 1
                        continue
                    seen.add(ident)
                    timer += change["cause"] == "timer"
                    pair = ident[:2]
                    if pair not in latest or latest[pair][0] < ident[2]:
                        latest[pair] = (ident[2], change["change"])
            for tp in list(pending):
                high = consumer.highwater(tp)
                if high is not None and await consumer.position(tp) >= high:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    members = sum(1 for _, kind in latest.values() if kind == "enter")
    return {"distinct": len(seen), "timer": timer, "duplicates": duplicates, "members": members}


async def last_writes(bootstrap: str, topics: list[str]) -> tuple[int, dict[str, int]]:
    """(greatest record timestamp in ms, messages per topic) over `topics`, reading only their tails."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)  # at worst the start of each partition's last batch
        best, pending = 0, set(tps)
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                best = max([best, *(r.timestamp for r in records)])
            for tp in list(pending):
                high = consumer.highwater(tp)
                if high is not None and await consumer.position(tp) >= high:
                    pending.discard(tp)
        counts = {t: sum(consumer.highwater(TopicPartition(t, p)) or 0 for p in range(PARTITIONS)) for t in topics}
        return best, counts
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- 1. worker throughput

async def worker_rate(bench: Bench, run: int) -> dict[str, float]:
    settings = bench.settings(f"bench-rate-{run}", SEGMENTS, INPUTS)
    worker = await bench.start_worker(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=bench.bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=bench.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10,
                             auto_offset_reset="earliest")
    await admin.start()
    await probe.start()
    try:
        repartition = [TopicPartition(settings.repartition_topic, p) for p in range(PARTITIONS)]
        probe.assign(repartition)
        watched = [*bench.ends, *repartition]
        ready_at, _ = await worker.wait_line("segmenter worker ready", 120)
        cpu_worker, cpu_broker = worker.cpu(), cpu_seconds(bench.broker.process.pid)  # type: ignore[union-attr]
        waited = worker.waited()
        deadline = time.monotonic() + max(180.0, bench.total / 300)
        while True:
            await probe.getmany(timeout_ms=20)  # keeps the repartition high watermarks current
            # explicit partitions: asking the embedded broker for all of a group's offsets breaks the connection
            offsets = await admin.list_consumer_group_offsets(settings.app_id, partitions=watched)
            committed = {tp: meta.offset for tp, meta in offsets.items()}
            if all(committed.get(tp, 0) >= end for tp, end in bench.ends.items()):
                highs = [probe.highwater(tp) for tp in repartition]
                if all(high is not None and committed.get(tp, 0) >= high for tp, high in zip(repartition, highs)):
                    break
            worker.check()
            if time.monotonic() > deadline:
                done = sum(min(committed.get(tp, 0), end) for tp, end in bench.ends.items())
                raise TimeoutError(f"worker committed {done:,} of {bench.total:,} events; see {worker.log_path}")
            await asyncio.sleep(0.05)
        committed_at = time.time()
        cpu_worker = worker.cpu() - cpu_worker
        waited = worker.waited() - waited
        cpu_broker = cpu_seconds(bench.broker.process.pid) - cpu_broker  # type: ignore[union-attr]
    finally:
        await probe.stop()
        await admin.close()
        worker.stop()
    written = [f"{settings.app_id}-customers-changelog", settings.changes_topic, settings.repartition_topic,
               settings.dlq_topic]
    last_ms, counts = await last_writes(bench.bootstrap, written)
    summary = await change_summary(bench.bootstrap, settings.changes_topic)
    processing = last_ms / 1000 - ready_at
    result = {
        "rate": bench.total / processing, "rate_committed": bench.total / (committed_at - ready_at),
        "seconds": processing, "cpu_worker": cpu_worker, "cpu_broker": cpu_broker, "waited": waited,
        "changes": counts[settings.changes_topic], "forwarded": counts[settings.repartition_topic],
        "dead_letters": counts[settings.dlq_topic], **summary,
    }
    log(f"worker run {run}: {result['rate']:,.0f} events/s to the last state write ({processing:.1f}s), "
        f"{result['rate_committed']:,.0f}/s to committed offsets; CPU worker {cpu_worker:.1f}s (it waited "
        f"{waited:.1f}s for a core), broker {cpu_broker:.1f}s; {result['changes']:,} changes ({summary['timer']:,} "
        f"by timers, {summary['duplicates']:,} re-sent duplicates), {summary['members']:,} memberships at the end, "
        f"{result['forwarded']:,} forwarded, {result['dead_letters']:,} dead letters")
    return result


# --------------------------------------------------------------------------- paced latency

@dataclass
class Latency:
    sent: int
    received: int
    values: list[float]  # ms, warm-up left out
    send_lag_ms: float  # how far the sender fell behind its schedule, at worst
    late_tail_p99: float  # p99 of the last quarter of the run (a growing backlog shows here)
    early: list[float] = field(default_factory=list)  # ms, the first 5 s after the warm-up (topics still small)
    usage: str = ""  # CPU use of the process under test during the run

    def summary(self) -> str:
        return (f"{self.usage}; " if self.usage else "") + (
                f"p50 {percentile(self.values, 50):.0f} ms, p99 {percentile(self.values, 99):.0f} ms, "
                f"max {max(self.values, default=float('nan')):.0f} ms; {self.received:,}/{self.sent:,} arrived; "
                f"last-quarter p99 {self.late_tail_p99:.0f} ms; sender behind by up to {self.send_lag_ms:.0f} ms")


async def send_paced(producer: AIOKafkaProducer, topic: str, total: int, rate: float,
                     make: Callable[[int, int], tuple[bytes, bytes]]) -> float:
    """Send `make(i, now_ms)` for i < total at `rate`/s and wait for the broker to take
    them all; returns how far (seconds) the sender fell behind its schedule at worst."""
    began, lag, futures = time.monotonic(), 0.0, []
    for i in range(total):
        delay = began + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag = max(lag, -delay)
        key, value = make(i, wall_ms())
        futures.append(await producer.send(topic, value=value, key=key))
    await asyncio.gather(*futures)
    return lag


async def paced_latency(bootstrap: str, topic: str, out_topic: str, rate: float, seconds: float, warmup: float,
                        make: Callable[[int, int], tuple[bytes, bytes]],
                        stamp_of: Callable[[bytes], int | None]) -> Latency:
    """Send `make(i, now_ms)` at `rate`/s for warmup + seconds; `stamp_of(output)` gives the send time
    of the event an output answers (None: not one of ours)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    arrivals: list[tuple[int, int]] = []  # (received ms, sent ms)

    async def read() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now = wall_ms()
            for records in batch.values():
                for record in records:
                    sent = stamp_of(record.value)
                    if sent is not None and sent >= began_ms:
                        arrivals.append((now, sent))

    reader: asyncio.Task[None] | None = None
    try:
        tps = [TopicPartition(out_topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        total = int(rate * (warmup + seconds))
        began_ms = wall_ms()
        reader = asyncio.create_task(read())
        lag = await send_paced(producer, topic, total, rate, make)
        await settle(lambda: len(arrivals), total, idle=10.0, cap=180.0)
    finally:
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await producer.stop()
        await consumer.stop()
    cut = began_ms + warmup * 1000
    kept = [(received, sent) for received, sent in arrivals if sent >= cut]
    tail_cut = began_ms + (warmup + seconds * 0.75) * 1000
    log("  by send time: " + slices([(s - began_ms, float(r - s)) for r, s in arrivals], 5000))
    return Latency(total, len(arrivals), [float(r - s) for r, s in kept], lag * 1000,
                   percentile([float(r - s) for r, s in kept if s >= tail_cut], 99),
                   [float(r - s) for r, s in kept if s < cut + 5000])


async def settle(count: Callable[[], int], want: int, idle: float, cap: float,
                 check: Callable[[], None] | None = None) -> None:
    """Wait until count() reaches want, or stops growing for `idle` seconds, or `cap` seconds pass."""
    deadline = time.monotonic() + cap
    last, last_change = count(), time.monotonic()
    while count() < want and time.monotonic() < deadline:
        if check is not None:
            check()
        await asyncio.sleep(0.2)
        if count() != last:
            last, last_change = count(), time.monotonic()
        elif time.monotonic() - last_change > idle:
            break


def slices(points: list[tuple[float, float]], width_ms: float) -> str:
    """'0-5s n=.. p50/p99 ..' per slice of the first coordinate (ms), for the log."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for where, value in points:
        buckets[int(where // width_ms)].append(value)
    return "; ".join(f"{k * width_ms / 1000:.0f}-{(k + 1) * width_ms / 1000:.0f}s n={len(v)} "
                     f"p50 {percentile(v, 50):.0f} p99 {percentile(v, 99):.0f} ms"
                     for k, v in sorted(buckets.items()))


# --------------------------------------------------------------------------- 3. worker latency

async def bare_pipe(bench: Bench, rate: float, seconds: float) -> Latency:
    """The broker's own share: events sent and read back from one topic, nothing in between."""
    topic = "bench-pipe"
    await bench.create(topic)

    def make(i: int, now: int) -> tuple[bytes, bytes]:
        return f"p-{i}".encode(), orjson.dumps({"i": i, "timestamp": now})

    class _Broker:  # Usage wants a child; measure the broker alone
        def __init__(self, pid: int) -> None:
            self.pid = pid

        def cpu(self) -> float:
            return cpu_seconds(self.pid)

        def waited(self) -> float:
            return cpu_wait_seconds(self.pid)

    assert bench.broker.process is not None
    with Usage(_Broker(bench.broker.process.pid), bench.broker) as usage:  # type: ignore[arg-type]
        result = await paced_latency(bench.bootstrap, topic, topic, rate, seconds, 2.0, make,
                                     lambda raw: int(orjson.loads(raw)["timestamp"]))
    result.usage = usage.text("broker").rsplit(",", 1)[0]
    log(f"bare producer -> consumer at {rate:,.0f}/s: {result.summary()}")
    return result


async def worker_latency(bench: Bench, run: int, rate: float, seconds: float) -> Latency:
    name = f"bench-latency-{run}"
    segments = bench.workdir / name / "segments"
    segments.mkdir(parents=True, exist_ok=True)
    (segments / "latency.yaml").write_text(LATENCY_DEFINITIONS)
    settings = bench.settings(name, segments, [f"{name}-events"])
    worker = await bench.start_worker(settings)
    prefix = f"lat{run}-".encode()

    def make(i: int, now: int) -> tuple[bytes, bytes]:
        customer = f"lc{run}-{i}"
        return customer.encode(), orjson.dumps({"event_id": f"lat{run}-{i}", "type": "page_view",
                                                "customer_id": customer, "timestamp": now})

    def stamp_of(raw: bytes) -> int | None:
        change = orjson.loads(raw)
        return at_ms(change["at"]) if change.get("cause", "").encode().startswith(prefix) else None

    try:
        await worker.wait_line("segmenter worker ready", 120)
        with Usage(worker, bench.broker) as usage:
            result = await paced_latency(bench.bootstrap, settings.topics[0], settings.changes_topic, rate, seconds,
                                         2.0, make, stamp_of)
        result.usage = usage.text("worker")
        worker.check()
    finally:
        worker.stop()
    log(f"worker latency run {run} at {rate:,.0f}/s: {result.summary()}")
    return result


# --------------------------------------------------------------------------- 4. timer lateness

@dataclass
class Timers:
    customers: int
    enters: int
    exits: int
    lateness: list[float]  # ms, every exit
    steady: list[float]  # ms, exits due once the worker had taken in every ping and its input had gone idle
    ingest_seconds: float  # from the first ping sent to the last enter received


async def start_timer_worker(bench: Bench, name: str, window_s: int) -> tuple[Settings, Child]:
    """A worker with `since(last(ping)) < window` as its only segment."""
    segments = bench.workdir / name / "segments"
    segments.mkdir(parents=True, exist_ok=True)
    (segments / "timers.yaml").write_text(TIMER_DEFINITIONS.format(window=f"{window_s}s"))
    settings = bench.settings(name, segments, [f"{name}-events"])
    return settings, await bench.start_worker(settings)


async def collect_timer_changes(consumer: AIOKafkaConsumer, enters: dict[str, int],
                                exits: dict[str, tuple[int, int]]) -> None:
    """Receive time of each customer's enter, and of its timer exit with the exit's `at`."""
    while True:
        batch = await consumer.getmany(timeout_ms=100)
        now = wall_ms()
        for records in batch.values():
            for record in records:
                change = orjson.loads(record.value)
                if change["cause"] == "timer":
                    exits.setdefault(change["customer_id"], (now, at_ms(change["at"])))
                else:
                    enters.setdefault(change["customer_id"], now)


async def timer_lateness(bench: Bench, customers: int, window_s: int) -> Timers:
    settings, worker = await start_timer_worker(bench, "bench-timers", window_s)
    consumer = AIOKafkaConsumer(bootstrap_servers=bench.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    enters: dict[str, int] = {}  # customer -> received ms
    exits: dict[str, tuple[int, int]] = {}  # customer -> (received ms, at ms)
    reader: asyncio.Task[None] | None = None

    try:
        await worker.wait_line("segmenter worker ready", 120)
        await consumer.start()
        tps = [TopicPartition(settings.changes_topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        reader = asyncio.create_task(collect_timer_changes(consumer, enters, exits))
        rng = random.Random(5)
        started = wall_ms()
        messages: list[tuple[str, bytes | None, bytes]] = []
        for i in range(customers):
            customer = f"t-{i}"
            stamp = wall_ms() - rng.randint(0, window_s * 1000 - 1)
            messages.append((settings.topics[0], customer.encode(), orjson.dumps(
                {"event_id": f"ping-{i}", "type": "ping", "customer_id": customer, "timestamp": stamp})))
        await produce_batched(bench.bootstrap, messages)
        log(f"timers: {customers:,} pings produced in {(wall_ms() - started) / 1000:.1f}s")
        await asyncio.sleep(window_s)  # every exit is due by now
        await settle(lambda: len(exits) + len(enters), 2 * customers, idle=15.0, cap=600.0, check=worker.check)
    finally:
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await consumer.stop()
        worker.stop()
    caught_up = max(enters.values(), default=started)
    lateness = [float(received - at) for received, at in exits.values()]
    steady = [float(received - at) for received, at in exits.values() if at > caught_up + IDLE_MS]
    result = Timers(customers, len(enters), len(exits), lateness, steady, (caught_up - started) / 1000)
    log("  by due time: " + slices([(at - started, float(received - at)) for received, at in exits.values()],
                                   window_s * 1000 / 6))
    log(f"timers: {result.exits:,}/{customers:,} exits ({result.enters:,} enters, all taken in after "
        f"{result.ingest_seconds:.1f}s = {customers / max(result.ingest_seconds, 1e-3):,.0f} pings/s); "
        f"lateness p50 {percentile(lateness, 50):.0f} ms, p99 "
        f"{percentile(lateness, 99):.0f} ms, max {max(lateness, default=float('nan')):.0f} ms; due over "
        f"{IDLE_MS} ms after intake ({len(steady):,}): p50 {percentile(steady, 50):.0f} ms, "
        f"p99 {percentile(steady, 99):.0f} ms, "
        f"max {max(steady, default=float('nan')):.0f} ms")
    return result


async def timer_lateness_busy(bench: Bench, customers: int, window_s: int, rate: float) -> Timers:
    """Exits that fall due while the worker is busy: pings sent live at `rate`/s, each
    stamped with its send time, so every membership expires `window_s` after its ping
    while later pings are still arriving. `steady` holds the exits due while pings
    were being sent (the busy part); `lateness` all of them."""
    settings, worker = await start_timer_worker(bench, "bench-timers-busy", window_s)
    consumer = AIOKafkaConsumer(bootstrap_servers=bench.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    producer = AIOKafkaProducer(bootstrap_servers=bench.bootstrap, linger_ms=5)
    enters: dict[str, int] = {}
    exits: dict[str, tuple[int, int]] = {}
    reader: asyncio.Task[None] | None = None

    try:
        await worker.wait_line("segmenter worker ready", 120)
        await consumer.start()
        await producer.start()
        tps = [TopicPartition(settings.changes_topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        reader = asyncio.create_task(collect_timer_changes(consumer, enters, exits))
        started = wall_ms()

        def ping(i: int, now: int) -> tuple[bytes, bytes]:
            customer = f"b-{i}"
            return customer.encode(), orjson.dumps(
                {"event_id": f"ping-{i}", "type": "ping", "customer_id": customer, "timestamp": now})

        await send_paced(producer, settings.topics[0], customers, rate, ping)
        last_sent = wall_ms()
        await asyncio.sleep(window_s)
        await settle(lambda: len(exits) + len(enters), 2 * customers, idle=15.0, cap=600.0, check=worker.check)
    finally:
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await producer.stop()
        await consumer.stop()
        worker.stop()
    lateness = [float(received - at) for received, at in exits.values()]
    busy = [float(received - at) for received, at in exits.values() if at <= last_sent]
    log("  by due time: " + slices([(at - started, float(received - at)) for received, at in exits.values()], 10_000))
    log(f"timers while busy: {len(exits):,}/{customers:,} exits; due while pings still arrived ({len(busy):,}): "
        f"p50 {percentile(busy, 50):.0f} ms, p99 {percentile(busy, 99):.0f} ms; all: p99 {percentile(lateness, 99):.0f} ms")
    return Timers(customers, len(enters), len(exits), lateness, busy, (last_sent - started) / 1000)


# --------------------------------------------------------------------------- 5. naive Faust

def naive_faust(bench: Bench, name: str, topics: list[str], output: str, defaults: bool, expect: int = 0) -> Child:
    argv = [sys.executable, "-m", "bench.naive_faust", "--broker", bench.broker.url, "--app-id", name,
            "--topics", ",".join(topics), "--output", output, "--partitions", str(PARTITIONS)]
    if expect:
        argv += ["--expect", str(expect)]
    if defaults:
        argv.append("--defaults")
    return Child(name, argv, {}, bench.workdir / f"{name}.log")


async def faust_rate(bench: Bench, defaults: bool, events: int) -> dict[str, float]:
    name = f"naive-rate-{'defaults' if defaults else 'fixed'}"
    await bench.create(f"{name}-out", f"{name}-spend-changelog")
    expect = min(events, bench.total)
    app = naive_faust(bench, name, INPUTS, f"{name}-out", defaults, expect)
    try:
        started = time.monotonic()
        await app.wait_line("naive faust first event", 180)
        joined = time.monotonic() - started
        cpu = app.cpu()
        _, line = await app.wait_line("naive faust done", 60 + expect / 300)
        cpu = app.cpu() - cpu
    finally:
        app.stop()
    seconds = float(line.split()[-2])
    result = {"rate": expect / seconds, "events": expect, "cpu": cpu, "join": joined}
    log(f"naive Faust ({'defaults' if defaults else 'adjusted'}): {expect:,} events in {seconds:.1f}s = "
        f"{result['rate']:,.0f}/s, CPU {cpu:.1f}s; first event {joined:.1f}s after start")
    return result


async def faust_latency(bench: Bench, defaults: bool, rate: float, seconds: float) -> Latency:
    name = f"naive-latency-{'defaults' if defaults else 'fixed'}"
    source, output = f"{name}-in", f"{name}-out"
    await bench.create(source, output, f"{name}-spend-changelog")
    app = naive_faust(bench, name, [source], output, defaults)

    def order(event_id: str, customer: str, now: int) -> tuple[bytes, bytes]:
        return customer.encode(), orjson.dumps({"event_id": event_id, "type": "order_placed", "customer_id": customer,
                                                "timestamp": now, "properties": {"total": 1500.0}})

    def stamp_of(raw: bytes) -> int | None:
        crossed = orjson.loads(raw)
        return int(crossed["timestamp"]) if str(crossed.get("event_id", "")).startswith("n-") else None

    try:
        await warm_up(bench.bootstrap, source, output, app, lambda k, now: order(f"probe-{k}", f"probe-{k}", now))
        with Usage(app, bench.broker) as usage:
            result = await paced_latency(bench.bootstrap, source, output, rate, seconds, 2.0,
                                         lambda i, now: order(f"n-{i}", f"nc-{i}", now), stamp_of)
        result.usage = usage.text("Faust app")
        app.check()
    finally:
        app.stop()
    log(f"naive Faust ({'defaults' if defaults else 'adjusted'}) latency at {rate:,.0f}/s: {result.summary()}")
    return result


async def warm_up(bootstrap: str, topic: str, output: str, app: Child, make: Callable[[int, int], tuple[bytes, bytes]],
                  timeout: float = 180.0) -> None:
    """Send a probe every 250 ms until the app answers one (it has joined and is processing)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    await producer.start()
    await consumer.start()
    try:
        tps = [TopicPartition(output, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        for k in itertools.count():
            key, value = make(k, wall_ms())
            await producer.send_and_wait(topic, value=value, key=key)
            if await consumer.getmany(timeout_ms=250):
                return
            app.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{app.name} did not answer within {timeout:.0f}s; see {app.log_path}")
    finally:
        await producer.stop()
        await consumer.stop()


# --------------------------------------------------------------------------- main

def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def runs_text(values: list[float], unit: str = "", fmt: str = ",.0f") -> str:
    return ", ".join(f"{v:{fmt}}{unit}" for v in values)


async def run(args: argparse.Namespace, bench: Bench) -> list[str]:
    phase = time.monotonic()
    customers = await pre_produce(bench, args.events)
    rows: list[str] = [f"| events pre-produced | {bench.total:,} ({customers:,} customers; 3 topics x "
                       f"{PARTITIONS} partitions) | |"]

    bare = [await bare_loop(bench) for _ in range(max(3, args.runs))]
    bare_rates = [bench.total / s for s in bare]
    log(f"bare loop: {runs_text(bare_rates, ' events/s')}")

    rates = [await worker_rate(bench, r + 1) for r in range(args.runs)]
    log(f"(throughput phases took {time.monotonic() - phase:.0f}s)")
    phase = time.monotonic()
    w_rate = [r["rate"] for r in rates]
    w_committed = [r["rate_committed"] for r in rates]
    rows += [
        f"| bare aiokafka loop (getmany + orjson.loads) | {median(bare_rates):,.0f} events/s | "
        f"{runs_text(bare_rates)} |",
        f"| worker, example definitions: ready -> last state write | {median(w_rate):,.0f} events/s | "
        f"{runs_text(w_rate)} |",
        f"| worker: ready -> offsets committed (Faust commits every 10,000 events / 2.8 s) | "
        f"{median(w_committed):,.0f} events/s | {runs_text(w_committed)} |",
        f"| worker / bare loop | {median(w_rate) / median(bare_rates):.1%} | |",
        f"| worker CPU, ready -> committed | {median([r['cpu_worker'] for r in rates]):.1f} s "
        f"({median([r['cpu_worker'] for r in rates]) / bench.total * 1e6:.0f} µs/event); broker "
        f"{median([r['cpu_broker'] for r in rates]):.1f} s | "
        f"{runs_text([r['cpu_worker'] for r in rates], ' s', '.1f')} |",
        f"| worker output (same input each run) | {median([r['changes'] for r in rates]):,.0f} changes, "
        f"{median([r['members'] for r in rates]):,.0f} memberships at the end | changes "
        f"{runs_text([r['changes'] for r in rates])} (by timers {runs_text([r['timer'] for r in rates])}); "
        f"memberships {runs_text([r['members'] for r in rates])}; forwarded "
        f"{runs_text([r['forwarded'] for r in rates])}; dead letters {runs_text([r['dead_letters'] for r in rates])} |",
    ]

    pipe = await bare_pipe(bench, args.rate, args.latency_seconds)

    lat = [await worker_latency(bench, r + 1, args.rate, args.latency_seconds) for r in range(args.latency_runs)]
    p50 = [percentile(x.values, 50) for x in lat]
    p99 = [percentile(x.values, 99) for x in lat]
    missing = sum(x.sent - x.received for x in lat)
    e50 = [percentile(x.early, 50) for x in lat]
    e99 = [percentile(x.early, 99) for x in lat]
    rows += [
        f"| worker event -> change latency at {args.rate:,.0f} events/s ({args.latency_seconds:.0f} s) | "
        f"p50 {median(p50):.0f} ms, p99 {median(p99):.0f} ms"
        f"{f', {missing:,} changes missing' if missing else ''} | p50 {runs_text(p50, ' ms')}; "
        f"p99 {runs_text(p99, ' ms')}; first 5 s: p50 {median(e50):.0f} ms, p99 {median(e99):.0f} ms |",
        f"| bare aiokafka producer -> consumer through the broker, same rate and length, no processing | "
        f"p50 {percentile(pipe.values, 50):.0f} ms, p99 {percentile(pipe.values, 99):.0f} ms | first 5 s: p50 "
        f"{percentile(pipe.early, 50):.0f} ms, p99 {percentile(pipe.early, 99):.0f} ms; last quarter p99 "
        f"{pipe.late_tail_p99:.0f} ms |",
    ]
    log(f"(latency phase took {time.monotonic() - phase:.0f}s)")
    phase = time.monotonic()

    timers = await timer_lateness(bench, args.timer_customers, args.timer_window)
    rows += [
        f"| timer lateness, {timers.customers:,} exits due within {args.timer_window} s | p50 "
        f"{percentile(timers.lateness, 50):.0f} ms, p99 {percentile(timers.lateness, 99):.0f} ms, max "
        f"{max(timers.lateness, default=float('nan')):.0f} ms; {timers.exits:,}/{timers.customers:,} arrived | "
        f"all pings taken in (enters received) after {timers.ingest_seconds:.1f} s |",
        f"| timer lateness, exits due {IDLE_MS / 1000:g} s or more after the last ping was taken in | "
        f"p50 {percentile(timers.steady, 50):.0f} ms, "
        f"p99 {percentile(timers.steady, 99):.0f} ms, max {max(timers.steady, default=float('nan')):.0f} ms | "
        f"{len(timers.steady):,} exits |",
    ]
    busy = await timer_lateness_busy(bench, args.timer_customers, args.busy_window, args.busy_rate)
    rows += [
        f"| timer lateness while busy: {busy.customers:,} pings at {args.busy_rate:,.0f}/s, each membership "
        f"expiring {args.busy_window} s after its ping; exits due while pings still arrive | "
        f"p50 {percentile(busy.steady, 50):.0f} ms, p99 {percentile(busy.steady, 99):.0f} ms, max "
        f"{max(busy.steady, default=float('nan')):.0f} ms | {len(busy.steady):,} exits; all {busy.exits:,}/"
        f"{busy.customers:,}: p99 {percentile(busy.lateness, 99):.0f} ms |",
    ]
    log(f"(timer phases took {time.monotonic() - phase:.0f}s)")

    modes = [False, True] if args.faust_defaults else [False]
    for defaults in modes:
        phase = time.monotonic()
        label = "Faust defaults" if defaults else "adjusted"
        fr = await faust_rate(bench, defaults, args.faust_events)
        fl = await faust_latency(bench, defaults, args.faust_rate, args.faust_seconds)
        rows += [
            f"| naive Faust agent ({label}): rate over the first {fr['events']:,.0f} pre-produced events | "
            f"{fr['rate']:,.0f} events/s, CPU {fr['cpu'] / fr['events'] * 1e6:.0f} µs/event | first event "
            f"{fr['join']:.0f} s after start |",
            f"| naive Faust agent ({label}): latency at {args.faust_rate:,.0f} events/s ({args.faust_seconds:.0f} s) | "
            f"p50 {percentile(fl.values, 50):.0f} ms, p99 {percentile(fl.values, 99):.0f} ms | "
            f"{fl.received:,}/{fl.sent:,} arrived |",
        ]
        log(f"(naive Faust, {label}, took {time.monotonic() - phase:.0f}s)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=None, help="pre-produced events (default 200,000; quick 50,000)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one run each, ~2-3 minutes")
    parser.add_argument("--runs", type=int, default=None, help="worker throughput runs (default 3; quick 1)")
    parser.add_argument("--rate", type=float, default=2000.0, help="events/s of the worker latency runs")
    parser.add_argument("--latency-seconds", type=float, default=None, help="measured seconds per latency run (30; 10)")
    parser.add_argument("--latency-runs", type=int, default=None, help="worker latency runs (default 3; quick 1)")
    parser.add_argument("--timer-customers", type=int, default=None, help="default 100,000; quick 20,000")
    parser.add_argument("--timer-window", type=int, default=None, help="seconds within which exits fall (60; 20)")
    parser.add_argument("--faust-events", type=int, default=None, help="events the naive Faust rate is measured over "
                                                                        "(default 100,000; quick 15,000)")
    parser.add_argument("--busy-rate", type=float, default=None, help="pings/s of the busy timer run (2,500; 2,000)")
    parser.add_argument("--busy-window", type=int, default=None, help="seconds from a ping to its exit (30; 5)")
    parser.add_argument("--faust-rate", type=float, default=500.0)
    parser.add_argument("--faust-seconds", type=float, default=None, help="default 20; quick 10")
    parser.add_argument("--faust-defaults", action=argparse.BooleanOptionalAction, default=None,
                        help="also run the naive agent with Faust's own settings (default: yes; quick: no)")
    args = parser.parse_args()
    quick = args.quick
    for name, full, small in [("events", 200_000, 50_000), ("runs", 3, 1), ("latency_seconds", 30.0, 10.0),
                              ("latency_runs", 3, 1), ("timer_customers", 100_000, 20_000),
                              ("timer_window", 60, 20), ("faust_events", 100_000, 15_000),
                              ("faust_seconds", 20.0, 10.0), ("faust_defaults", True, False),
                              ("busy_rate", 2500.0, 2000.0), ("busy_window", 30, 5)]:
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)

    workdir = Path(tempfile.mkdtemp(prefix="segmenter-worker-bench-"))
    broker = EmbeddedBroker(log_path=workdir / "broker.log")
    load_before = os.getloadavg()
    began = time.monotonic()
    log(f"logs in {workdir}; load average {load_before[0]:.2f} on {os.cpu_count()} cores")
    try:
        broker.start()
        rows = asyncio.run(run(args, Bench(broker, workdir)))
    finally:
        Child.stop_all()
        broker.stop()
    load_after = os.getloadavg()
    command = "python -m bench.worker_bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print()
    print(f"`{command.strip()}` ({(time.monotonic() - began) / 60:.1f} min; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after, {os.cpu_count()} cores)")
    print()
    print("| measure | median | runs / detail |")
    print("|---|---|---|")
    for row in rows:
        print(row)
    print()
    print("Naive Faust, adjusted = this project's settings for the embedded broker: consumer fetch wait 10 ms, "
          "end offsets from fetch high watermarks, session/rebalance/heartbeat 6/3/1 s, producer linger 5 ms, "
          "root logger at WARNING. Faust defaults = fetch wait 1,500 ms, session timeout 60 s, "
          "logging as Faust leaves it.")


if __name__ == "__main__":
    main()
