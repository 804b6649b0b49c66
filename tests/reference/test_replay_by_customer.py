"""`replay` runs one customer's history at a time and sorts the changes afterwards; it
must publish exactly what one pass over all events in time order publishes (same
changes, same order, same summary, same final state), whatever the definitions, with
visitors linked to customers by identify, duplicates, equal timestamps and an `as_of`
that cuts the stream short."""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine_harness import sort_events, to_event
from examples.traffic import TrafficConfig
from rules import Change, Engine, Event, load_definitions
from rules.language.model import Definitions
from single_pass import replay_in_one_pass
from strategies import scenarios
from stream.replay import replay
from test_engine_vs_reference import RANDOM

EXAMPLES = Path(__file__).parents[2] / "examples" / "segments"


def both(defs: Definitions, events: list[Event], as_of: int | None) -> None:
    by_customer, one_pass = Engine(defs), Engine(defs)
    got: list[Change] = []
    expected: list[Change] = []
    summary = replay(by_customer, events, got.append, as_of)
    expected_summary = replay_in_one_pass(one_pass, events, expected.append, as_of)
    assert got == expected
    assert summary == expected_summary
    assert by_customer.customers() == one_pass.customers()
    assert by_customer.aliases == one_pass.aliases
    for customer in one_pass.customers():
        assert by_customer.memberships(customer) == one_pass.memberships(customer)
        assert by_customer.states[customer].flips == one_pass.states[customer].flips


@settings(RANDOM, max_examples=300)
@given(scenarios(), st.integers(min_value=0, max_value=100))
def test_replay_by_customer_publishes_what_one_pass_in_time_order_does(load_defs, scenario, cut: int) -> None:
    defs = load_defs(scenario.model.to_yaml())
    events = [to_event(raw) for raw in sort_events(scenario.events)]
    both(defs, events, scenario.as_of)
    if events:  # an as_of inside the stream: later events and flips are left out
        both(defs, events, events[0].ts + (events[-1].ts - events[0].ts) * cut // 100)


def test_shop_traffic_replays_the_same_by_customer_and_in_one_pass(shop_events) -> None:
    events = shop_events(TrafficConfig(customers=300, days=120, seed=5))
    assert any(event.type == "identify" for event in events)
    both(load_definitions(EXAMPLES), events, None)


COUNTS = """
segments:
  buyer:
    when: count(order_placed) >= 1
  browser:
    when: count(page_view) >= 2
"""


def _event(event_id: str, kind: str, ts: int, customer: str | None = None, visitor: str | None = None) -> Event:
    raw: dict[str, object] = {"event_id": event_id, "type": kind, "timestamp": ts}
    if customer is not None:
        raw["customer_id"] = customer
    if visitor is not None:
        raw["anonymous_id"] = visitor
    return to_event(raw)


def test_one_visitor_linked_to_many_customers_goes_to_the_first_link(load_defs) -> None:
    """A chain of links (x to c1, c2 and c3, c3 also to y) is one history: the visitor's
    order belongs to c1, whose identify came first."""
    events = [_event("i0", "identify", 500, "c3", "y"), _event("o0", "order_placed", 600, visitor="x"),
              _event("i1", "identify", 1000, "c1", "x"), _event("i2", "identify", 2000, "c2", "x"),
              _event("i3", "identify", 3000, "c3", "x"), _event("v1", "page_view", 3500, "c4", "x"),
              _event("o1", "order_placed", 4000, visitor="x")]
    both(load_defs(COUNTS), events, None)
