"""The worker's routing rules (see `stream.kafka.processor`), without a broker.

`MemoryBus` stands in for Kafka: partitions are FIFO queues and the repartition topic
feeds back into them. Every expectation is computed by the test itself (counts of the
events it built, the ids it chose) or by `stream.replay.replay`, the offline evaluator
the worker must agree with.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from examples.traffic import TrafficConfig, generate, key_of
from rules import load_definitions
from rules.evaluate.events import RESERVED_PREFIXES
from rules.language.model import Definitions
from rules.evaluate.engine import ANONYMOUS
from stream.kafka import messages as m
from stream.kafka.processor import RECENT_ANONYMOUS
from rules.evaluate.state import CustomerState
from stream.kafka.statestore import ALIAS_PREFIX

from expected import at_ms, by_id, diff, replayed, usable
from memory_bus import TOPICS, MemoryBus, partition_of

PARTITIONS = 4
T0 = int(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc).timestamp() * 1000)
SECOND = 1000
DAY = 86_400_000


# -- helpers -----------------------------------------------------------------------------
class RecordingBus(MemoryBus):
    """A MemoryBus that also keeps every message sent to the repartition topic."""

    def __init__(self, definitions: Definitions, batch: int = 50) -> None:
        super().__init__(definitions, PARTITIONS)
        self.batch = batch
        self.forwarded: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []

    def send(self, topic: str, key: bytes | None, value: bytes, headers: dict[str, bytes] | None = None) -> None:
        if topic == TOPICS.repartition:
            self.forwarded.append((key, value, dict(headers or {})))
        super().send(topic, key, value, headers)

    def run(self, batch: int | None = None) -> None:  # type: ignore[override]
        super().run(batch or self.batch)

    def changes(self) -> list[dict[str, object]]:
        return [orjson.loads(value) for _, value, _ in self.sent.get(TOPICS.changes, [])]

    def dead_letters(self) -> list[tuple[bytes | None, bytes, dict[str, bytes]]]:
        return self.sent.get(TOPICS.dlq, [])


def event(event_id: str, kind: str, ts: int, customer: str | None = None, anonymous: str | None = None,
          **properties: object) -> bytes:
    body: dict[str, object] = {"event_id": event_id, "type": kind, "timestamp": ts}
    if customer is not None:
        body["customer_id"] = customer
    if anonymous is not None:
        body["anonymous_id"] = anonymous
    if properties:
        body["properties"] = properties
    return orjson.dumps(body)


def ids_on(prefix: str, partition: int, count: int = 1, skip: Iterable[str] = ()) -> list[str]:
    """`count` ids `prefix-N` whose key lands on `partition` (murmur2, like Kafka's default)."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        n += 1
        candidate = f"{prefix}-{n}"
        if candidate not in skip and partition_of(candidate.encode(), PARTITIONS) == partition:
            found.append(candidate)
    return found


def exactly(changes: list[dict[str, object]]) -> dict[tuple[str, str, int], dict[str, object]]:
    """Changes by (customer, segment, seq); without a crash nothing is published twice."""
    keyed = by_id(changes)
    assert len(keyed) == len(changes), "a (customer, segment, seq) was published twice"
    return keyed


def of(changes: list[dict[str, object]], customer: str, segment: str) -> list[dict[str, object]]:
    return [c for c in changes if c["customer_id"] == customer and c["segment"] == segment]


@pytest.fixture
def defs(write_yaml: Callable[..., Path]) -> Callable[[str], Definitions]:
    return lambda text: load_definitions(write_yaml(text))


ROUTING = """
traits:
  spend: sum(order_placed.total)
  views: count(page_view)
segments:
  buyer:
    when: count(order_placed) >= 1
  big:
    when: spend > 100
  viewer3:
    when: views >= 3
  viewer4:
    when: views >= 4
"""


# -- routing -----------------------------------------------------------------------------
@pytest.mark.parametrize("key", [None, "wrong", "anonymous"])
def test_message_keyed_by_another_id_is_forwarded_and_applied_once(defs, key) -> None:
    bus = RecordingBus(defs(ROUTING))
    customer = ids_on("c", 3)[0]
    wrong = {None: None, "wrong": ids_on("w", 1)[0], "anonymous": ids_on("anon", 0)[0]}[key]
    raw = event("o-1", "order_placed", T0, customer, anonymous="anon-9" if key == "anonymous" else None, total=150)
    bus.put("orders", wrong.encode() if wrong else None, raw)
    bus.run()

    # it travelled to the customer's partition, byte for byte, keyed by the customer
    assert [(k, v) for k, v, _ in bus.forwarded] == [(customer.encode(), raw)]
    # ... and was applied exactly once there
    state = bus.states.get(customer)
    assert state is not None and state.partition == partition_of(customer.encode(), PARTITIONS)
    traits = bus.engine.explain(customer, T0)["traits"]  # type: ignore[index]
    assert traits["spend"] == 150
    changes = bus.changes()
    assert sorted((c["segment"], c["change"], c["seq"], c["cause"]) for c in changes) == [
        ("big", "enter", 1, "o-1"), ("buyer", "enter", 1, "o-1")]
    assert all(k == customer.encode() for k, _, _ in bus.sent[TOPICS.changes])
    # nothing is kept under the id it arrived with
    assert wrong is None or bus.states.get(wrong) is None
    assert bus.dead_letters() == []


@pytest.mark.parametrize("same_partition", [False, True])
@pytest.mark.parametrize("batch", [1, 3, 50])
def test_anonymous_history_and_later_anonymous_events_count_for_the_customer(defs, same_partition, batch) -> None:
    bus = RecordingBus(defs(ROUTING), batch)
    customer = ids_on("c", 1)[0]
    anonymous = ids_on("anon", 1 if same_partition else 2)[0]
    before = [event(f"pv-{i}", "page_view", T0 + i * SECOND, anonymous=anonymous) for i in range(2)]
    identify = event("id-1", "identify", T0 + 10 * SECOND, customer, anonymous)
    for raw in before:
        bus.put("behavior", anonymous.encode(), raw)
    bus.put("customers", customer.encode(), identify)
    bus.run()
    assert bus.states.get("anon:" + anonymous) is None, "the visitor's history is handed over"
    assert bus.aliases.get(anonymous) == customer

    # after the identify, events that carry only the anonymous id belong to the customer
    after = [event(f"pv-{i}", "page_view", T0 + (20 + i) * SECOND, anonymous=anonymous) for i in range(2, 4)]
    for raw in after:
        bus.put("behavior", anonymous.encode(), raw)
    bus.run()

    views = len(before) + len(after)
    assert bus.engine.explain(customer, T0 + DAY)["traits"]["views"] == views  # type: ignore[index]
    assert bus.states.get("anon:" + anonymous) is None
    # the anonymous-only events were sent on to the customer, tagged with who they belong to
    tagged = [(k, v) for k, v, h in bus.forwarded if h.get(m.CUSTOMER) == customer.encode()]
    assert tagged == [(customer.encode(), raw) for raw in after]
    changes = bus.changes()
    assert [(c["segment"], c["change"], c["seq"], c["cause"]) for c in of(changes, customer, "viewer3")] == [
        ("viewer3", "enter", 1, "pv-2")]
    assert [(c["segment"], c["change"], c["seq"], c["cause"]) for c in of(changes, customer, "viewer4")] == [
        ("viewer4", "enter", 1, "pv-3")]
    # the offline evaluator agrees on every change
    expected, _ = replayed(bus.engine.definitions, [*before, identify, *after])
    assert exactly(changes) == by_id(expected)
    assert not any(c["customer_id"] == anonymous or str(c["customer_id"]).startswith("anon:") for c in changes)


@pytest.mark.parametrize("same_partition", [False, True])
@pytest.mark.parametrize("batch", [1, 2, 50])
def test_events_right_after_identify_are_applied_after_the_merge(defs, same_partition, batch) -> None:
    """Two anonymous page views, the identify, then the customer's own third and fourth
    page views right behind it: the customer enters `views >= 3` once, caused by the
    third view, and `views >= 4` caused by the fourth (held events keep their order)."""
    bus = RecordingBus(defs(ROUTING), batch)
    customer = ids_on("c", 3)[0]
    anonymous = ids_on("anon", 3 if same_partition else 0)[0]
    raws = [
        (anonymous, event("pv-a", "page_view", T0, anonymous=anonymous)),
        (anonymous, event("pv-b", "page_view", T0 + SECOND, anonymous=anonymous)),
        (customer, event("id-1", "identify", T0 + 2 * SECOND, customer, anonymous)),
        (customer, event("pv-c", "page_view", T0 + 3 * SECOND, customer)),
        (customer, event("pv-d", "page_view", T0 + 4 * SECOND, customer)),
        (customer, event("o-1", "order_placed", T0 + 5 * SECOND, customer, total=20)),
    ]
    for key, raw in raws:
        bus.put("behavior", key.encode(), raw)
    bus.run()

    changes = bus.changes()
    entered = of(changes, customer, "viewer3")
    assert [(c["change"], c["seq"], c["cause"], at_ms(c)) for c in entered] == [("enter", 1, "pv-c", T0 + 3 * SECOND)]
    entered = of(changes, customer, "viewer4")
    assert [(c["change"], c["seq"], c["cause"], at_ms(c)) for c in entered] == [("enter", 1, "pv-d", T0 + 4 * SECOND)]
    assert [(c["change"], c["cause"]) for c in of(changes, customer, "buyer")] == [("enter", "o-1")]
    assert bus.engine.explain(customer, T0 + DAY)["traits"]["views"] == 4  # type: ignore[index]
    expected, _ = replayed(bus.engine.definitions, [raw for _, raw in raws])
    assert exactly(changes) == by_id(expected)
    assert bus.states[customer].held is None, "nothing left waiting"


@pytest.mark.parametrize("same_partition", [False, True])
@pytest.mark.parametrize("batch", [1, 50])
def test_anonymous_event_just_after_identify_counts_from_its_own_time(defs, same_partition, batch) -> None:
    """The visitor's third page view happens after the identify but carries only the
    anonymous id, so it reaches the visitor's partition before the identify's hand-over
    does. It counts for the customer from its own time: the customer enters `views >= 3`
    when it happens, caused by it, not earlier at the identify (replay says the same)."""
    bus = RecordingBus(defs(ROUTING), batch)
    customer = ids_on("c", 3)[0]
    anonymous = ids_on("anon", 3 if same_partition else 0)[0]
    raws = [
        (anonymous, event("pv-a", "page_view", T0, anonymous=anonymous)),
        (anonymous, event("pv-b", "page_view", T0 + SECOND, anonymous=anonymous)),
        (customer, event("id-1", "identify", T0 + 2 * SECOND, customer, anonymous)),
        (anonymous, event("pv-c", "page_view", T0 + 3 * SECOND, anonymous=anonymous)),
    ]
    for key, raw in raws:
        bus.put("behavior", key.encode(), raw)
    bus.run()

    assert bus.engine.explain(customer, T0 + DAY)["traits"]["views"] == 3  # type: ignore[index]
    entered = of(bus.changes(), customer, "viewer3")
    assert [(c["change"], c["seq"], c["cause"], at_ms(c)) for c in entered] == [("enter", 1, "pv-c", T0 + 3 * SECOND)]
    expected, _ = replayed(bus.engine.definitions, [raw for _, raw in raws])
    assert exactly(bus.changes()) == by_id(expected)


@pytest.mark.parametrize("after", [0, 3])
def test_a_visitor_with_more_events_than_are_kept_raw_is_counted_whole(defs, after) -> None:
    """A long anonymous visit (more events than the visitor's state keeps unfolded) and a
    redelivered view: every view counts once, and `after` views made after the identify
    but read before its hand-over count from their own time, as replay says."""
    bus = RecordingBus(defs(ROUTING), 1)
    customer = ids_on("c", 3)[0]
    anonymous = ids_on("anon", 0)[0]
    before = RECENT_ANONYMOUS + 9
    views = [(anonymous, event(f"pv-{i}", "page_view", T0 + i * SECOND, anonymous=anonymous)) for i in range(before)]
    identify_at = T0 + before * SECOND
    later = [(anonymous, event(f"pv-late-{i}", "page_view", identify_at + (i + 1) * SECOND, anonymous=anonymous))
             for i in range(after)]
    raws = [*views, views[-1], (customer, event("id-1", "identify", identify_at, customer, anonymous)), *later]
    for key, raw in raws:
        bus.put("behavior", key.encode(), raw)
    bus.run()

    assert bus.engine.explain(customer, identify_at + DAY)["traits"]["views"] == before + after  # type: ignore[index]
    assert bus.engine.states.get(ANONYMOUS + anonymous) is None  # nothing left behind with the visitor
    expected, _ = replayed(bus.engine.definitions, [raw for _, raw in raws])
    assert exactly(bus.changes()) == by_id(expected)


def test_identify_of_an_already_linked_visitor_merges_nothing_twice(defs) -> None:
    bus = RecordingBus(defs(ROUTING), 1)
    customer, other = ids_on("c", 2, count=2)
    anonymous = ids_on("anon", 0)[0]
    raws = [
        (anonymous, event("pv-a", "page_view", T0, anonymous=anonymous)),
        (anonymous, event("pv-b", "page_view", T0 + SECOND, anonymous=anonymous)),
        (customer, event("id-1", "identify", T0 + 2 * SECOND, customer, anonymous)),
        (customer, event("id-1", "identify", T0 + 2 * SECOND, customer, anonymous)),  # redelivered
        (other, event("id-2", "identify", T0 + 3 * SECOND, other, anonymous)),  # the first identify wins
        (customer, event("pv-c", "page_view", T0 + 4 * SECOND, customer)),
    ]
    for key, raw in raws:
        bus.put("customers", key.encode(), raw)
    bus.run()
    assert bus.aliases.get(anonymous) == customer
    assert bus.engine.explain(customer, T0 + DAY)["traits"]["views"] == 3  # type: ignore[index]
    assert bus.engine.explain(other, T0 + DAY)["traits"]["views"] == 0  # type: ignore[index]
    expected, _ = replayed(bus.engine.definitions, [raw for _, raw in raws])
    assert exactly(bus.changes()) == by_id(expected)


class LosingBus(RecordingBus):
    """A RecordingBus whose first forward of kind `kind` (holding `holding`) never
    reaches Kafka, as when a worker dies after the round's changelog record was written
    but before its forward was (possible where they go to different brokers)."""

    kind = b"detach"  # a hand-over request
    holding = b""
    lost = False

    def send(self, topic: str, key: bytes | None, value: bytes, headers: dict[str, bytes] | None = None) -> None:
        if (topic == TOPICS.repartition and (headers or {}).get(m.KIND) == self.kind and self.holding in value
                and not self.lost):
            self.lost = True
            return
        super().send(topic, key, value, headers)


@pytest.mark.parametrize("same_partition", [False, True])
def test_an_identify_read_again_after_a_lost_hand_over_request_sends_it_again(defs, same_partition) -> None:
    """The customer waits for the visitor's history; its input offsets were not
    committed, so after the restart its identify is read again: the request goes out
    again, the history arrives, and the events held behind it are applied, as replay
    says. (Without it the customer waited for ever, its flips never fired.)"""
    bus = LosingBus(defs(ROUTING), 1)
    customer = ids_on("c", 3)[0]
    anonymous = ids_on("anon", 3 if same_partition else 0)[0]
    identify = event("id-1", "identify", T0 + 2 * SECOND, customer, anonymous)
    raws = [
        (anonymous, event("pv-a", "page_view", T0, anonymous=anonymous)),
        (anonymous, event("pv-b", "page_view", T0 + SECOND, anonymous=anonymous)),
        (customer, identify),
        (customer, event("pv-c", "page_view", T0 + 3 * SECOND, customer)),
    ]
    for key, raw in raws:
        bus.put("customers", key.encode(), raw)
    bus.run()
    assert bus.lost and bus.states[customer].held is not None  # stuck, as the worker was before its restart
    bus.states.cache.clear()  # a restarted worker reads its states from the table
    bus.put("customers", customer.encode(), identify)  # read again: its offset was never committed
    bus.put("customers", customer.encode(), raws[3][1])
    bus.run()

    assert bus.states[customer].held is None, "nothing left waiting"
    assert bus.engine.explain(customer, T0 + DAY)["traits"]["views"] == 3  # type: ignore[index]
    expected, _ = replayed(bus.engine.definitions, [raw for _, raw in raws])
    assert exactly(bus.changes()) == by_id(expected)
    assert bus.dead_letters() == []


def test_a_late_copy_of_an_earlier_hand_over_releases_nothing(defs) -> None:
    """Two identifies of one customer: while the second waits for its visitor's history,
    a copy of the first one's hand-over arrives again (its visitor partition read the
    request twice after a restart). The events held for the second stay held until
    its own hand-over, so they still count after the second visitor's history."""
    bus = RecordingBus(defs(ROUTING), 1)
    customer = ids_on("c", 3)[0]
    first, second = ids_on("anon", 0, count=2)
    raws = [
        (first, event("pv-a", "page_view", T0, anonymous=first)),
        (customer, event("id-1", "identify", T0 + SECOND, customer, first)),
        (second, event("pv-b", "page_view", T0 + 2 * SECOND, anonymous=second)),
        (second, event("pv-c", "page_view", T0 + 3 * SECOND, anonymous=second)),
        (customer, event("id-2", "identify", T0 + 4 * SECOND, customer, second)),
        (customer, event("pv-d", "page_view", T0 + 5 * SECOND, customer)),
    ]
    for key, raw in raws[:2]:
        bus.put("customers", key.encode(), raw)
    bus.run()
    first_hand_over = [f for f in bus.forwarded if f[2].get(m.KIND) == b"visitor"]
    assert len(first_hand_over) == 1
    for key, raw in raws[2:]:
        bus.put("customers", key.encode(), raw)
    bus.put(TOPICS.repartition, *first_hand_over[0])  # the copy comes first: the second request is behind it
    bus.run()

    entered = of(bus.changes(), customer, "viewer4")
    assert [(c["cause"], at_ms(c)) for c in entered] == [("pv-d", T0 + 5 * SECOND)]
    expected, _ = replayed(bus.engine.definitions, [raw for _, raw in raws])
    assert exactly(bus.changes()) == by_id(expected)


class LosingSecondRequest(LosingBus):
    """Loses the first hand-over request of identify `id-2`."""

    holding = b'"id-2"'


def test_a_redone_hand_over_resends_the_request_of_the_identify_it_released(defs) -> None:
    """id-2 waits behind id-1; id-1's hand-over releases it and its request is lost. After
    the restart only that hand-over is read again (id-2 itself was never input of the
    round): it must send id-2's request again, or the customer waits for ever."""
    bus = LosingSecondRequest(defs(ROUTING), 1)
    customer = ids_on("c", 3)[0]
    first, second = ids_on("anon", 0, count=2)
    raws = [
        (first, event("pv-a", "page_view", T0, anonymous=first)),
        (second, event("pv-b", "page_view", T0 + SECOND, anonymous=second)),
        (customer, event("id-1", "identify", T0 + 2 * SECOND, customer, first)),
        (customer, event("id-2", "identify", T0 + 3 * SECOND, customer, second)),
        (customer, event("pv-c", "page_view", T0 + 4 * SECOND, customer)),
    ]
    for key, raw in raws:
        bus.put("customers", key.encode(), raw)
    bus.run()
    assert bus.lost and bus.states[customer].held is not None
    hand_over = next(f for f in bus.forwarded if f[2].get(m.KIND) == b"visitor" and b'"id-1"' in f[1])
    bus.states.cache.clear()
    bus.put(TOPICS.repartition, *hand_over)  # read again after the restart
    bus.run()

    assert bus.states[customer].held is None, "nothing left waiting"
    assert bus.engine.explain(customer, T0 + DAY)["traits"]["views"] == 3  # type: ignore[index]
    expected, _ = replayed(bus.engine.definitions, [raw for _, raw in raws])
    assert exactly(bus.changes()) == by_id(expected)


def test_an_anonymous_event_of_a_linked_visitor_held_behind_an_identify_keeps_its_place(defs) -> None:
    """The customer, already linked to one visitor, identifies a second. Meanwhile an
    anonymous event of the first visitor reaches it (forwarded, the customer named in a
    header) and is held, then two of its own. Released, the three apply in the order
    they came, as replay says; not the forwarded one last."""
    bus = RecordingBus(defs(ROUTING), 1)
    customer = ids_on("c", 3)[0]
    first = ids_on("anon", 0)[0]
    second = ids_on("anon", 1)[0]
    raws = [(first, event("pv-a", "page_view", T0, anonymous=first)),
            (customer, event("id-1", "identify", T0 + SECOND, customer, first))]
    for key, raw in raws:
        bus.put("customers", key.encode(), raw)
    bus.run()
    later = [(customer, event("id-2", "identify", T0 + 2 * SECOND, customer, second)),
             (first, event("pv-x", "page_view", T0 + 3 * SECOND, anonymous=first)),
             (customer, event("pv-y", "page_view", T0 + 4 * SECOND, customer)),
             (customer, event("pv-z", "page_view", T0 + 5 * SECOND, customer))]

    home = partition_of(customer.encode(), PARTITIONS)
    for key, raw in later[:2]:
        bus.put("behavior", key.encode(), raw)
    bus.take(home)  # id-2 waits; its request goes to the second visitor's partition
    bus.take(partition_of(first.encode(), PARTITIONS))  # pv-x goes on to the customer
    for key, raw in later[2:]:
        bus.put("behavior", key.encode(), raw)
    bus.take(home)  # pv-x, pv-y, pv-z held
    assert len(bus.states[customer].held or []) == 4  # the identify waited for, and the three
    bus.run()

    expected, _ = replayed(bus.engine.definitions, [raw for _, raw in raws + later])
    assert exactly(bus.changes()) == by_id(expected)


# -- dead letters ------------------------------------------------------------------------
def _sized(size: int, event_id: str, customer: str) -> bytes:
    """A valid order of exactly `size` bytes (the padding is a property)."""
    bare = event(event_id, "order_placed", T0, customer, total=1, pad="")
    raw = event(event_id, "order_placed", T0, customer, total=1, pad="x" * (size - len(bare)))
    assert len(raw) == size
    return raw


def test_unusable_messages_go_to_the_dead_letter_topic_with_where_they_came_from(defs) -> None:
    bus = RecordingBus(defs(ROUTING))
    customer = ids_on("c", 1)[0]
    limit = 64 * 1024
    bad = {
        "not json": (b"c-1", b'{"event_id": "x1", "type": "page_view",'),
        "binary": (None, b"\xff\xfe\x00garbage"),
        "array": (customer.encode(), b"[" + event("x2", "page_view", T0, customer) + b"]"),
        "no event_id": (customer.encode(), orjson.dumps({"type": "page_view", "customer_id": customer,
                                                         "timestamp": T0})),
        "empty event_id": (customer.encode(), orjson.dumps({"event_id": "", "type": "page_view",
                                                            "customer_id": customer, "timestamp": T0})),
        "bad timestamp": (customer.encode(), orjson.dumps({"event_id": "x3", "type": "page_view",
                                                           "customer_id": customer, "timestamp": "yesterday"})),
        "timestamp without offset": (customer.encode(), orjson.dumps({
            "event_id": "x4", "type": "page_view", "customer_id": customer, "timestamp": "2026-03-02T09:00:00"})),
        "no timestamp": (customer.encode(), orjson.dumps({"event_id": "x5", "type": "page_view",
                                                          "customer_id": customer})),
        "nobody": (None, orjson.dumps({"event_id": "x6", "type": "page_view", "timestamp": T0})),
        "bad type": (customer.encode(), event("x7", "Page View", T0, customer)),
        "oversize": (customer.encode(), _sized(limit + 1, "x8", customer)),
        # customer ids spelled like the keys of a visitor's state and of its link
        "visitor key": (b"anon:v-1", event("x9", "page_view", T0, "anon:v-1")),
        "alias key": (b"alias:v-1", event("x10", "page_view", T0, "alias:v-1")),
        # input on which the C decoder raises more than a decode error
        "invalid utf-8": (customer.encode(), event("x11", "page_view", T0, customer)[:-1] + b',"properties":{"u":"\xff"}}'),
        "type list": (customer.encode(), orjson.dumps({"event_id": "x12", "type": [1], "customer_id": customer,
                                                       "timestamp": T0})),
        "too deep": (customer.encode(), event("x13", "page_view", T0, customer)[:-1]
                     + b',"properties":{"d":' + b"[" * 1100 + b"]" * 1100 + b"}}"),
        # a key with a null value (a compaction tombstone) and an empty value
        "tombstone": (customer.encode(), None),
        "empty": (customer.encode(), b""),
    }
    good = [
        (customer.encode(), event("g-1", "page_view", T0, customer)),
        (customer.encode(), _sized(limit, "g-2", customer)),  # exactly at the limit: fine
    ]
    placed: dict[bytes, tuple[str, int, int]] = {}
    for n, (key, raw) in enumerate([*bad.values(), *good]):
        topic = ("orders", "behavior", "customers")[n % 3]
        partition = partition_of(key, PARTITIONS)
        placed[raw] = (topic, partition, bus.offsets[partition])
        bus.put(topic, key, raw)
    bus.run()

    letters = bus.dead_letters()
    assert Counter(value for _, value, _ in letters) == Counter(raw for _, raw in bad.values())
    by_value = {raw: (name, key) for name, (key, raw) in bad.items()}
    reasons = {}
    for key, value, headers in letters:
        name, original_key = by_value[value]
        assert key == original_key, name
        topic, partition, offset = placed[value]
        assert headers[m.SOURCE_TOPIC] == topic.encode(), name
        assert headers[m.SOURCE_PARTITION] == str(partition).encode(), name
        assert headers[m.SOURCE_OFFSET] == str(offset).encode(), name
        reasons[name] = headers[m.REASON].decode()
        assert reasons[name].strip(), name
    assert "json" in reasons["not json"].lower()
    assert "event_id" in reasons["no event_id"]
    assert "yesterday" in reasons["bad timestamp"]
    assert str(limit + 1) in reasons["oversize"] and str(limit) in reasons["oversize"]
    assert "'anon:'" in reasons["visitor key"] and "'alias:'" in reasons["alias key"]
    assert "UTF-8" in reasons["invalid utf-8"] and "depth" in reasons["too deep"] and "type" in reasons["type list"]
    assert "null value" in reasons["tombstone"] and "empty" in reasons["empty"]
    # the good messages around them were applied
    assert bus.engine.explain(customer, T0)["traits"]["views"] == 1  # type: ignore[index]
    assert [(c["segment"], c["cause"]) for c in bus.changes() if c["segment"] == "buyer"] == [("buyer", "g-2")]
    # and nothing bad touched any state: only the customer exists
    assert sorted(bus.table) == [customer]


def test_the_reserved_customer_id_prefixes_are_those_of_the_state_keys() -> None:
    """Refusing customer ids only protects the keys if the prefixes are the same ones."""
    assert ANONYMOUS in RESERVED_PREFIXES and ALIAS_PREFIX in RESERVED_PREFIXES


# -- duplicates --------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 50])
def test_duplicates_produce_no_second_change(defs, batch) -> None:
    bus = RecordingBus(defs(ROUTING), batch)
    customer = ids_on("c", 2)[0]
    anonymous = ids_on("anon", 1)[0]
    order = event("o-1", "order_placed", T0, customer, total=150)
    view = event("pv-a", "page_view", T0 + SECOND, anonymous=anonymous)
    steps = [
        [(customer, order), (customer, order)],  # a producer retry, right behind
        [(customer, order), ("elsewhere", order), (None, order)],  # redelivered, keyed otherwise
        [(anonymous, view), (anonymous, view),
         (customer, event("id-1", "identify", T0 + 2 * SECOND, customer, anonymous)),
         (customer, event("pv-b", "page_view", T0 + 3 * SECOND, customer)),
         (customer, event("pv-b", "page_view", T0 + 3 * SECOND, customer))],  # held twice behind the identify
        [(anonymous, view), (customer, event("pv-c", "page_view", T0 + 4 * SECOND, customer))],  # via the alias
    ]
    sent: list[bytes] = []
    for step in steps:
        for key, raw in step:
            bus.put("behavior", key.encode() if key else None, raw)
            sent.append(raw)
        bus.run()
    changes = bus.changes()
    assert sorted((c["segment"], c["change"], c["seq"], c["cause"]) for c in changes) == [
        ("big", "enter", 1, "o-1"), ("buyer", "enter", 1, "o-1"), ("viewer3", "enter", 1, "pv-c")]
    assert bus.engine.explain(customer, T0 + DAY)["traits"]["views"] == 3  # type: ignore[index]
    assert bus.engine.explain(customer, T0 + DAY)["traits"]["spend"] == 150  # type: ignore[index]
    expected, _ = replayed(bus.engine.definitions, sent)
    assert exactly(changes) == by_id(expected)


# -- the whole stream --------------------------------------------------------------------
@pytest.fixture(scope="module")
def traffic() -> list[bytes]:
    return list(generate(TrafficConfig(customers=200, days=60)))


@pytest.mark.parametrize("batch", [1, 50, 5000])
@pytest.mark.parametrize("after_last", [pytest.param(0, id="at-last-event"),
                                        pytest.param(120 * DAY, id="120-days-later")])
def test_change_stream_over_generated_traffic_equals_replay(traffic, batch, after_last) -> None:
    defs = load_definitions(Path(__file__).resolve().parents[3] / "examples" / "segments")
    last = max(event.ts for event in usable(traffic))
    as_of = last + after_last
    bus = RecordingBus(defs, batch)
    for raw in traffic:
        bus.put("behavior", key_of(raw), raw)
    bus.run()
    bus.fire(as_of)

    expected, engine = replayed(defs, traffic, as_of)
    changes = bus.changes()
    assert len(expected) > 300 and any(c["cause"] == "timer" for c in expected)
    found, wanted = exactly(changes), by_id(expected)
    assert found == wanted, diff(found, wanted)
    # each (customer, segment) is published in order: 1, 2, 3, ...
    seqs: dict[tuple[object, object], list[object]] = {}
    for change in changes:
        seqs.setdefault((change["customer_id"], change["segment"]), []).append(change["seq"])
    assert all(found == list(range(1, len(found) + 1)) for found in seqs.values())
    # every message was accounted for, nothing is left waiting, memberships agree
    assert not any(bus.queues)
    assert all(state.held is None for state in (bus.states.get(k) for k in bus.table
                                                if not k.startswith("alias:")) if state is not None)
    for customer in engine.customers():
        assert bus.engine.memberships(customer) == engine.memberships(customer), customer


class Crash(Exception):
    """The worker process dies."""


class CrashingBus(LosingBus):
    """A worker that dies in the round that sends the first hand-over of a visitor's
    history: the round's state writes reach the changelog (the table), the hand-over
    does not, and Kafka never acknowledges the round, so nothing of it is confirmed."""

    kind = b"visitor"
    died = False

    def _flush(self) -> None:
        if not self.lost or self.died:
            super()._flush()
            return
        self.states.flush(self._write)
        self.aliases.flush(self._write)
        self.died = True
        raise Crash


def test_a_hand_over_lost_in_a_crash_is_sent_again_on_recovery(defs) -> None:
    """The visitor's partition linked the visitor and removed its state (both in the
    changelog), but the message carrying the history never reached Kafka. The
    recovered worker sends it again: the history counts for the customer once, and
    nothing is left behind with the visitor."""
    bus = CrashingBus(defs(ROUTING), 1)
    customer = ids_on("c", 3)[0]
    anonymous = ids_on("anon", 0)[0]
    raws = [
        (anonymous, event("pv-a", "page_view", T0, anonymous=anonymous)),
        (anonymous, event("pv-b", "page_view", T0 + SECOND, anonymous=anonymous)),
        (customer, event("id-1", "identify", T0 + 2 * SECOND, customer, anonymous)),
        (customer, event("pv-c", "page_view", T0 + 3 * SECOND, customer)),
    ]
    for key, raw in raws:
        bus.put("customers", key.encode(), raw)
    with pytest.raises(Crash):
        bus.run()
    assert bus.aliases.get(anonymous) == customer  # the link is in the changelog, the history is not out
    request = next(f for f in bus.forwarded if f[2].get(m.KIND) == b"detach")
    assert bus.restart() == 1  # the kept hand-over
    bus.put(TOPICS.repartition, *request)  # the crashed round's input, read again
    bus.run()

    assert bus.states[customer].held is None, "nothing left waiting"
    assert bus.engine.explain(customer, T0 + DAY)["traits"]["views"] == 3  # type: ignore[index]
    expected, _ = replayed(bus.engine.definitions, [raw for _, raw in raws])
    assert exactly(bus.changes()) == by_id(expected)
    bus.fire(T0 + DAY)  # one more round
    assert not [key for key in bus.table if key.startswith(ANONYMOUS)]


def test_a_kept_hand_over_stays_until_its_round_is_acknowledged(defs) -> None:
    """The next round starts before Kafka has acknowledged the previous one (the worker
    does not wait): the kept hand-over must outlive such rounds, and go once its own
    round is acknowledged."""
    bus = RecordingBus(defs(ROUTING), 1)
    customer = ids_on("c", 3)[0]
    anonymous, other = ids_on("anon", 0)[0], ids_on("anon", 1)[0]
    for visitor in (anonymous, other):
        bus.put("behavior", visitor.encode(), event(f"pv-{visitor}", "page_view", T0, anonymous=visitor))
    bus.run()
    bus.put("customers", customer.encode(), event("id-1", "identify", T0 + SECOND, customer, anonymous))
    bus.put("customers", ids_on("d", 3)[0].encode(), event("id-2", "identify", T0 + SECOND, ids_on("d", 3)[0], other))
    home, visitors = partition_of(customer.encode(), PARTITIONS), partition_of(anonymous.encode(), PARTITIONS)

    bus.take(home, acknowledge=False)  # both requests go to the visitors' partitions
    bus.timers.mark_idle()  # which have read everything: the hand-overs need not wait
    handing = bus.take(visitors, acknowledge=False)  # the hand-over, kept
    bus.take(partition_of(other.encode(), PARTITIONS), acknowledge=False)  # the other one, a round later
    kept, later = ANONYMOUS + anonymous, ANONYMOUS + other
    assert CustomerState.from_bytes(bus.table[kept]).handed is not None
    bus.take(home, acknowledge=False)  # the history arrives; the hand-over's round is still unacknowledged
    assert CustomerState.from_bytes(bus.table[kept]).handed is not None
    assert not bus.processor.handed_acknowledged()
    bus.processor.confirm(handing)
    assert bus.processor.handed_acknowledged()  # the worker starts a round for it, input or not
    bus.take(home, acknowledge=False)
    assert kept not in bus.table
    assert bus.processor.partition_of[kept] == visitors  # the deletion goes where the state is (not the key's hash)
    assert CustomerState.from_bytes(bus.table[later]).handed is not None  # its round is not acknowledged yet
    assert bus.engine.explain(customer, T0 + DAY)["traits"]["views"] == 1  # type: ignore[index]


BROWSING = """
segments:
  browsing:
    when: since(last(page_view)) < 1h
"""


def test_a_flip_due_while_an_identify_is_in_flight_waits_without_a_round_per_tick(defs) -> None:
    """The customer's flip falls due while its events wait for a hand-over: it is put off
    (later in the partition's time, so the timer loop does not start a round at every
    tick), and fires at its own instant once the hand-over has arrived."""
    bus = RecordingBus(defs(BROWSING), 1)
    customer = ids_on("c", 3)[0]
    anonymous = ids_on("anon", 0)[0]
    raws = [(anonymous, event("pv-a", "page_view", T0 - SECOND, anonymous=anonymous)),
            (customer, event("pv-1", "page_view", T0, customer)),
            (customer, event("id-1", "identify", T0 + 10 * SECOND, customer, anonymous))]
    bus.put("behavior", anonymous.encode(), raws[0][1])
    bus.run()
    home = partition_of(customer.encode(), PARTITIONS)
    for key, raw in raws[1:]:
        bus.put("behavior", key.encode(), raw)
    bus.take(home)  # the identify now waits
    now = T0 + 2 * 3600 * SECOND
    bus.fire(now)
    waiting_until = bus.timers.next_instant()
    assert waiting_until is not None and waiting_until > now  # nothing due at the next tick
    bus.run()  # the hand-over arrives
    bus.fire(now)

    exits = [c for c in bus.changes() if c["change"] == "exit"]
    assert [(c["customer_id"], c["cause"], at_ms(c)) for c in exits] == [(customer, "timer", T0 + 3600 * SECOND)]
    expected, _ = replayed(bus.engine.definitions, [raw for _, raw in raws], as_of=now)
    assert exactly(bus.changes()) == by_id(expected)
