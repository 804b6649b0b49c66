"""Phase 1: one worker's throughput over the pre-produced events."""
from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.worker.common import Bench, INPUTS, PARTITIONS, SEGMENTS, cpu_seconds, log
from bench.worker.reading import change_summary, last_writes


async def worker_rate(bench: Bench, run: int, processes: int = 1, store: str = "memory://") -> dict[str, float]:
    """Timed from the first "ready" line: with several processes, the others join (and
    the partitions are split between them) on the clock. `store`: the table's store
    (memory, as the tests use, or rocksdb, the worker's default)."""
    kind = store.split(":", 1)[0]
    settings = bench.settings(f"bench-rate-{run}-p{processes}-{kind}", SEGMENTS, INPUTS)
    settings.processes = processes
    settings.store = store
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
    log(f"worker run {run} ({processes} process{'es' if processes > 1 else ''}, {kind} store): {result['rate']:,.0f} events/s to the last state write ({processing:.1f}s), "
        f"{result['rate_committed']:,.0f}/s to committed offsets; CPU worker {cpu_worker:.1f}s (it waited "
        f"{waited:.1f}s for a core), broker {cpu_broker:.1f}s; {result['changes']:,} changes ({summary['timer']:,} "
        f"by timers, {summary['duplicates']:,} re-sent duplicates), {summary['members']:,} memberships at the end, "
        f"{result['forwarded']:,} forwarded, {result['dead_letters']:,} dead letters")
    return result
