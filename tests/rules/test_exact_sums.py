"""Sums of money are exact and do not depend on the order events arrive in.

The worker folds events in as they arrive and replay in event-time order; with float
running totals 0.3 + 0.2 + 0.1 and 0.1 + 0.2 + 0.3 differ in the last bit, so a
threshold could hold in one and not the other. Every expectation here is computed
with `fractions.Fraction` from the amounts as written, independently of the engine."""
from __future__ import annotations

import itertools
import random
from fractions import Fraction
from pathlib import Path

import orjson

from rules import Engine, Event, parse_event
from rules.evaluate.state import CustomerState
from rules.testing import definitions_from_text
from rules.timeutil import DAY

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DEFINITIONS = """
traits:
  spend: sum(order_placed.total)
  spend_7d: sum(order_placed.total, within=7d)
  average: avg(order_placed.total)
  item_spend: sum(order_placed.items.price)
segments:
  over_0_6:
    when: spend > 0.6
  week_over_0_6:
    when: spend_7d > 0.6
"""


def order(number: int, ts: int, total: object, customer: str = "c1", **more: object) -> Event:
    return parse_event(orjson.dumps({"event_id": f"o{number}", "type": "order_placed", "customer_id": customer,
                                     "timestamp": ts, "properties": {"total": total, **more}}))


def exact(amounts: list[str]) -> float:
    return float(sum(Fraction(a) for a in amounts))


def traits(engine: Engine, key: str = "c1", now: int = T0 + DAY) -> dict[str, object]:
    explained = engine.explain(key, now)
    assert explained is not None
    return explained["traits"]  # type: ignore[return-value]


def test_every_arrival_order_gives_the_same_totals_and_memberships(tmp_path: Path) -> None:
    definitions = definitions_from_text(DEFINITIONS, tmp_path / "d")
    amounts = ["0.1", "0.2", "0.3"]
    events = [order(i, T0 + i * 1000, float(a), items=[{"price": float(a)}]) for i, a in enumerate(amounts)]
    seen = []
    for arrival in itertools.permutations(events):
        engine = Engine(definitions)
        for event in arrival:
            engine.apply(event)
        seen.append((engine.memberships("c1"), traits(engine)))
    assert all(result == seen[0] for result in seen)
    (segments, _), values = seen[0]
    assert values["spend"] == values["spend_7d"] == values["item_spend"] == exact(amounts) == 0.6
    assert values["average"] == float(sum(Fraction(a) for a in amounts) / 3)
    assert segments == []  # 0.6 is not above 0.6, in any order


def test_many_cent_amounts_in_shuffled_orders_match_the_exact_decimal_sum(tmp_path: Path) -> None:
    definitions = definitions_from_text(DEFINITIONS, tmp_path / "d")
    chance = random.Random(7)
    amounts = [f"{chance.randrange(1, 100_000) / 100:.2f}" for _ in range(60)]
    events = [order(i, T0 + i * 1000, float(a)) for i, a in enumerate(amounts)]
    for _ in range(5):
        chance.shuffle(events)
        engine = Engine(definitions)
        for event in events:
            engine.apply(event)
        assert traits(engine)["spend"] == exact(amounts)


def test_whole_amounts_stay_integers_and_cents_stay_exact_up_to_large_totals(tmp_path: Path) -> None:
    engine = Engine(definitions_from_text(DEFINITIONS, tmp_path / "d"))
    for i, total in enumerate([10**18, 10**18, 3]):
        engine.apply(order(i, T0 + i, total))
    assert traits(engine)["spend"] == 2 * 10**18 + 3
    assert type(traits(engine)["spend"]) is int
    big = Engine(definitions_from_text(DEFINITIONS, tmp_path / "d"))
    amounts = ["1344384111292.35", "0.03", "0.04"]  # 15 digits: floats in this order give ...292.4202
    for i, total in enumerate(amounts):
        big.apply(order(i, T0 + i, float(total)))
    assert traits(big)["spend"] == exact(amounts)


def test_a_windowed_total_flips_when_the_exact_sum_crosses(tmp_path: Path) -> None:
    """0.1 + 0.2 + 0.3 added as floats in time order is 0.6000000000000001, above 0.6:
    the window would enter. Exactly it is 0.6, not above: it enters only with the 0.01,
    and leaves when the 0.1 ages out of the window."""
    engine = Engine(definitions_from_text(DEFINITIONS, tmp_path / "d"))
    changes = []
    for i, total in enumerate([0.1, 0.2, 0.3]):
        changes += engine.apply(order(i, T0 + i * DAY, total))
    assert [c.segment for c in changes] == []
    changes += engine.apply(order(3, T0 + 3 * DAY, 0.01))
    assert [(c.segment, c.change) for c in changes] == [("over_0_6", "enter"), ("week_over_0_6", "enter")]
    left = engine.advance("c1", T0 + 30 * DAY)
    assert [(c.segment, c.change) for c in left] == [("week_over_0_6", "exit")]
    assert left[0].at == T0 + 7 * DAY  # the 0.1's bucket leaves: 0.51 remain


def test_an_identified_visitors_spend_merges_exactly(tmp_path: Path) -> None:
    engine = Engine(definitions_from_text(DEFINITIONS, tmp_path / "d"))
    engine.apply(parse_event(orjson.dumps({"event_id": "v1", "type": "order_placed", "anonymous_id": "a1",
                                           "timestamp": T0, "properties": {"total": 0.1}})))
    engine.apply(order(1, T0 + 1, 0.2))
    engine.apply(parse_event(orjson.dumps({"event_id": "i1", "type": "identify", "anonymous_id": "a1",
                                           "customer_id": "c1", "timestamp": T0 + 2})))
    assert traits(engine)["spend"] == exact(["0.1", "0.2"]) == 0.3


def test_a_total_read_back_from_the_table_goes_on_adding_exactly(tmp_path: Path) -> None:
    """The worker keeps states encoded in a table; a total is a plain number there."""
    engine = Engine(definitions_from_text(DEFINITIONS, tmp_path / "d"))
    engine.apply(order(1, T0, 0.1))
    engine.states["c1"] = CustomerState.from_bytes(engine.states["c1"].to_bytes())
    engine.apply(order(2, T0 + 1, 0.2))
    assert traits(engine)["spend"] == exact(["0.1", "0.2"]) == 0.3
