"""Replay keeps only the properties its definitions read (`Program.property_readers`,
passed to the loader as `read_properties`); with the others left out it must publish
exactly what it publishes with every property kept, and end with the same traits."""
from __future__ import annotations

from pathlib import Path

import orjson
from hypothesis import given, settings

from engine_harness import engine_trait_values, sort_events, to_event
from examples.traffic import TrafficConfig, write_jsonl
from rules import Change, Engine, Event, load_definitions, parse_event
from rules.evaluate.events import UNREAD
from rules.language.model import Definitions
from strategies import scenarios
from stream.eventfile import load_events
from stream.replay import replay
from test_engine_vs_reference import RANDOM

EXAMPLES = Path(__file__).parents[2] / "examples" / "segments"


def replayed(defs: Definitions, events: list[Event], as_of: int | None = None) -> tuple[Engine, list[Change]]:
    engine = Engine(defs)
    changes: list[Change] = []
    replay(engine, events, changes.append, as_of)
    return engine, changes


def assert_same_outcome(defs: Definitions, full: list[Event], reduced: list[Event], as_of: int | None) -> None:
    kept, kept_changes = replayed(defs, full, as_of)
    left_out, left_out_changes = replayed(defs, reduced, as_of)
    assert left_out_changes == kept_changes
    assert left_out.customers() == kept.customers()
    now = as_of if as_of is not None else (full[-1].ts if full else 0)
    for customer in kept.customers():
        assert left_out.memberships(customer) == kept.memberships(customer)
        assert engine_trait_values(left_out, customer, now) == engine_trait_values(kept, customer, now)


@settings(RANDOM, max_examples=300)
@given(scenarios())
def test_random_definitions_publish_the_same_without_the_properties_they_do_not_read(load_defs, scenario) -> None:
    defs = load_defs(scenario.model.to_yaml())
    readers = Engine(defs).program.property_readers
    raws = sort_events(scenario.events)
    full = [to_event(raw) for raw in raws]
    reduced = [parse_event(orjson.dumps(raw), read_properties=readers) for raw in raws]
    for before, after in zip(full, reduced):
        assert after.properties == (before.properties if before.type in readers else UNREAD)
    assert_same_outcome(defs, full, reduced, scenario.as_of)


def test_a_filter_alone_makes_its_event_type_a_property_reader(load_defs) -> None:
    defs = load_defs("segments:\n  sale_browser:\n    when: count(page_view, where=url == '/sale') >= 1\n"
                     "  browser:\n    when: count(added_to_cart) >= 1\n")
    readers = Engine(defs).program.property_readers
    assert "page_view" in readers and "added_to_cart" not in readers


def test_shop_traffic_loads_and_replays_the_same_keeping_only_what_the_examples_read(tmp_path: Path) -> None:
    path = tmp_path / "shop.jsonl"
    write_jsonl(path, TrafficConfig(customers=300, days=120, seed=11))
    defs = load_definitions(EXAMPLES)
    readers = Engine(defs).program.property_readers
    assert {"order_placed", "order_refunded", "customer_created", "customer_updated"} <= readers
    assert "page_view" not in readers and "product_viewed" not in readers
    full, reduced = load_events(path), load_events(path, read_properties=readers)
    assert reduced.bad == full.bad and reduced.bad  # the same bad lines, with the same reasons
    assert [(e.event_id, e.type, e.ts, e.customer_id, e.anonymous_id) for e in reduced.events] == \
        [(e.event_id, e.type, e.ts, e.customer_id, e.anonymous_id) for e in full.events]
    assert all(e.properties is UNREAD for e in reduced.events if e.type not in readers)
    assert_same_outcome(defs, full.events, reduced.events, None)
