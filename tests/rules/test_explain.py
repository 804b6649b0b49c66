"""`explain`: the one-sentence reason beside each segment, and countdowns a person can read."""
from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from rules import Engine, load_definitions, parse_event
from rules.timeutil import parse_timestamp, spell_duration

DEFS = """
traits:
  spend: sum(order_placed.total) - sum(order_refunded.amount)
segments:
  loyal:
    when: spend > 1000
    exit_when: spend < 900
  control:
    when: spend > 0
    holdout: 100%
  lapsed:
    when: count(order_placed) >= 1 and since(last(order_placed)) > 30d
tiers:
  level:
    - {name: top, when: spend > 2000}
    - {name: middle, when: spend > 500}
    - {name: anyone, when: "true"}
"""
DAY = 86_400_000


def event(event_id: str, kind: str, day: int, customer: str | None = "c-1", anonymous: str | None = None,
          **properties: object) -> bytes:
    return orjson.dumps({"event_id": event_id, "type": kind, "timestamp": 1_767_225_600_000 + day * DAY,
                         "customer_id": customer, "anonymous_id": anonymous, "properties": properties})


@pytest.fixture
def engine(write_yaml) -> Engine:
    return Engine(load_definitions(write_yaml(DEFS)))


def why(engine: Engine, key: str, day: int) -> dict[str, str]:
    explained = engine.explain(key, 1_767_225_600_000 + day * DAY)
    assert explained is not None
    return {name: entry["why"] for name, entry in explained["conditions"].items()}  # type: ignore[union-attr]


def test_hysteresis_tier_order_and_holdout_are_said_in_words(engine: Engine) -> None:
    for raw in (event("o1", "order_placed", 0, total=1200), event("r1", "order_refunded", 1, amount=250)):
        engine.apply(parse_event(raw))
    said = why(engine, "c-1", 1)  # spend 950: below the entry, above the exit threshold
    assert said["loyal"] == "member: entered earlier and stays until exit_when holds ('spend < 900' does not)"
    assert said["control"].startswith("member: when holds; in the 100 % holdout (control) group")
    assert said["middle"] == "member: when holds"
    assert said["anyone"] == "not a member: when holds, but level 'middle' of tier 'level' matched first"
    assert said["top"] == "not a member: when does not hold"
    engine.apply(parse_event(event("r2", "order_refunded", 2, amount=100)))  # spend 850
    assert why(engine, "c-1", 2)["loyal"] == "not a member: when does not hold"


def test_overlapping_when_and_exit_when_are_named_when_they_made_a_member_leave(write_yaml) -> None:
    """Between 10 and 30 days both conditions hold: the timer at 10 days makes the
    member leave, and it enters again only at its next evaluation; "the change is made
    at its next evaluation" alone read as a flip about to come."""
    engine = Engine(load_definitions(write_yaml("""
        segments:
          recent_buyer:
            when: since(last(order_placed)) < 30d
            exit_when: since(last(order_placed)) > 10d
    """)))
    engine.apply(parse_event(event("o1", "order_placed", 0)))
    left = engine.advance("c-1", 1_767_225_600_000 + 11 * DAY)
    assert [(c.change, c.at) for c in left] == [("exit", 1_767_225_600_000 + 10 * DAY + 1)]
    said = why(engine, "c-1", 11)["recent_buyer"]
    assert said.startswith("not a member: exit_when holds as well as when, so it left at its last evaluation")
    assert "see `segmenter lint`" in said


def test_a_flip_not_yet_evaluated_and_an_anonymous_visitor(engine: Engine) -> None:
    engine.apply(parse_event(event("o1", "order_placed", 0, total=10)))
    assert why(engine, "c-1", 40)["lapsed"] == (
        "not a member yet: when holds now; the change is made at its next evaluation")  # not advanced to day 40
    explained = engine.explain("c-1", 1_767_225_600_000)
    lapsed = explained["conditions"]["lapsed"]  # type: ignore[index]
    assert parse_timestamp(lapsed["next_check_at"]) == lapsed["next_check"] == 1_767_225_600_000 + 30 * DAY + 1
    assert lapsed["next_check_in"] == "30d 0.001s"
    engine.apply(parse_event(event("v1", "page_view", 0, customer=None, anonymous="v-9")))
    assert set(why(engine, "anon:v-9", 0).values()) == {
        "not a member: an anonymous visitor is in no segment until an identify links it to a customer"}


@pytest.mark.parametrize("ms", [0, 1, 999, 1000, 60_000, 3_600_000, 1_116_000_000, 7_209_730_062, -90_061_001])
def test_countdowns_are_spelled_from_days_down_to_milliseconds(ms: int) -> None:
    """`7209730062ms` and `310h` were what an explanation showed."""
    span = timedelta(milliseconds=abs(ms))
    hours, rest = divmod(span.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    millis = span.microseconds // 1000
    units = [f"{v}{u}" for v, u in ((span.days, "d"), (hours, "h"), (minutes, "m")) if v]
    if seconds or millis:
        units.append(f"{seconds}.{millis:03d}s" if millis else f"{seconds}s")
    assert spell_duration(ms) == ("-" if ms < 0 else "") + (" ".join(units) or "0s")


def part_values(engine: Engine, key: str, day: float) -> dict[str, dict[str, object]]:
    explained = engine.explain(key, 1_767_225_600_000 + round(day * DAY))
    assert explained is not None
    return {part["condition"]: part.get("values", {})  # type: ignore[index]
            for entry in explained["conditions"].values()  # type: ignore[union-attr]
            for part in entry["when"]["parts"]}  # type: ignore[index]


def test_each_part_shows_the_values_it_compares_as_a_person_reads_them(engine: Engine) -> None:
    """Durations spelled out, times in RFC 3339, numbers exactly as the condition
    compared them; literals are not repeated; a value nobody has is shown as null."""
    engine.apply(parse_event(event("o1", "order_placed", 0, total=0.3)))
    engine.apply(parse_event(event("r1", "order_refunded", 1, amount=0.1)))
    assert 0.3 - 0.1 != 0.2  # in floats 0.19999999999999998; the language subtracts in decimal
    values = part_values(engine, "c-1", 3 + 4 / 24 + 5 / 1440)  # 3 days 4 hours 5 minutes after the order
    assert values["spend > 1000"] == {"spend": 0.2}  # what `spend > 1000` compared
    explained = engine.explain("c-1", 1_767_225_600_000 + 3 * DAY)
    assert explained is not None and explained["traits"] == {"spend": 0.2}
    assert values["count(order_placed) >= 1"] == {"count(order_placed)": 1}
    assert values["since(last(order_placed)) > 30d"] == {"since(last(order_placed))": "3d 4h 5m"}
    assert values["true"] == {}
    engine.apply(parse_event(event("v1", "page_view", 0, customer=None, anonymous="a-1")))
    explained = engine.explain("anon:a-1", 1_767_225_600_000)
    assert explained is not None
    lapsed = explained["conditions"]["lapsed"]["when"]["parts"]  # type: ignore[index]
    assert lapsed[1]["values"] == {"since(last(order_placed))": None}


def test_a_time_compared_with_a_time_is_shown_in_rfc_3339(write_yaml) -> None:
    engine = Engine(load_definitions(write_yaml("""
        segments:
          cart_open:
            when: last(order_placed) is null or last(order_placed) < last(added_to_cart)
    """)))
    engine.apply(parse_event(event("a1", "added_to_cart", 2)))
    engine.apply(parse_event(event("o1", "order_placed", 1)))
    parts = part_values(engine, "c-1", 2)
    assert parts["last(order_placed) < last(added_to_cart)"] == {
        "last(order_placed)": "2026-01-02T00:00:00Z", "last(added_to_cart)": "2026-01-03T00:00:00Z"}
    assert parts["last(order_placed) is null"] == {"last(order_placed)": "2026-01-02T00:00:00Z"}


def test_a_value_typed_at_run_time_compared_with_a_duration_is_spelled_as_one(write_yaml) -> None:
    """The difference of two times kept as text was shown as 5094000000."""
    engine = Engine(load_definitions(write_yaml("""
        segments:
          came_back:
            when: profile.last_login - profile.signup > 30d
    """)))
    engine.apply(parse_event(event("c1", "customer_created", 0, signup="2025-01-01T00:00:00Z",
                                   last_login="2025-03-01T00:00:00+01:00")))
    values = part_values(engine, "c-1", 0)
    assert values["profile.last_login - profile.signup > 30d"] == {
        "profile.last_login - profile.signup": spell_duration(58 * DAY + 23 * 3_600_000)}
    assert spell_duration(58 * DAY + 23 * 3_600_000) == "58d 23h"
