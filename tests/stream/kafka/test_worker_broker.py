"""`segmenter worker` against the embedded broker, as it runs in production.

Every test has its own app id and its own topics, so the tests share one broker
without seeing each other's data. What the worker publishes is compared with the
offline evaluator (`segmenter replay`, or `stream.replay.replay` on the same messages),
whole change objects per (customer, segment, seq).

About the traffic: a live worker evaluates events as they arrive. A late event (or one
produced after the worker sat idle, when flips follow the wall clock) can legitimately
change what it publishes compared to replay, which sees every event in time order.
The streams below are built so the live result is well defined: the generator's late
events only in the single-chunk test, and streams produced in several chunks are made
of periods with disjoint customers, each period later than the one before.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from examples.traffic import TrafficConfig, generate, key_of
from rules import load_definitions
from rules.evaluate.state import CustomerState
from stream.broker import EmbeddedBroker
from stream.kafka import messages as m
from stream.kafka.topics import ensure_topics
from stream.settings import Settings

from expected import at_ms, by_id, change_id, diff, rejected, replayed, usable
from harness import REPO, Record, WorkerProcess, produce_located, read_records, worker_env
from memory_bus import partition_of

SHOP = REPO / "examples" / "segments"
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
READY = re.compile(r"segmenter worker ready: partitions \[([\d, ]*)\].*\(pid (\d+)\)")
PIDS = re.compile(r"segmenter worker: \d+ processes \(pids ([\d, ]+)\)")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Deployment:
    """One test's worker setup: its topics, app id and worker processes."""

    broker: EmbeddedBroker
    folder: Path
    name: str
    segments: Path = SHOP
    inputs: list[str] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def changes(self) -> str:
        return f"{self.name}-changes"

    @property
    def dlq(self) -> str:
        return f"{self.name}-dlq"

    @property
    def settings(self) -> Settings:
        return Settings(brokers=[self.broker.url], topics=self.inputs, changes_topic=self.changes,
                        dlq_topic=self.dlq, repartition_topic=f"{self.name}-repartition", app_id=self.name)

    def start_worker(self, data_dir: Path | None = None, **extra: str) -> WorkerProcess:
        s = self.settings
        env = worker_env(self.broker.bootstrap, self.segments, data_dir or self.folder / "data", self.name,
                         topics=",".join(s.topics), changes_topic=s.changes_topic, dlq_topic=s.dlq_topic,
                         repartition_topic=s.repartition_topic, **extra)
        worker = WorkerProcess(env, self.folder / f"worker-{len(self.workers) + 1}.log")
        self.workers.append(worker)
        return worker

    def produce(self, topic: str, messages: list[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
        return asyncio.run(produce_located(self.broker.bootstrap, topic, messages))

    def produce_keyed(self, topic: str, raws: list[bytes]) -> None:
        self.produce(topic, [(key_of(raw), raw) for raw in raws])

    def read(self, topic: str, until: Callable[[list[Record]], bool] | None = None, settle: float = 1.0,
             timeout: float = 60.0) -> list[Record]:
        return asyncio.run(read_records(self.broker.bootstrap, topic, until, settle, timeout))

    def read_changes(self, expect: int, timeout: float = 60.0, settle: float = 1.0) -> list[Record]:
        """The changes topic, once it holds `expect` distinct changes (or at the deadline)."""
        return self.read(self.changes, lambda found: distinct(found) >= expect, settle, timeout)


def distinct(records: list[Record]) -> int:
    return len({change_id(orjson.loads(r.value)) for r in records})


@pytest.fixture
def deploy(broker: EmbeddedBroker, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Deployment]]:
    made: list[Deployment] = []

    def make(inputs: tuple[str, ...] = ("orders", "behavior", "customers"), segments: Path = SHOP) -> Deployment:
        name = f"t{uuid.uuid4().hex[:8]}"
        deployment = Deployment(broker, tmp_path, name, segments, [f"{name}-{topic}" for topic in inputs])
        asyncio.run(ensure_topics(deployment.settings))
        made.append(deployment)
        return deployment

    try:
        yield make
    finally:
        for deployment in made:
            for worker in deployment.workers:
                worker.stop(timeout=10)
                worker.kill()
                try:  # whatever its processes left in its group, too
                    os.killpg(worker.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        assert all(w.process.poll() is not None for dep in made for w in dep.workers), "a worker is still running"


def period(seed: int, start: datetime, days: float, customers: int, prefix: str, **rates: float) -> list[bytes]:
    """Generated shop traffic whose customer ids start with `prefix` (ids of different
    periods never meet; anonymous and event ids already differ by seed)."""
    config = TrafficConfig(customers=customers, days=days, seed=seed, start=start, **rates)
    tag = b'"customer_id":"' + prefix.encode() + b"-"
    return [raw.replace(b'"customer_id":"c-', tag) for raw in generate(config)]


def changes_of(records: list[Record]) -> list[dict[str, object]]:
    found = []
    for record in records:
        change = orjson.loads(record.value)
        assert record.key == str(change["customer_id"]).encode(), "changes are keyed by customer id"
        found.append(change)
    return found


def seqs_in_order(changes: list[dict[str, object]]) -> dict[tuple[str, str], list[int]]:
    order: dict[tuple[str, str], list[int]] = {}
    for change in changes:
        cid = change_id(change)
        order.setdefault(cid[:2], []).append(cid[2])
    return order


def assert_equal_to_replay(changes: list[dict[str, object]], raws: list[bytes], as_of: int,
                           segments: Path = SHOP) -> None:
    """After dropping identical copies, the changes are exactly replay's, and every
    (customer, segment) has seqs 1..n with no gap."""
    found = by_id(changes)  # asserts no (customer, segment, seq) with two contents
    wanted = by_id(replayed(load_definitions(segments), raws, as_of)[0])
    assert found == wanted, diff(found, wanted)
    for pair, seqs in seqs_in_order(list(found.values())).items():
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), pair


def ready_partitions(worker: WorkerProcess) -> list[set[int]]:
    return [{int(p) for p in match.group(1).split(",") if p.strip()}
            for match in (READY.search(line) for line in list(worker.lines)) if match]


# -- a: the whole stream, dirt included ---------------------------------------------------
def test_changes_equal_replay_and_bad_messages_are_dead_lettered(deploy, tmp_path) -> None:
    d = deploy(("orders", "behavior"))
    worker = d.start_worker()
    orders, behavior = d.inputs
    traffic = list(generate(TrafficConfig(customers=300, days=60, bad_event_rate=0.01, duplicate_rate=0.01,
                                          late_rate=0.03)))
    # the stream really carries dirt: malformed, duplicate and late messages
    events = usable(traffic)
    assert len(rejected(traffic)) >= 10
    assert sum(n - 1 for n in Counter(traffic).values()) >= 10
    assert sum(1 for before, event in zip(events, events[1:]) if event.ts < before.ts) >= 10
    limit = 64 * 1024
    big = orjson.dumps({"event_id": "big-1", "type": "page_view", "customer_id": "c-000001",
                        "timestamp": "2025-01-05T10:00:00Z", "properties": {"blob": "x" * limit}})
    handmade = [
        (b"c-000001", b"{not json"),
        (None, b"\x00\x01\x02"),
        (b"c-000002", orjson.dumps({"type": "order_placed", "customer_id": "c-000002",
                                    "timestamp": "2025-01-05T10:00:00Z", "properties": {"total": 10}})),
        (b"c-000003", orjson.dumps({"event_id": "bad-ts-1", "type": "page_view", "customer_id": "c-000003",
                                    "timestamp": "2025-02-30T10:00:00Z"})),
        (b"c-000004", big),
        (b"c-000004", orjson.dumps([{"event_id": "in-a-list", "type": "page_view", "customer_id": "c-000004",
                                     "timestamp": 1736071200000}])),
    ]
    assert len(rejected([raw for _, raw in handmade])) == len(handmade)
    worker.wait_ready()

    d.produce(orders, handmade[:3])
    d.produce(behavior, [(key_of(raw), raw) for raw in traffic])
    d.produce(orders, handmade[3:])
    produced = traffic + [raw for _, raw in handmade]

    predicted, _ = replayed(load_definitions(SHOP), produced, now_ms())
    records = d.read_changes(len(predicted))
    as_of = now_ms()
    changes = changes_of(records)
    assert len({change_id(c) for c in changes}) == len(changes), "no change is published twice"
    assert_equal_to_replay(changes, produced, as_of)
    for pair, seqs in seqs_in_order(changes).items():
        assert seqs == list(range(1, len(seqs) + 1)), f"{pair} published out of order: {seqs}"

    # the dead-letter topic holds exactly the unusable messages, each once, as they were
    bad = rejected(produced)
    letters = d.read(d.dlq, lambda found: len(found) >= len(bad))
    assert Counter(r.value for r in letters) == Counter(bad)
    sources = {(r.topic, r.partition, r.offset): r for topic in d.inputs for r in d.read(topic, settle=0.5)}
    for letter in letters:
        assert letter.headers.get(m.REASON, b"").strip(), letter
        where = (letter.headers[m.SOURCE_TOPIC].decode(), int(letter.headers[m.SOURCE_PARTITION]),
                 int(letter.headers[m.SOURCE_OFFSET]))
        original = sources.get(where)
        assert original is not None, f"dead letter points at no message: {where}"
        assert (original.key, original.value) == (letter.key, letter.value)
    assert {letter.headers[m.SOURCE_TOPIC].decode() for letter in letters} == {orders, behavior}
    assert worker.process.poll() is None, "the worker survived it all"


VIEWS = """
segments:
  viewer:
    when: count(page_view) >= 3
"""


def _kept(records: list[Record]) -> set[bytes]:
    """Visitor keys whose latest changelog record is a kept hand-over."""
    latest = {r.key: r.value for r in records if r.key is not None and r.key.startswith(b"anon:")}
    return {key for key, value in latest.items() if value is not None and CustomerState.from_bytes(value).handed}


def test_a_kept_hand_over_is_dropped_though_no_input_follows(deploy, tmp_path) -> None:
    """A visitor's history handed over is kept in the table while the hand-over is in
    flight, then dropped without more input: by the next round (the customer's side
    taking the hand-over in) or, when none comes, by one the timer loop starts. A kept
    one that stayed would be sent again at every recovery."""
    (tmp_path / "views.yaml").write_text(VIEWS)
    d = deploy(("behavior",), tmp_path / "views.yaml")
    worker = d.start_worker()
    (behavior,) = d.inputs
    raws = []
    for n in range(6):
        visitor, customer = f"v-{n}", f"c-{n}"
        raws += [orjson.dumps({"event_id": f"{visitor}-{i}", "type": "page_view", "anonymous_id": visitor,
                               "timestamp": now_ms() - 60_000 + i}) for i in range(2)]
        raws.append(orjson.dumps({"event_id": f"id-{n}", "type": "identify", "anonymous_id": visitor,
                                  "customer_id": customer, "timestamp": now_ms() - 30_000}))
        raws.append(orjson.dumps({"event_id": f"{customer}-own", "type": "page_view", "customer_id": customer,
                                  "timestamp": now_ms() - 20_000}))
    worker.wait_ready()
    d.produce_keyed(behavior, raws)
    assert len(d.read_changes(6)) == 6  # every customer counted its visitor's two views

    changelog = d.read(f"{d.name}-customers-changelog", lambda found: not _kept(found), settle=0.5, timeout=20)
    ever_kept = {r.key for r in changelog if r.key is not None and r.key.startswith(b"anon:") and r.value is not None
                 and CustomerState.from_bytes(r.value).handed}
    assert len(ever_kept) == 6, "each history was kept while its hand-over was in flight"
    assert not _kept(changelog), "and dropped once Kafka had it"


# -- b: a time-based exit with no new event -----------------------------------------------
TIMERS = """
segments:
  recent:
    when: since(last(page_view)) < 5s
  quiet:
    when: count(page_view) >= 1 and since(last(page_view)) > 3s
"""


def test_time_based_changes_arrive_at_their_instant_without_new_events(deploy, tmp_path) -> None:
    folder = tmp_path / "timers"
    folder.mkdir()
    (folder / "segments.yaml").write_text(TIMERS)
    d = deploy(("behavior",), segments=folder)
    worker = d.start_worker()
    worker.wait_ready()

    ts = now_ms()
    raw = orjson.dumps({"event_id": "pv-1", "type": "page_view", "customer_id": "c-1", "timestamp": ts})
    d.produce(d.inputs[0], [(b"c-1", raw)])
    records = d.read(d.changes, lambda found: len(found) >= 3, settle=0.5, timeout=30)

    changes = changes_of(records)
    summary = [(c["segment"], c["change"], c["seq"], c["cause"], at_ms(c)) for c in changes]
    assert summary == [
        ("recent", "enter", 1, "pv-1", ts),
        ("quiet", "enter", 1, "timer", ts + 3001),  # strict: first holds 1 ms after 3 s
        ("recent", "exit", 2, "timer", ts + 5000),  # non-strict: flips exactly at 5 s
    ]
    assert by_id(changes) == by_id(replayed(load_definitions(folder), [raw], ts + 60_000)[0])
    for record, change in zip(records[1:], changes[1:]):
        lateness = record.received - at_ms(change) / 1000
        assert 0 <= lateness < 5.0, f"{change['segment']} {change['change']} arrived {lateness:.3f}s after its instant"
    print(f"timer lateness: {[round(r.received - at_ms(c) / 1000, 3) for r, c in zip(records[1:], changes[1:])]}")


# -- c: SIGKILL in the middle, restart, recover from the changelog --------------------------
@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_sigkill_and_restart_lose_nothing_and_duplicate_nothing_that_differs(deploy, store) -> None:
    """memory: the state comes back from the changelog; rocksdb (the default store): from
    the local files the killed worker left, and the changelog's tail."""
    d = deploy(("behavior",))
    topic = d.inputs[0]
    first = period(11, START, 45, 900, "a", late_rate=0.0)  # ~7,000 events
    second = period(12, START + timedelta(days=46), 20, 250, "b", late_rate=0.0)
    third = period(13, START + timedelta(days=67), 20, 250, "d", late_rate=0.0)
    assert max(e.ts for e in usable(first)) < min(e.ts for e in usable(second))
    assert max(e.ts for e in usable(second)) < min(e.ts for e in usable(third))
    everything = first + second + third

    worker = d.start_worker(store=store)
    worker.wait_ready()
    for start in range(0, len(first), 2000):  # several chunks, back to back
        d.produce_keyed(topic, first[start:start + 2000])
    worker.kill()  # SIGKILL while it works through them
    seen_before_kill = distinct(d.read(d.changes, settle=0.3))
    d.produce_keyed(topic, second)  # while no worker runs

    restarted = d.start_worker(store=store)  # same app id and data directory
    restarted.wait_ready(timeout=90)
    d.produce_keyed(topic, third)

    predicted, _ = replayed(load_definitions(SHOP), everything, now_ms())
    records = d.read_changes(len(predicted), timeout=60, settle=2.0)
    as_of = now_ms()
    print(f"{seen_before_kill} of {len(predicted)} changes published before the kill; "
          f"{len(records)} messages, {distinct(records)} distinct after the restart")
    assert_equal_to_replay(changes_of(records), everything, as_of)


EVENT_DRIVEN = """\
segments:
  buyer: {when: count(order_placed) >= 1}
  repeat_buyer: {when: count(order_placed) >= 3}
  spender: {when: sum(order_placed.total) > 300, exit_when: sum(order_placed.total) < 250}
  browser: {when: count(product_viewed) >= 5}
  carts: {when: count(added_to_cart) > count(order_placed)}
"""


def event_driven(deploy, tmp_path: Path) -> tuple[Deployment, Path]:
    """A deployment on `EVENT_DRIVEN` definitions: without time-based conditions, a
    worker that sat idle (its flips following the wall clock) cannot move customers'
    clocks past events still to come, so later events of the same customers are
    evaluated live exactly as replay evaluates them."""
    segments = tmp_path / "event-driven"
    segments.mkdir()
    (segments / "segments.yaml").write_text(EVENT_DRIVEN)
    return deploy(("behavior",), segments), segments


def same_customers_twice(seed: int, prefix: str) -> tuple[list[bytes], list[bytes]]:
    """Two periods of traffic of the same 300 customers, the second after the first."""
    before = period(seed, START, 20, 300, prefix, late_rate=0.0)
    after = period(seed + 1, START + timedelta(days=21), 20, 300, prefix, late_rate=0.0)
    assert max(e.ts for e in usable(before)) < min(e.ts for e in usable(after))
    assert len({e.customer_id for e in usable(before)} & {e.customer_id for e in usable(after)}) > 250
    return before, after


def produce_in_rounds(d: Deployment, raws: list[bytes], size: int = 300) -> None:
    """Small chunks a little apart, so the worker takes them in many rounds."""
    for start in range(0, len(raws), size):
        d.produce_keyed(d.inputs[0], raws[start:start + size])
        time.sleep(0.05)


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_customers_carry_on_after_a_restart(deploy, tmp_path, store) -> None:
    """The same customers before and after a restart: every later event must find the
    customer's state as the first worker left it (memory: read back from the changelog;
    rocksdb, the default store: from the local files), in every partition and in every
    round after the first, not only in the keys the restart's first round reads."""
    d, segments = event_driven(deploy, tmp_path)
    definitions = load_definitions(segments)
    before, after = same_customers_twice(31, "k")

    worker = d.start_worker(store=store)
    worker.wait_ready()
    d.produce_keyed(d.inputs[0], before)
    d.read_changes(len(replayed(definitions, before, now_ms())[0]), timeout=60, settle=1.0)
    worker.stop()

    restarted = d.start_worker(store=store)
    restarted.wait_ready(timeout=90)
    produce_in_rounds(d, after)  # many rounds after the restart's first
    everything = before + after
    records = d.read_changes(len(replayed(definitions, everything, now_ms())[0]), timeout=60, settle=2.0)
    assert_equal_to_replay(changes_of(records), everything, now_ms(), segments)


# -- d: two workers share the partitions, then one leaves -----------------------------------
def test_two_workers_then_one_publish_one_stream_without_gaps(deploy) -> None:
    d = deploy(("behavior",))
    topic = d.inputs[0]
    first = period(21, START, 45, 700, "a", late_rate=0.0)
    second = period(22, START + timedelta(days=46), 30, 500, "b", late_rate=0.0)
    assert max(e.ts for e in usable(first)) < min(e.ts for e in usable(second))
    shop = load_definitions(SHOP)

    one = d.start_worker()
    one.wait_ready()
    two = d.start_worker()
    two.wait_ready()
    one.wait_ready(count=2)  # the rebalance the second worker caused
    split = [ready_partitions(one)[-1], ready_partitions(two)[-1]]
    assert split[0] and split[1] and not split[0] & split[1] and split[0] | split[1] == {0, 1, 2, 3}, split

    d.produce_keyed(topic, first)
    predicted, _ = replayed(shop, first, now_ms())
    records = d.read_changes(len(predicted))
    assert_equal_to_replay(changes_of(records), first, now_ms())  # both workers' share of the stream

    two.stop()  # SIGTERM: it leaves the group, the other takes over its partitions
    d.produce_keyed(topic, second)
    predicted, _ = replayed(shop, first + second, now_ms())
    records = d.read_changes(len(predicted), settle=2.0)
    as_of = now_ms()
    assert ready_partitions(one)[-1] == {0, 1, 2, 3}, ready_partitions(one)
    assert_equal_to_replay(changes_of(records), first + second, as_of)


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_customers_carry_on_when_a_worker_leaves(deploy, tmp_path, store) -> None:
    """Two workers, each with its own data directory (its own volume), split the
    partitions; one leaves and the other takes its partitions over, restoring their
    table from the changelog: the same customers' later events must find their state."""
    d, segments = event_driven(deploy, tmp_path)
    definitions = load_definitions(segments)
    before, after = same_customers_twice(41, "m")

    one = d.start_worker(tmp_path / "one", store=store)
    one.wait_ready()
    two = d.start_worker(tmp_path / "two", store=store)
    two.wait_ready()
    one.wait_ready(count=2)  # the rebalance the second worker caused
    assert ready_partitions(one)[-1] and ready_partitions(two)[-1]
    d.produce_keyed(d.inputs[0], before)
    d.read_changes(len(replayed(definitions, before, now_ms())[0]), timeout=60, settle=1.0)

    two.stop()  # it leaves the group; the other restores its partitions and takes them over
    one.wait_ready(count=3)
    assert ready_partitions(one)[-1] == {0, 1, 2, 3}, ready_partitions(one)
    produce_in_rounds(d, after)
    everything = before + after
    records = d.read_changes(len(replayed(definitions, everything, now_ms())[0]), timeout=60, settle=2.0)
    assert_equal_to_replay(changes_of(records), everything, now_ms(), segments)


# -- e: a restart with a backlog: flips wait for the events still queued -------------------
LAPSE = """
segments:
  buyer:
    when: count(order_placed) >= 1
  lapsed:
    when: count(order_placed) >= 1 and since(last(order_placed)) > 20s
"""


def test_after_a_restart_flips_wait_for_the_backlog(deploy, tmp_path) -> None:
    """A customer orders, the worker stops, and while it is down a backlog builds up on
    the customer's partition (other visitors' page views) ending with the customer's
    second order. By the time the worker is back, the flip the first order scheduled
    ("no order for 20 s") is past, but the second order, still queued, happened before
    it: the customer must lapse once, 20 s after the second order, as replay says."""
    folder = tmp_path / "lapse"
    folder.mkdir()
    (folder / "segments.yaml").write_text(LAPSE)
    d = deploy(("orders",), segments=folder)
    topic = d.inputs[0]

    def event(event_id: str, kind: str, customer: str, ts: int) -> bytes:
        return orjson.dumps({"event_id": event_id, "type": kind, "customer_id": customer, "timestamp": ts,
                             "properties": {"total": 10}})

    first = d.start_worker()
    first.wait_ready()
    t0 = now_ms()
    raws = [event("o-1", "order_placed", "c-1", t0)]
    d.produce(topic, [(b"c-1", raws[0])])
    assert distinct(d.read(d.changes, lambda found: len(found) >= 1, settle=0.2, timeout=20)) == 1
    first.stop()
    assert now_ms() < t0 + 15_000, "the first worker took too long to stop: the test cannot tell anything"
    assert [orjson.loads(r.value)["segment"] for r in d.read(d.changes, settle=0.3)] == ["buyer"]

    # while no worker runs: a backlog on c-1's partition, then c-1's second order
    home = partition_of(b"c-1", d.settings.partitions)
    others = [f"v-{n}" for n in range(40_000) if partition_of(f"v-{n}".encode(), d.settings.partitions) == home]
    backlog = [event(f"pv-{n}", "page_view", others[n % len(others)], t0 + 1_000 + n // 2) for n in range(6_000)]
    raws += [*backlog, event("o-2", "order_placed", "c-1", t0 + 5_000)]
    placed = d.produce(topic, [(key_of(raw), raw) for raw in raws[1:]])
    assert {partition for partition, _ in placed} == {home}
    time.sleep(max(0.0, (t0 + 21_000 - now_ms()) / 1000))  # the first order's flip is past
    second = d.start_worker()
    second.wait_ready()

    records = d.read(d.changes, lambda found: any(b'"lapsed"' in r.value for r in found), settle=2.0, timeout=30)
    changes = changes_of(records)
    lapsed = [(c["change"], c["seq"], c["cause"], at_ms(c) - t0) for c in changes if c["segment"] == "lapsed"]
    assert lapsed == [("enter", 1, "timer", 25_001)]
    assert by_id(changes) == by_id(replayed(load_definitions(folder), raws, now_ms())[0])


# -- f: one worker run as several processes ----------------------------------------------
def latest_split(worker: WorkerProcess) -> dict[int, set[int]]:
    """pid -> partitions of its latest ready line (processes of one worker share a log)."""
    split: dict[int, set[int]] = {}
    for match in (READY.search(line) for line in list(worker.lines)):
        if match:
            split[int(match.group(2))] = {int(p) for p in match.group(1).split(",") if p.strip()}
    return split


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("stop_with", ["SIGTERM", "SIGKILL", "one process killed"])
def test_a_worker_of_two_processes_splits_the_partitions_and_stops_as_one(deploy, stop_with) -> None:
    """`--processes 2`: the processes share the partitions like two workers, publish the
    stream replay gives, and stop together when the worker is stopped (SIGTERM), killed
    (SIGKILL: the processes get their parent-death signal), or when one of them dies (the
    worker then fails as a whole, with the dead process's status, so it is restarted)."""
    d = deploy(("behavior",))
    worker = d.start_worker(processes="2")
    deadline = time.monotonic() + 90
    while True:
        split = latest_split(worker)
        parts = list(split.values())
        if len(parts) == 2 and not parts[0] & parts[1] and parts[0] | parts[1] == {0, 1, 2, 3} and all(parts):
            break
        assert time.monotonic() < deadline, "".join(worker.lines[-30:])
        assert not worker.exited(), "".join(worker.lines[-30:])
        time.sleep(0.1)
    pids = {int(p) for p in PIDS.search("".join(worker.lines)).group(1).split(", ")}  # type: ignore[union-attr]
    assert set(split) == pids

    raws = period(31, START, 40, 400, "p", late_rate=0.0)
    d.produce_keyed(d.inputs[0], raws)
    predicted, _ = replayed(load_definitions(SHOP), raws, now_ms())
    records = d.read_changes(len(predicted))
    assert_equal_to_replay(changes_of(records), raws, now_ms())

    if stop_with == "one process killed":
        os.kill(min(pids), signal.SIGKILL)
        expected = 128 + signal.SIGKILL
    else:
        os.kill(worker.process.pid, getattr(signal, stop_with))
        expected = 0 if stop_with == "SIGTERM" else -signal.SIGKILL
    assert worker.process.wait(30) == expected
    if stop_with != "SIGKILL":  # the survivors left the group in order, none was killed
        ended = re.search(r"processes ended: (.*)", "".join(worker.lines))
        assert ended is not None, "".join(worker.lines[-10:])
        codes = {int(pid): int(code) for pid, code in re.findall(r"pid (\d+) with (-?\d+)", ended.group(1))}
        assert codes == {pid: -signal.SIGKILL if stop_with != "SIGTERM" and pid == min(pids) else 0 for pid in pids}
    deadline = time.monotonic() + 30
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(running(pid) for pid in pids), "a worker process outlived its worker"
