"""The synthetic shop stream: what tests, the benchmark and the demo rely on."""
from __future__ import annotations

import gzip
import hashlib
import itertools
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from examples.traffic import MEMBERSHIP_SKU, TrafficConfig, generate, key_of, main, write_jsonl

SHOP_YAML = Path(__file__).resolve().parents[2] / "examples" / "segments" / "shop.yaml"
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
TYPE = re.compile(r"[a-z][a-z0-9_]*")


# --------------------------------------------------------------------------- helpers

def problem(raw: bytes) -> str | None:
    """Why the product contract (section 2) rejects `raw`, or None if it is a usable event (independent check)."""
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "not json"
    if not isinstance(d, dict):
        return "not an object"
    if not isinstance(d.get("event_id"), str) or not d["event_id"]:
        return "event_id"
    if not isinstance(d.get("type"), str) or not TYPE.fullmatch(d["type"]):
        return "type"
    if not any(isinstance(d.get(k), str) and d[k] for k in ("customer_id", "anonymous_id")):
        return "no id"
    if timestamp_ms(d.get("timestamp")) is None:
        return "timestamp"
    if "properties" in d and not isinstance(d["properties"], dict):
        return "properties"
    return None


def timestamp_ms(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return round(parsed.timestamp() * 1000)


@dataclass
class Event:
    position: int
    raw: bytes
    d: dict[str, Any]
    ts: int

    @property
    def type(self) -> str:
        return str(self.d["type"])

    @property
    def props(self) -> dict[str, Any]:
        props: dict[str, Any] = self.d.get("properties", {})
        return props


@dataclass
class Stream:
    raws: list[bytes]
    events: list[Event]  # usable ones, in arrival order
    bad: list[bytes]


def read(config: TrafficConfig) -> Stream:
    raws = list(generate(config))
    events, bad = [], []
    for i, raw in enumerate(raws):
        if problem(raw) is None:
            d = orjson.loads(raw)
            events.append(Event(i, raw, d, timestamp_ms(d["timestamp"])))  # type: ignore[arg-type]
        else:
            bad.append(raw)
    return Stream(raws, events, bad)


@pytest.fixture(scope="module")
def shop() -> Stream:
    """The default shop with 2,000 customers."""
    return read(TrafficConfig(customers=2000))


@pytest.fixture(scope="module")
def clean() -> Stream:
    """No dirt at all: no bad, late or duplicate events."""
    return read(TrafficConfig(customers=500, bad_event_rate=0, late_rate=0, duplicate_rate=0))


def digest(config: TrafficConfig) -> str:
    h = hashlib.sha256()
    for raw in generate(config):
        h.update(raw)
        h.update(b"\n")
    return h.hexdigest()


# --------------------------------------------------------------------------- determinism

def test_same_seed_same_bytes() -> None:
    config = TrafficConfig(customers=300, days=120)
    assert digest(config) == digest(TrafficConfig(customers=300, days=120))


def test_other_seed_other_stream() -> None:
    config = TrafficConfig(customers=300, days=120)
    assert digest(config) != digest(replace(config, seed=8))


def test_generate_is_lazy() -> None:
    first = list(itertools.islice(generate(TrafficConfig(customers=100_000)), 1000))
    assert len(first) == 1000


# --------------------------------------------------------------------------- shape

def test_without_dirt_every_event_is_valid_and_in_order(clean: Stream) -> None:
    assert not clean.bad
    stamps = [e.ts for e in clean.events]
    assert stamps == sorted(stamps)
    ids = [e.d["event_id"] for e in clean.events]
    assert len(ids) == len(set(ids))


def test_events_follow_spec(shop: Stream) -> None:
    config = TrafficConfig()
    start = int(config.start.timestamp() * 1000)
    end = start + int(config.days * DAY_MS)
    formats: Counter[str] = Counter()
    for e in shop.events:
        assert set(e.d) <= {"event_id", "type", "customer_id", "anonymous_id", "timestamp", "properties"}
        assert start <= e.ts < end + HOUR_MS
        stamp = e.d["timestamp"]
        formats["int" if isinstance(stamp, int) else "Z" if stamp.endswith("Z") else "offset"] += 1
    # producers differ: epoch ms, UTC and local offsets all occur
    assert min(formats.values()) > len(shop.events) * 0.05, formats


def test_event_mix(shop: Stream) -> None:
    types = Counter(e.type for e in shop.events)
    for etype in ("customer_created", "customer_updated", "identify", "page_view", "product_viewed",
                  "added_to_cart", "checkout_started", "order_placed", "order_refunded",
                  "email_opened", "email_clicked"):
        assert types[etype] > 0, etype
    assert types["product_viewed"] > types["order_placed"] > types["order_refunded"]


def test_customers_are_created_before_anything_else(shop: Stream) -> None:
    created: dict[str, int] = {}
    for e in shop.events:
        cid = e.d.get("customer_id")
        if cid is None:
            continue
        if e.type == "customer_created":
            created.setdefault(cid, e.ts)
            continue
        assert cid in created, f"{cid} has {e.type} before customer_created"
        assert created[cid] <= e.ts
    assert len(created) == 2000


def test_profiles(shop: Stream) -> None:
    config = TrafficConfig()
    long_standing = 0
    for e in shop.events:
        if e.type != "customer_created":
            continue
        assert {"email", "name", "country"} <= set(e.props)
        created_at = e.props.get("created_at")
        if created_at is not None:
            created = datetime.fromisoformat(created_at)
            assert created.tzinfo is not None
            if (config.start - created).days > 2 * 365:
                long_standing += 1
    assert long_standing > 100  # accounts older than two years exist (the vip scenario)


def test_order_totals_are_the_sum_of_their_items(shop: Stream) -> None:
    orders = [e for e in shop.events if e.type == "order_placed"]
    assert orders
    categories: set[str] = set()
    for e in orders:
        p = e.props
        assert p["currency"] and isinstance(p["backordered"], bool)
        assert p["items"]
        for item in p["items"]:
            assert {"sku", "category", "quantity", "price"} <= set(item)
            assert item["quantity"] >= 1 and item["price"] > 0
            categories.add(item["category"])
        expected = round(sum(i["quantity"] * i["price"] for i in p["items"]), 2)
        assert abs(p["total"] - expected) < 1e-6, (p["total"], expected)
        assert round(p["total"], 2) == p["total"]
        assert "customer_id" in e.d
    assert {"hair", "skin", "makeup", "fragrance", "tools"} <= categories


def test_refunds_follow_an_order_and_never_exceed_it(shop: Stream) -> None:
    orders = {e.props["order_id"]: e for e in shop.events if e.type == "order_placed"}
    refunds = [e for e in shop.events if e.type == "order_refunded"]
    assert refunds
    for r in refunds:
        order = orders[r.props["order_id"]]
        assert order.d["customer_id"] == r.d["customer_id"]
        assert 0 < r.props["amount"] <= order.props["total"]
        assert r.ts > order.ts


# --------------------------------------------------------------------------- dirt

def test_bad_events_at_the_configured_rate_and_really_bad() -> None:
    stream = read(TrafficConfig(customers=500, bad_event_rate=0.02))
    share = len(stream.bad) / len(stream.raws)
    assert 0.014 < share < 0.026, share
    reasons = Counter(problem(raw) for raw in stream.bad)
    for reason in ("not json", "not an object", "event_id", "type", "timestamp", "no id"):
        assert reasons[reason] > 0, reasons
    assert all(key_of(raw) is None for raw in stream.bad)


def test_default_bad_rate(shop: Stream) -> None:
    expected = TrafficConfig().bad_event_rate * len(shop.raws)
    assert expected / 2 < len(shop.bad) < expected * 2


def test_duplicates_repeat_the_exact_bytes_of_an_earlier_event(shop: Stream) -> None:
    seen: dict[str, bytes] = {}
    repeats = 0
    for e in shop.events:
        event_id = e.d["event_id"]
        if event_id in seen:
            assert seen[event_id] == e.raw
            repeats += 1
        else:
            seen[event_id] = e.raw
    expected = TrafficConfig().duplicate_rate * len(shop.events)
    assert expected / 2 < repeats < expected * 2


def test_late_events_are_at_most_an_hour_out_of_order(shop: Stream) -> None:
    newest = -1
    late = 0
    for e in shop.events:
        if e.ts < newest:
            late += 1
            assert newest - e.ts <= HOUR_MS, (e.raw, newest - e.ts)
        newest = max(newest, e.ts)
    config = TrafficConfig()
    expected = config.late_rate * len(shop.events)
    assert expected / 2 < late < (config.late_rate + config.duplicate_rate) * len(shop.events) * 2


# --------------------------------------------------------------------------- identity

def test_identify_links_an_anonymous_visitor_seen_before(shop: Stream) -> None:
    seen_anonymous: set[str] = set()
    created: set[str] = set()
    identifies = 0
    for e in shop.events:
        if e.type == "customer_created":
            created.add(e.d["customer_id"])
        if e.type == "identify":
            identifies += 1
            assert e.d["anonymous_id"] in seen_anonymous
            assert e.d["customer_id"] in created
        elif "anonymous_id" in e.d:
            seen_anonymous.add(e.d["anonymous_id"])
    assert identifies > 50


def test_anonymous_visitors_exist(shop: Stream) -> None:
    anonymous_only = {e.d["anonymous_id"] for e in shop.events if "customer_id" not in e.d}
    identified = {e.d["anonymous_id"] for e in shop.events if e.type == "identify"}
    assert len(anonymous_only - identified) > 200  # never signed up
    assert len(anonymous_only & identified) > 50   # browsed, then signed up or logged in


def test_key_of() -> None:
    assert key_of(b'{"event_id":"1","type":"page_view","customer_id":"c-1","anonymous_id":"a",'
                  b'"timestamp":1735689600000}') == b"c-1"
    assert key_of(b'{"event_id":"1","type":"page_view","anonymous_id":"anon-1",'
                  b'"timestamp":"2025-01-01T00:00:00Z"}') == b"anon-1"
    assert key_of(b'{"event_id":"1","type":"Page View","customer_id":"c-1","timestamp":1}') is None
    assert key_of(b'{"event_id":"1","type":"page_view","customer_id":"c-1","timestamp":"soon"}') is None
    assert key_of(b"[1, 2]") is None
    assert key_of(b"\xff\xfe") is None


def test_key_of_matches_every_usable_event(shop: Stream) -> None:
    for e in shop.events[:5000]:
        expected = e.d.get("customer_id") or e.d["anonymous_id"]
        assert key_of(e.raw) == expected.encode()


# --------------------------------------------------------------------------- scenarios

def test_every_seed_scenario_has_customers(shop: Stream) -> None:
    """Each segment of examples/segments/shop.yaml gets members from the default shop."""
    end = max(e.ts for e in shop.events)
    spend: defaultdict[str, float] = defaultdict(float)
    biggest: defaultdict[str, float] = defaultdict(float)
    orders: defaultdict[str, list[int]] = defaultdict(list)
    last_event: dict[str, int] = {}
    views: defaultdict[str, list[int]] = defaultdict(list)
    created_at: dict[str, int] = {}
    backordered, members, hair, carted = set(), set(), set(), set()
    for e in shop.events:
        cid = e.d.get("customer_id")
        if cid is None:
            continue
        last_event[cid] = max(last_event.get(cid, 0), e.ts)
        p = e.props
        if e.type == "customer_created":
            created_at[cid] = timestamp_ms(p.get("created_at", e.d["timestamp"]))  # type: ignore[assignment]
        elif e.type == "order_placed":
            orders[cid].append(e.ts)
            biggest[cid] = max(biggest[cid], p["total"])
            if p["backordered"]:
                backordered.add(cid)
            if any(i["sku"] == MEMBERSHIP_SKU for i in p["items"]):
                members.add(cid)
            if any(i["category"] == "hair" for i in p["items"]):
                hair.add(cid)
        elif e.type == "added_to_cart":
            carted.add(cid)
        elif e.type == "product_viewed":
            views[cid].append(e.ts)
    # totals per distinct order (duplicates are applied once)
    seen: set[str] = set()
    for e in shop.events:
        if e.type in ("order_placed", "order_refunded") and e.d["event_id"] not in seen:
            seen.add(e.d["event_id"])
            sign = 1 if e.type == "order_placed" else -1
            spend[e.d["customer_id"]] += sign * e.props["total" if sign > 0 else "amount"]

    big_spenders = {c for c, v in spend.items() if v > 5000}
    assert len(big_spenders) >= 5                                   # platinum
    assert any(2000 < v <= 5000 for v in spend.values())            # gold
    assert sum(1 for v in spend.values() if v > 1000) >= 20         # loyalty
    assert any(end - created_at[c] > 2 * 365 * DAY_MS for c in big_spenders)  # vip
    assert any(v > 500 for v in biggest.values())                   # big_order
    assert backordered and members and hair                          # backordered, membership, hair
    lapsed = [c for c, stamps in orders.items()
              if end - max(stamps) > 90 * DAY_MS and last_event[c] == max(stamps)]
    assert len(lapsed) >= 10                                        # silent for > 90 days after an order
    assert carted - set(orders)                                     # cart abandoners
    assert any(sum(1 for t in stamps if 0 <= s - t < 7 * DAY_MS) >= 5
               for stamps in views.values() for s in stamps)         # engaged_browser
    assert any(end - t < 30 * DAY_MS for t in created_at.values())   # new_customer


# --------------------------------------------------------------------------- files and CLI

@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz"])
def test_write_jsonl(tmp_path: Path, name: str) -> None:
    config = TrafficConfig(customers=200, days=60)
    path = tmp_path / name
    count = write_jsonl(path, config)
    data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    lines = data.split(b"\n")
    assert lines[-1] == b""
    assert lines[:-1] == list(generate(config))
    assert count == len(lines) - 1


def test_command_line(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl.gz"
    assert main(["--customers", "50", "--days", "30", "--seed", "3", "--out", str(out)]) == 0
    lines = gzip.decompress(out.read_bytes()).splitlines()
    assert lines == list(generate(TrafficConfig(customers=50, days=30, seed=3)))


def test_limit(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    assert write_jsonl(out, TrafficConfig(customers=100), limit=123) == 123
    assert len(out.read_bytes().splitlines()) == 123


def test_start_moves_the_stream() -> None:
    later = TrafficConfig(customers=20, days=10, start=datetime.fromisoformat("2026-06-01T00:00:00+00:00"))
    stamps = [timestamp_ms(orjson.loads(raw)["timestamp"]) for raw in generate(later) if problem(raw) is None]
    begin = int(later.start.timestamp() * 1000)
    assert stamps and all(t is not None and begin <= t < begin + 11 * DAY_MS for t in stamps)


# --------------------------------------------------------------------------- the example segments

def test_example_segments_read_like_the_spec() -> None:
    data = yaml.safe_load(SHOP_YAML.read_text())
    assert set(data) == {"traits", "segments", "tiers", "destinations"}
    for name, segment in data["segments"].items():
        assert segment.get("description"), f"{name} has no description"
    assert data["segments"]["vip"]["holdout"] == "10%"
    levels = data["tiers"]["spend_tier"]
    assert [level["name"] for level in levels] == ["platinum", "gold", "silver"]
    discounts = [level["on_enter"][0]["pricing"] for level in levels]
    assert discounts == [{"price_list": "platinum", "discount_percent": 70},
                         {"price_list": "gold", "discount_percent": 50},
                         {"price_list": "silver", "discount_percent": 30}]
    assert data["destinations"] == {
        "email": {"type": "smtp", "host": "${SMTP_HOST}", "port": 1025, "sender": "shop@example.com",
                  "to": "${profile.email}"},
        "group": {"type": "redis"},
        "pricing": {"type": "redis"},
        "crm": {"type": "webhook", "url": "${CRM_URL}", "secret": "${CRM_SECRET}"},
        "backorders": {"type": "csv", "path": "exports/backordered.csv"},
    }


def test_example_segments_validate() -> None:
    rules = pytest.importorskip("rules")
    definitions = rules.load_definitions(SHOP_YAML.parent)
    assert {"vip", "loyalty", "lapsed", "membership_pricing", "engaged_browser", "platinum"} <= set(
        definitions.segments)


def test_every_example_segment_gets_members_in_replay(tmp_path: Path) -> None:
    """`segmenter replay` of the default shop: each segment and tier level sees an enter."""
    cli = pytest.importorskip("stream.cli")
    events, changes = tmp_path / "events.jsonl.gz", tmp_path / "changes.jsonl"
    write_jsonl(events, TrafficConfig(customers=2000))
    assert cli.main(["replay", "--segments", str(SHOP_YAML.parent), "--events", str(events),
                     "--changes", str(changes)]) == 0
    entered = {orjson.loads(line)["segment"] for line in changes.read_bytes().splitlines()
               if orjson.loads(line)["change"] == "enter"}
    data = yaml.safe_load(SHOP_YAML.read_text())
    expected = set(data["segments"]) | {level["name"] for level in data["tiers"]["spend_tier"]}
    assert entered == expected
