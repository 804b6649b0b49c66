"""Specific SPEC / README promises, each with its expectation worked out by hand.

Instants are written as offsets from T0 (2026-01-01T00:00:00Z, which is aligned to
every bucket width), so every expected `at` can be checked by reading the test.
"""
from __future__ import annotations

import textwrap

import pytest

from engine_harness import engine_trait_values, run_replay, to_event
from rules import Engine
from rules.evaluate.windows import bucket_width

SECOND = 1_000
HOUR = 3_600 * SECOND
DAY = 24 * HOUR
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def defs_from(load_defs, text: str):
    return load_defs(textwrap.dedent(text))


def order(event_id: str, customer: str, ts: int, total: float = 10, **extra: object) -> dict:
    return {"event_id": event_id, "type": "order_placed", "customer_id": customer, "timestamp": ts,
            "properties": {"total": total, **extra}}


def event(event_id: str, kind: str, customer: str, ts: int, **properties: object) -> dict:
    raw: dict[str, object] = {"event_id": event_id, "type": kind, "customer_id": customer, "timestamp": ts}
    if properties:
        raw["properties"] = properties
    return raw


def summary(changes) -> list[tuple[str, str, int, int, str]]:
    """(segment, change, seq, at - T0, cause) in publication order."""
    return [(c.segment, c.change, c.seq, c.at - T0, c.cause) for c in changes]


# -- time -------------------------------------------------------------------------------


def test_order_exactly_90_days_later_keeps_a_window_member_in(load_defs) -> None:
    """SPEC 3: an order exactly 90 days after the previous one keeps a within=90d
    member in: no exit and enter pair at that instant (the first order's bucket is
    aligned, so it counts until exactly T0 + 90d)."""
    assert T0 % bucket_width(90 * DAY) == 0
    defs = defs_from(load_defs, """
        segments:
          active:
            when: count(order_placed, within=90d) >= 1
    """)
    events = [order("o1", "c1", T0), order("o2", "c1", T0 + 90 * DAY)]
    engine, changes = run_replay(defs, events, as_of=T0 + 200 * DAY)
    # o2's bucket starts at T0 + 90d and stops counting at T0 + 180d.
    assert summary(changes) == [
        ("active", "enter", 1, 0, "o1"),
        ("active", "exit", 2, 180 * DAY, "timer"),
    ]
    assert engine.memberships("c1") == ([], [])


@pytest.mark.parametrize("offset", [5 * HOUR, 5 * HOUR + 12_345, 1])
def test_order_90_days_later_keeps_a_window_member_in_wherever_it_falls_in_its_bucket(load_defs, offset) -> None:
    """SPEC 3's example for orders at any time of day, not only at a bucket's start:
    the first order leaves the 90-day window exactly when the second comes, so the
    count stays 3 and the frequent buyer gets no exit (and no second welcome)."""
    defs = defs_from(load_defs, """
        segments:
          frequent_buyer:
            when: count(order_placed, within=90d) >= 3
    """)
    t = T0 + offset  # inside the 6h bucket that starts at T0, not at its start
    events = [order("o1", "c1", t), order("o2", "c1", t + 10 * DAY), order("o3", "c1", t + 20 * DAY),
              order("o4", "c1", t + 90 * DAY)]
    _, changes = run_replay(defs, events, as_of=t + 200 * DAY)
    assert summary(changes) == [
        ("frequent_buyer", "enter", 1, offset + 20 * DAY, "o3"),
        ("frequent_buyer", "exit", 2, offset + 100 * DAY, "timer"),  # o2 leaves: o3 and o4 remain
    ]


def test_orders_sharing_a_bucket_leave_the_window_with_the_earliest(load_defs) -> None:
    """README: where events share a bucket, the later ones may leave up to one bucket
    width early, with the earliest of them, and never before it."""
    defs = defs_from(load_defs, """
        segments:
          two_recent:
            when: count(order_placed, within=90d) >= 2
    """)
    events = [order("o1", "c1", T0 + 1 * HOUR), order("o2", "c1", T0 + 3 * HOUR)]  # one 6h bucket
    _, changes = run_replay(defs, events, as_of=T0 + 100 * DAY)
    assert summary(changes) == [
        ("two_recent", "enter", 1, 3 * HOUR, "o2"),
        ("two_recent", "exit", 2, 1 * HOUR + 90 * DAY, "timer"),
    ]


def test_order_exactly_90_days_later_keeps_a_since_member_in(load_defs) -> None:
    """README: `since(last(order_placed)) <= 90d` member stays in at exactly +90d."""
    defs = defs_from(load_defs, """
        segments:
          recent:
            when: since(last(order_placed)) <= 90d
    """)
    events = [order("o1", "c1", T0 + 5), order("o2", "c1", T0 + 5 + 90 * DAY)]
    _, changes = run_replay(defs, events, as_of=T0 + 300 * DAY)
    # `<=` stops holding 1 ms after last + 90d.
    assert summary(changes) == [
        ("recent", "enter", 1, 5, "o1"),
        ("recent", "exit", 2, 5 + 180 * DAY + 1, "timer"),
    ]


@pytest.mark.parametrize(("op", "flip"), [(">", 1), (">=", 0)])
def test_since_flips_at_the_boundary_or_one_ms_after(load_defs, op: str, flip: int) -> None:
    """README: a strict `since(t) > 90d` first holds 1 ms after t + 90d; `>=` at t + 90d."""
    defs = defs_from(load_defs, f"""
        segments:
          lapsed:
            when: count(order_placed) >= 1 and since(last(order_placed)) {op} 90d
    """)
    t = T0 + 12_345  # deliberately not on any bucket or second boundary
    _, changes = run_replay(defs, [order("o1", "c1", t)], as_of=t + 100 * DAY)
    assert [(c.segment, c.change, c.seq, c.at - t, c.cause) for c in changes] == [
        ("lapsed", "enter", 1, 90 * DAY + flip, "timer")]
    # Just before the flip nothing has happened yet.
    _, changes = run_replay(defs, [order("o1", "c1", t)], as_of=t + 90 * DAY + flip - 1)
    assert changes == []


def test_signup_window_exits_exactly_at_30_days(load_defs) -> None:
    defs = defs_from(load_defs, """
        segments:
          new_customer:
            when: since(profile.created_at) < 30d
    """)
    created = T0 + 7 * HOUR
    events = [event("e0", "customer_created", "c1", T0, created_at="2026-01-01T09:00:00+02:00")]
    _, changes = run_replay(defs, events, as_of=T0 + 60 * DAY)
    # created_at given as RFC 3339 text is read as an instant: 07:00Z.
    assert summary(changes) == [
        ("new_customer", "enter", 1, 0, "e0"),
        ("new_customer", "exit", 2, created - T0 + 30 * DAY, "timer"),
    ]


# -- hysteresis and tiers -------------------------------------------------------------------


def test_exit_when_gives_hysteresis(load_defs) -> None:
    """Enter above 1000, stay in at 950, leave below 900, no re-entry until above 1000."""
    defs = defs_from(load_defs, """
        traits:
          lifetime_spend: sum(order_placed.total) - sum(order_refunded.amount)
        segments:
          loyalty:
            when: lifetime_spend > 1000
            exit_when: lifetime_spend < 900
    """)
    events = [
        order("o1", "c1", T0 + 1 * DAY, 1100),                             # 1100: enter
        event("r1", "order_refunded", "c1", T0 + 2 * DAY, amount=150),     # 950: stay
        event("r2", "order_refunded", "c1", T0 + 3 * DAY, amount=60),      # 890: exit
        order("o2", "c1", T0 + 4 * DAY, 50),                               # 940: stay out
        order("o3", "c1", T0 + 5 * DAY, 100),                              # 1040: enter
    ]
    engine, changes = run_replay(defs, events)
    assert summary(changes) == [
        ("loyalty", "enter", 1, 1 * DAY, "o1"),
        ("loyalty", "exit", 2, 3 * DAY, "r2"),
        ("loyalty", "enter", 3, 5 * DAY, "o3"),
    ]
    assert engine_trait_values(engine, "c1", T0 + 5 * DAY) == {"lifetime_spend": 1040}


def test_tier_move_exits_the_old_level_before_entering_the_new_one(load_defs) -> None:
    defs = defs_from(load_defs, """
        traits:
          lifetime_spend: sum(order_placed.total) - sum(order_refunded.amount)
        tiers:
          spend_tier:
            - {name: platinum, when: lifetime_spend > 5000}
            - {name: gold, when: lifetime_spend > 2000}
            - {name: silver, when: "true"}
    """)
    engine = Engine(defs)
    steps = [
        (order("o1", "c1", T0, 100), [("silver", "enter", 1, 0, "o1")]),                     # 100
        (order("o2", "c1", T0 + HOUR, 2500), [("silver", "exit", 2, HOUR, "o2"),              # 2600
                                               ("gold", "enter", 1, HOUR, "o2")]),
        (order("o3", "c1", T0 + 2 * HOUR, 3000), [("gold", "exit", 2, 2 * HOUR, "o3"),        # 5600
                                                   ("platinum", "enter", 1, 2 * HOUR, "o3")]),
        (event("r1", "order_refunded", "c1", T0 + 3 * HOUR, amount=4000),                     # 1600
         [("platinum", "exit", 2, 3 * HOUR, "r1"), ("silver", "enter", 3, 3 * HOUR, "r1")]),
    ]
    for raw, expected in steps:
        assert summary(engine.apply(to_event(raw))) == expected
    assert engine.memberships("c1") == (["silver"], [])


# -- holdout ---------------------------------------------------------------------------------


HOLDOUT_DEFS = """
    segments:
      vip:
        when: count(page_view) >= 1
        holdout: 10%
"""


def _holdout_flags(defs, customers: list[str]) -> dict[str, bool]:
    engine = Engine(defs)
    flags: dict[str, bool] = {}
    for i, customer in enumerate(customers):
        for change in engine.apply(to_event(event(f"p{i}", "page_view", customer, T0 + i))):
            assert change.segment == "vip" and change.change == "enter"
            flags[customer] = change.holdout
        segments, holdout = engine.memberships(customer)
        assert segments == ["vip"]  # holdout members are members (listed in both)
        assert holdout == (["vip"] if flags[customer] else [])
    return flags


def test_holdout_is_about_the_share_and_deterministic(load_defs) -> None:
    customers = [f"customer-{i}" for i in range(5000)]
    flags = _holdout_flags(defs_from(load_defs, HOLDOUT_DEFS), customers)
    share = sum(flags.values()) / len(customers)
    assert 0.07 <= share <= 0.13
    # Another engine, and another version of the definitions: the same control group.
    assert _holdout_flags(defs_from(load_defs, HOLDOUT_DEFS), customers) == flags
    changed = HOLDOUT_DEFS + """
      browsing:
        when: count(page_view) >= 3
    """
    assert _holdout_flags(defs_from(load_defs, changed), customers) == flags


def test_holdout_customer_stays_holdout_across_exit_and_re_entry(load_defs) -> None:
    defs = defs_from(load_defs, """
        segments:
          carted:
            when: count(added_to_cart, within=1d) >= 1
            holdout: 50%
    """)
    events = [event(f"a{i}", "added_to_cart", f"c{c}", T0 + i * 3 * DAY) for c in range(40) for i in range(3)]
    _, changes = run_replay(defs, events)
    per_customer: dict[str, set[bool]] = {}
    for change in changes:
        per_customer.setdefault(change.customer_id, set()).add(change.holdout)
    assert all(len(flags) == 1 for flags in per_customer.values())
    assert {True} in per_customer.values() and {False} in per_customer.values()


# -- duplicates and identity --------------------------------------------------------------


def test_duplicate_event_ids_change_nothing_and_count_once(load_defs) -> None:
    defs = defs_from(load_defs, """
        segments:
          two_orders:
            when: count(order_placed) >= 2
          big_spender:
            when: sum(order_placed.total) > 150
    """)
    engine = Engine(defs)
    o1 = order("o1", "c1", T0, 100)
    assert engine.apply(to_event(o1)) == []
    assert engine.apply(to_event(o1)) == []  # a producer retry: count 1, spend 100
    # If the retry had been counted, two_orders would enter now, and big_spender below.
    assert summary(engine.apply(to_event(order("o2", "c1", T0 + HOUR, 40)))) == [
        ("two_orders", "enter", 1, HOUR, "o2")]
    assert engine.apply(to_event(o1)) == []
    assert engine.apply(to_event({**o1, "timestamp": T0 + 2 * HOUR})) == []  # same id, later redelivery
    assert engine.duplicates == 3
    assert engine.memberships("c1") == (["two_orders"], [])
    # The same event id for another customer is that customer's own event.
    assert summary(engine.apply(to_event(order("o1", "c2", T0, 200)))) == [("big_spender", "enter", 1, 0, "o1")]
    assert engine.apply(to_event(order("o1", "c2", T0, 200))) == []
    assert engine.memberships("c2") == (["big_spender"], [])


def test_identify_merges_the_visitor_and_routes_later_visitor_events(load_defs) -> None:
    defs = defs_from(load_defs, """
        segments:
          carted:
            when: count(added_to_cart) >= 1
          cart_lover:
            when: count(added_to_cart) >= 3
    """)
    events = [
        {"event_id": "a1", "type": "added_to_cart", "anonymous_id": "v1", "timestamp": T0},
        {"event_id": "a2", "type": "added_to_cart", "anonymous_id": "v1", "timestamp": T0 + HOUR},
        {"event_id": "i1", "type": "identify", "anonymous_id": "v1", "customer_id": "c1", "timestamp": T0 + 2 * HOUR},
        {"event_id": "i2", "type": "identify", "anonymous_id": "v1", "customer_id": "c2", "timestamp": T0 + 3 * HOUR},
        {"event_id": "a3", "type": "added_to_cart", "anonymous_id": "v1", "timestamp": T0 + 4 * HOUR},
    ]
    engine, changes = run_replay(defs, events)
    # Nothing for the visitor while anonymous; the history counts from the identify on;
    # the first identify wins, so a3 counts for c1, not c2.
    assert [(c.customer_id,) + s for c, s in zip(changes, summary(changes))] == [
        ("c1", "carted", "enter", 1, 2 * HOUR, "i1"),
        ("c1", "cart_lover", "enter", 1, 4 * HOUR, "a3"),
    ]
    assert engine.customers() == ["c1", "c2"]
    assert engine.memberships("c2") == ([], [])


# -- a time flip at the instant of an event ------------------------------------------------
# SPEC 3: "Membership is re-evaluated after each event. A time-based flip that falls at
# the same instant as an event for that customer is evaluated after the event is
# applied." So the evaluation after an event at instant T covers every segment whose
# condition changed by T, whether or not the event's type appears in its definition.


def test_flip_at_an_events_instant_gives_no_spurious_enter_exit_pair(load_defs) -> None:
    """`new_buyer` reads `new_customer`, which stops holding exactly when the order
    arrives: the order's evaluation must see that, so `new_buyer` never enters (an
    enter followed by an exit at the same instant would fire and undo its actions)."""
    defs = defs_from(load_defs, """
        segments:
          new_customer:
            when: since(profile.created_at) < 30d
          new_buyer:
            when: in_segment("new_customer") and count(order_placed) >= 1
    """)
    events = [event("e0", "customer_created", "c1", T0), order("e1", "c1", T0 + 30 * DAY)]
    _, changes = run_replay(defs, events)
    assert summary(changes) == [
        ("new_customer", "enter", 1, 0, "e0"),
        ("new_customer", "exit", 2, 30 * DAY, "e1"),
    ]


def test_flip_at_an_events_instant_is_caused_by_that_event(load_defs) -> None:
    defs = defs_from(load_defs, """
        segments:
          new_customer:
            when: since(profile.created_at) < 30d
          browsing:
            when: count(page_view) >= 1
    """)
    events = [event("e0", "customer_created", "c1", T0), event("e1", "page_view", "c1", T0 + 30 * DAY)]
    _, changes = run_replay(defs, events)
    assert sorted(summary(changes)) == sorted([
        ("new_customer", "enter", 1, 0, "e0"),
        ("new_customer", "exit", 2, 30 * DAY, "e1"),
        ("browsing", "enter", 1, 30 * DAY, "e1"),
    ])


@pytest.mark.parametrize("irrelevant", ["", " or count(added_to_cart) >= 5"])
def test_same_instant_result_does_not_depend_on_which_events_a_segment_mentions(load_defs, irrelevant: str) -> None:
    """Two events at T0 + 90d (a cart event, then an order). After the cart event the
    aligned first order has left the 90d window, so `active` exits; the order then
    re-enters it. Adding a clause that can never hold must not change that."""
    defs = defs_from(load_defs, f"""
        segments:
          active:
            when: count(order_placed, within=90d) >= 1{irrelevant}
    """)
    events = [order("o1", "c1", T0), event("a1", "added_to_cart", "c1", T0 + 90 * DAY),
              order("o2", "c1", T0 + 90 * DAY)]
    _, changes = run_replay(defs, events)
    assert summary(changes) == [
        ("active", "enter", 1, 0, "o1"),
        ("active", "exit", 2, 90 * DAY, "a1"),
        ("active", "enter", 3, 90 * DAY, "o2"),
    ]


def test_traits_no_segment_reads_are_still_maintained(load_defs) -> None:
    """Traits are named per-customer aggregates (SPEC 3) shown by `explain` and
    `GET /customers/{id}`; one that no segment uses must still be right."""
    defs = defs_from(load_defs, """
        traits:
          orders: count(order_placed)
          spend: sum(order_placed.total)
        segments:
          browsing:
            when: count(page_view) >= 1
    """)
    engine = Engine(defs)
    engine.apply(to_event(order("o1", "c1", T0, 25)))
    engine.apply(to_event(order("o2", "c1", T0 + HOUR, 15)))
    assert engine_trait_values(engine, "c1", T0 + HOUR) == {"orders": 2, "spend": 40}
