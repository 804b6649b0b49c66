"""The baseline for bench.worker_bench: a naive Faust agent, written the way Faust's docs suggest.

    python -m bench.naive_faust --broker kafka://127.0.0.1:9092 --app-id naive \\
        --topics orders,behavior,customers --output naive-crossed [--expect N] [--defaults]

One agent over the input topics, `faust.Record` values, one table write per event (a
running sum of order totals and an event count per customer) and a threshold check:
when a customer's spend crosses `--threshold`, a `Crossed` record is sent to the output
topic carrying the event's id and timestamp (the benchmark measures latency from it).

Two ways to run it:
  * default: with the adjustments this project found necessary on the embedded broker
    (the same as the segmenter worker's, see stream/kafka/faustfixes.py): consumer fetch
    wait 10 ms (Faust hard-codes 1,500 ms), true end offsets for table recovery, group
    timeouts session 6 s / rebalance 3 s / heartbeat 1 s, producer linger 5 ms, root
    logger back at WARNING;
  * `--defaults`: Faust's and aiokafka's own settings, as shipped.
Both use the memory table store, `earliest` offset reset and no web server.

Unusable input (not JSON, not an object) decodes to an empty record instead of
crashing the agent (Faust throws decode errors into the stream); such events count
as processed and are otherwise ignored.

It prints to stderr (flushed): `naive faust first event <wall s>` when the first event
is processed and, with `--expect N`, `naive faust done <N> events <seconds> s` once N
events have been processed, measured from the first event.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Dict, Optional

import faust
import orjson
from faust.serializers import codecs


class _LenientJson(codecs.Codec):
    """JSON that turns unusable payloads into an empty object."""

    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _loads(self, s: bytes) -> Any:
        try:
            data = orjson.loads(s)
        except orjson.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}


codecs.register("lenient_json", _LenientJson())


class Event(faust.Record, serializer="lenient_json"):
    event_id: str = ""
    type: str = ""
    customer_id: Optional[str] = None
    anonymous_id: Optional[str] = None
    timestamp: Any = None
    properties: Optional[Dict[str, Any]] = None


class Spend(faust.Record, serializer="json"):
    total: float = 0.0
    events: int = 0


class Crossed(faust.Record, serializer="json"):
    customer_id: str
    total: float
    event_id: str
    timestamp: Any


def build(args: argparse.Namespace) -> faust.App:
    options: dict[str, Any] = {}
    if not args.defaults:
        from stream.kafka import faustfixes

        faustfixes.patch_fetch_wait(10)
        faustfixes.patch_end_offsets()
        options = dict(broker_session_timeout=6, broker_rebalance_timeout=3, broker_heartbeat_interval=1,
                       producer_linger=0.005)
    app = faust.App(
        args.app_id, broker=args.broker, store="memory://", topic_partitions=args.partitions,
        consumer_auto_offset_reset="earliest", web_enabled=False, **options,
    )
    source = app.topic(*args.topics.split(","), key_type=str, value_type=Event, partitions=args.partitions)
    output = app.topic(args.output, key_type=str, value_type=Crossed, partitions=args.partitions)
    spend = app.Table("spend", default=None, value_type=Spend, partitions=args.partitions)
    counter = {"n": 0, "first": 0.0}

    @app.agent(source)
    async def totals(stream: Any) -> None:
        async for event in stream:
            counter["n"] += 1
            if counter["n"] == 1:
                counter["first"] = time.time()
                print(f"naive faust first event {counter['first']:.3f}", file=sys.stderr, flush=True)
            customer = event.customer_id or event.anonymous_id
            if customer:
                before = spend.get(customer)
                total = before.total if before is not None else 0.0
                added = 0.0
                if event.type == "order_placed" and isinstance(event.properties, dict):
                    value = event.properties.get("total")
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        added = float(value)
                spend[customer] = Spend(total=total + added, events=(before.events if before else 0) + 1)
                if total < args.threshold <= total + added:
                    await output.send(key=customer, value=Crossed(customer_id=customer, total=total + added,
                                                                  event_id=event.event_id,
                                                                  timestamp=event.timestamp))
            if counter["n"] == args.expect:
                seconds = time.time() - counter["first"]
                print(f"naive faust done {counter['n']} events {seconds:.3f} s", file=sys.stderr, flush=True)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--topics", required=True, help="comma-separated input topics")
    parser.add_argument("--output", required=True)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--threshold", type=float, default=1000.0)
    parser.add_argument("--expect", type=int, default=0, help="report the time to process this many events")
    parser.add_argument("--defaults", action="store_true", help="Faust's own settings, no adjustments")
    args = parser.parse_args()
    app = build(args)
    worker = faust.Worker(app, loglevel="warning", redirect_stdouts=False)
    if not args.defaults:
        from stream.kafka.faustfixes import quiet_logging

        worker.spinner = None  # the spinner is what leaves the root logger at DEBUG
        quiet_logging()
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
