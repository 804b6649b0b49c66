"""The streaming worker on the embedded broker: throughput, latency, timer lateness, and baselines.

    python -m bench.worker_bench [--events 200000] [--quick]

Everything runs in one go on ONE embedded broker (stream.broker.EmbeddedBroker), each
phase on its own topics (created first, 4 partitions) and its own consumer group:

 1. throughput (3 runs): about N generated shop events (examples.traffic, ~16 per
    customer over 400 days ending now, keyed by customer, split over
    orders/behavior/customers as the demo does) are produced up front with aiokafka's
    batch API; then a `segmenter worker` process (memory store, example definitions)
    is timed from its (first) "segmenter worker ready" line until
      * its last state write: the greatest producer timestamp of anything it wrote
        (table changelog, changes, repartition, dead letters), i.e. processing done;
      * its committed offsets reach the end of the inputs and of its repartition
        topic (Faust commits every 10,000 events or 2.8 s, so this comes later);
    with the worker's and the broker's CPU seconds (/proc/<pid>/stat) and the time the
    worker waited for a core (/proc/<pid>/task/*/schedstat: the machine is shared);
    then the same (3 runs) with the rocksdb store (the worker's default: its state
    files in the bench's work directory), and for one worker run with `--processes 2`
    (`--processes`, memory store):
    its processes split the partitions; the clock starts at the first process's ready
    line, so the others' start and the rebalance they cause count against it;
 2. the bare loop over the same events: AIOKafkaConsumer getmany + orjson.loads;
 3. event-to-change latency at 2,000 events/s, for each sender linger (default 20 ms,
    then 5 ms): 3 worker runs of 30 s, with 2 s of warm-up before and 2 s of cool-down
    after that are left out; definitions in which every event enters a segment
    (`count(page_view) >= 1`, a new customer per event), events stamped with the wall
    clock when sent, changes read with a 10 ms fetch wait; latency = receive time - `at`.
    Beside them, with the same sender and reader, the broker's own share: a bare
    producer -> consumer pipe (one hop) and a bare relay (bench/worker/relay.py: the
    worker's two hops, one record batch per partition per fetch, nothing evaluated);
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
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from stream.broker import EmbeddedBroker
from bench.worker.baseline import faust_latency, faust_rate
from bench.worker.common import Bench, Child, IDLE_MS, PARTITIONS, log, percentile
from bench.worker.latency import Latency, bare_pipe, bare_relay, worker_latency
from bench.worker.producing import pre_produce
from bench.worker.reading import bare_loop
from bench.worker.throughput import worker_rate
from bench.worker.timers import timer_lateness, timer_lateness_busy


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
    rocks = [await worker_rate(bench, r + 1, store="rocksdb://") for r in range(args.runs)]
    r_rate = [r["rate"] for r in rocks]
    rows.append(
        f"| worker with the rocksdb store (the worker's default; the rows above use the memory store) | "
        f"{median(r_rate):,.0f} events/s (CPU {median([r['cpu_worker'] for r in rocks]) / bench.total * 1e6:.0f} "
        f"µs/event) | {runs_text(r_rate)}; to committed offsets {runs_text([r['rate_committed'] for r in rocks])} |")
    for processes in args.processes:
        multi = [await worker_rate(bench, r + 1, processes) for r in range(args.runs)]
        m_rate = [r["rate"] for r in multi]
        rows.append(
            f"| one worker run as {processes} processes (`--processes {processes}`), first ready -> last state write | "
            f"{median(m_rate):,.0f} events/s (CPU {median([r['cpu_worker'] for r in multi]) / bench.total * 1e6:.0f} "
            f"µs/event, all processes) | {runs_text(m_rate)}; to committed offsets "
            f"{runs_text([r['rate_committed'] for r in multi])} |")
    log(f"(throughput phases, with --processes, took {time.monotonic() - phase:.0f}s)")
    phase = time.monotonic()

    for linger in args.sender_linger_ms:
        rows += await latency_rows(bench, args, linger)
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


async def latency_rows(bench: Bench, args: argparse.Namespace, linger: int) -> list[str]:
    """Worker latency runs with a sender lingering `linger` ms, beside the broker's own share
    (bare pipe: one hop; bare relay: the worker's two hops) with the same sender and reader."""
    pipe = await bare_pipe(bench, args.rate, args.latency_seconds, linger)
    relay = await bare_relay(bench, args.rate, args.latency_seconds, linger)
    lat = [await worker_latency(bench, r + 1, args.rate, args.latency_seconds, linger)
           for r in range(args.latency_runs)]
    p50 = [percentile(x.values, 50) for x in lat]
    p99 = [percentile(x.values, 99) for x in lat]
    missing = sum(x.sent - x.received for x in lat)
    e50 = [percentile(x.early, 50) for x in lat]
    e99 = [percentile(x.early, 99) for x in lat]
    where = f"at {args.rate:,.0f} events/s ({args.latency_seconds:.0f} s), sender linger {linger} ms"

    def one(x: Latency) -> str:
        return (f"p50 {percentile(x.values, 50):.0f} ms, p99 {percentile(x.values, 99):.0f} ms | first 5 s: p50 "
                f"{percentile(x.early, 50):.0f} ms, p99 {percentile(x.early, 99):.0f} ms; last quarter p99 "
                f"{x.late_tail_p99:.0f} ms |")

    return [
        f"| worker event -> change latency {where} | p50 {median(p50):.0f} ms, p99 {median(p99):.0f} ms"
        f"{f', {missing:,} changes missing' if missing else ''} | p50 {runs_text(p50, ' ms')}; "
        f"p99 {runs_text(p99, ' ms')}; first 5 s: p50 {median(e50):.0f} ms, p99 {median(e99):.0f} ms |",
        f"| bare relay (the worker's two hops, nothing evaluated) {where} | " + one(relay),
        f"| bare producer -> consumer (one hop) {where} | " + one(pipe),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=None, help="pre-produced events (default 200,000; quick 50,000)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one run each, ~2-3 minutes")
    parser.add_argument("--runs", type=int, default=None, help="worker throughput runs (default 3; quick 1)")
    parser.add_argument("--processes", type=lambda text: [int(v) for v in text.split(",") if v], default=[2],
                        help="also time one worker run with each of these --processes (default 2; '' for none)")
    parser.add_argument("--rate", type=float, default=2000.0, help="events/s of the worker latency runs")
    parser.add_argument("--latency-seconds", type=float, default=None, help="measured seconds per latency run (30; 10)")
    parser.add_argument("--latency-runs", type=int, default=None,
                        help="worker latency runs per sender linger (default 3; quick 1)")
    parser.add_argument("--sender-linger-ms", type=lambda text: [int(v) for v in text.split(",")], default=[20, 5],
                        help="producer linger(s) of the latency phase's event sender, comma-separated (default 20,5)")
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
