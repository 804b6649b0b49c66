"""`profile.created_at` defaults to the `customer_created` time only when no event gives it.

A shop that sends `customer_created` twice (a re-sent sign-up, a second system) made
a customer whose account dates from 2020 "new" again: the bare event's default, being
newer, replaced the given value."""
from __future__ import annotations

import itertools
from pathlib import Path

import orjson

from rules import Engine, parse_event
from rules.testing import definitions_from_text
from rules.timeutil import DAY, parse_timestamp

DEFINITIONS = """
segments:
  new_customer: {when: since(profile.created_at) < 30d}
"""
T0 = parse_timestamp("2026-01-01T00:00:00Z")


def created(number: int, ts: int, **properties: object) -> bytes:
    return orjson.dumps({"event_id": f"c{number}", "type": "customer_created", "customer_id": "c-1",
                         "timestamp": ts, "properties": properties})


def final_profile(tmp_path: Path, *raws: bytes) -> tuple[object, list[str]]:
    """created_at and memberships after the events, the same in every arrival order."""
    seen = set()
    for arrival in itertools.permutations(raws):
        engine = Engine(definitions_from_text(DEFINITIONS, tmp_path / "d"))
        for raw in arrival:
            engine.apply(parse_event(raw), now=T0 + 10 * DAY)
        explained = engine.explain("c-1", T0 + 10 * DAY)
        assert explained is not None
        seen.add((explained["profile"]["created_at"], tuple(explained["segments"])))  # type: ignore[index]
    assert len(seen) == 1, seen
    found, segments = seen.pop()
    return found, list(segments)


def test_a_bare_customer_created_does_not_replace_a_given_created_at(tmp_path: Path) -> None:
    given = created(1, T0, created_at="2020-03-01T00:00:00Z", email="a@example.com")
    bare = created(2, T0 + 5 * DAY)
    assert final_profile(tmp_path, given, bare) == (parse_timestamp("2020-03-01T00:00:00Z"), [])


def test_of_two_bare_customer_created_the_earliest_is_the_creation(tmp_path: Path) -> None:
    assert final_profile(tmp_path, created(1, T0 - 40 * DAY), created(2, T0 + 5 * DAY)) == (T0 - 40 * DAY, [])


def test_a_given_created_at_wins_over_a_default_whatever_their_times(tmp_path: Path) -> None:
    bare = created(1, T0 - 40 * DAY)
    given_later = created(2, T0, created_at=T0 - 2 * DAY)  # a CRM import after the sign-up
    assert final_profile(tmp_path, bare, given_later) == (T0 - 2 * DAY, ["new_customer"])
