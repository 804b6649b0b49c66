"""`Engine.apply` takes a short path for the common event (a known customer, in time,
under the current definitions, no flip due). What that path leaves to the full step
must still happen: a state last evaluated under other definitions is evaluated in
full on its next event, whatever the event's type, and a late event is evaluated at
the customer's latest instant, not at its own older timestamp."""
from __future__ import annotations

from pathlib import Path

import orjson

from rules import Engine, Event, parse_event
from rules.evaluate.engine import MAX_STEPS
from rules.evaluate.state import RECENT_EVENT_IDS
from rules.testing import definitions_from_text
from rules.timeutil import DAY

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

BEFORE = """
traits:
  orders: count(order_placed)
segments:
  big_spender:
    when: sum(order_placed.total) > 1000
"""
AFTER = BEFORE + """
  buyer:
    when: orders >= 1
"""


def event(event_id: str, kind: str, ts: int, **properties: object) -> Event:
    return parse_event(orjson.dumps({"event_id": event_id, "type": kind, "customer_id": "c1", "timestamp": ts,
                                     "properties": properties}))


def test_a_state_of_older_definitions_is_evaluated_in_full_on_its_next_event(tmp_path: Path) -> None:
    old = Engine(definitions_from_text(BEFORE, tmp_path / "before"))
    old.apply(event("e1", "order_placed", T0, total=50))
    new = Engine(definitions_from_text(AFTER, tmp_path / "after"), states=old.states)
    # page_view feeds no trait: only the definitions change can bring `buyer` in
    changes = new.apply(event("e2", "page_view", T0 + DAY))
    assert [(c.segment, c.change, c.seq, c.cause) for c in changes] == [("buyer", "enter", 1, "e2")]


def test_a_late_event_is_evaluated_at_the_latest_instant_seen(tmp_path: Path) -> None:
    engine = Engine(definitions_from_text("""
segments:
  settled_repeat_buyer:
    when: count(order_placed) >= 2 and since(profile.created_at) > 30d
""", tmp_path / "defs"))
    engine.apply(event("e0", "customer_created", T0))
    engine.apply(event("e1", "order_placed", T0 + 40 * DAY))
    # arrives after e1 but happened 10 days after signing up: at the customer's clock
    # (day 40) both parts hold; at its own time the account was too young
    changes = engine.apply(event("e2", "order_placed", T0 + 10 * DAY))
    assert [(c.segment, c.change, c.cause) for c in changes] == [("settled_repeat_buyer", "enter", "e2")]
    assert engine.memberships("c1")[0] == ["settled_repeat_buyer"]


def test_any_number_of_event_type_names_keeps_the_engine_bounded(tmp_path: Path) -> None:
    """Type names come from the input: a stream of ever new ones must not grow the
    engine's per-type memory, and events past the bound are still applied."""
    engine = Engine(definitions_from_text(BEFORE, tmp_path / "defs"))
    engine.apply(event("e0", "order_placed", T0, total=600))
    for n in range(MAX_STEPS + 200):
        engine.apply(event(f"x{n}", f"kind_{n}", T0 + n + 1))
    assert len(engine._steps) <= MAX_STEPS
    changes = engine.apply(event("e1", "order_placed", T0 + DAY, total=600))
    assert [(c.segment, c.change, c.cause) for c in changes] == [("big_spender", "enter", "e1")]


def test_a_redelivered_identify_after_a_long_visit_is_still_a_duplicate(tmp_path: Path) -> None:
    """Merging a visitor who sent more events than a state remembers ids of must not push
    the identify's own id out: a redelivery of it would count as a second identify."""
    engine = Engine(definitions_from_text("""
segments:
  identified:
    when: count(identify) >= 1
  identified_twice:
    when: count(identify) >= 2
""", tmp_path))
    visits = RECENT_EVENT_IDS + 10
    for n in range(visits):
        engine.apply(parse_event(orjson.dumps({"event_id": f"pv-{n}", "type": "page_view", "anonymous_id": "v1",
                                               "timestamp": T0 + n})))
    identify = parse_event(orjson.dumps({"event_id": "id-1", "type": "identify", "anonymous_id": "v1",
                                         "customer_id": "c1", "timestamp": T0 + DAY}))
    assert [c.segment for c in engine.apply(identify)] == ["identified"]
    assert engine.apply(identify) == []
    assert engine.duplicates == 1
    assert engine.memberships("c1")[0] == ["identified"]


def test_a_visitors_windows_stay_bounded_when_its_events_come_newest_first(tmp_path: Path) -> None:
    """A visitor is never evaluated, but its clock moves with its events: a backfill
    delivered newest first then drops what can never count again, as a customer's
    does, instead of keeping a bucket for every hour of the history."""
    engine = Engine(definitions_from_text(
        "segments:\n  browser:\n    when: count(page_view, within=7d) >= 5\n", tmp_path / "defs"))
    hours = 2_000
    for hour in reversed(range(hours)):
        engine.apply(parse_event(orjson.dumps({"event_id": f"p{hour}", "type": "page_view", "anonymous_id": "v1",
                                               "timestamp": T0 + hour * 3_600_000})))
    (buckets,) = engine.states["anon:v1"].slots.values()
    assert len(buckets) <= 7 * 24 + 2  # type: ignore[arg-type]  # one 1h bucket per hour of the window
