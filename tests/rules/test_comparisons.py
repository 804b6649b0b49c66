"""Comparisons and `in` on values the validator cannot type: event properties and
profile attributes. Each case is a definition a user wrote and the answer a person
gives from the README; all of them were answered otherwise by Python's operators."""
from __future__ import annotations

from pathlib import Path

import pytest

from rules.testing import MemorySink, MemorySource, definitions_from_text, run

DEFINITIONS = """
segments:
  hair_order:      {when: 'count(order_placed, where=items.category == "hair") >= 1'}
  order_sans_hair: {when: 'count(order_placed, where=items.category != "hair") >= 1'}
  pricey_item:     {when: 'count(order_placed, where=items.price > 100) >= 1'}
  care_item:       {when: 'count(order_placed, where=items.category in ["hair", "nails"]) >= 1'}
  flagged_one:     {when: 'count(order_placed, where=flag == 1) >= 1'}
  flagged_true:    {when: 'count(order_placed, where=flag == true) >= 1'}
  flag_above_0:    {when: 'count(order_placed, where=flag > 0) >= 1'}
  one_tag:         {when: '1 in distinct(order_placed.tags)'}
  true_tag:        {when: 'true in distinct(order_placed.tags)'}
  listed:          {when: 'profile.country in ["US", null]'}
  not_listed:      {when: 'profile.country not in ["US", null]'}
  not_us_or_ca:    {when: 'profile.country not in ["US", "CA"]'}
  us_text:         {when: '"US" in profile.country'}
  login_after:     {when: 'profile.last_login > profile.signup'}
  login_same:      {when: 'profile.last_login == profile.signup'}
  came_back_later: {when: 'profile.last_login - profile.signup > 30d'}
  signed_up_long:  {when: 'now - profile.signup > 365d'}
"""


def members(tmp_path: Path, profile: dict[str, object], *orders: dict[str, object]) -> set[str]:
    source, sink = MemorySource(), MemorySink()
    source.add("customer_created", "c-1", "2026-01-01T00:00:00Z", **profile)
    for number, properties in enumerate(orders):
        source.add("order_placed", "c-1", f"2026-01-02T00:00:0{number}Z", **properties)
    engine, _ = run(definitions_from_text(DEFINITIONS, tmp_path / "d"), source, sink)
    return set(engine.memberships("c-1")[0])


PROFILE = {"country": "US"}


def test_a_path_through_a_list_matches_when_one_element_does(tmp_path: Path) -> None:
    found = members(tmp_path, PROFILE, {"items": [{"category": "skin", "price": 20}, {"category": "hair", "price": 150}]})
    assert {"hair_order", "pricey_item", "care_item"} <= found
    assert "order_sans_hair" not in found  # `!=` is "no item is hair care"
    found = members(tmp_path, PROFILE, {"items": [{"category": "skin", "price": 20}]})
    assert "order_sans_hair" in found and not {"hair_order", "pricey_item", "care_item"} & found


def test_an_order_without_items_matches_no_item_condition_but_the_negation(tmp_path: Path) -> None:
    found = members(tmp_path, PROFILE, {"items": []})
    assert not {"hair_order", "pricey_item", "care_item"} & found
    assert "order_sans_hair" in found


@pytest.mark.parametrize(("flag", "expected"), [
    (True, {"flagged_true"}),
    (1, {"flagged_one", "flag_above_0"}),
    (2, {"flag_above_0"}),
])
def test_a_bool_is_not_a_number(tmp_path: Path, flag: object, expected: set[str]) -> None:
    found = members(tmp_path, PROFILE, {"flag": flag})
    assert found & {"flagged_one", "flagged_true", "flag_above_0"} == expected


def test_distinct_keeps_1_and_true_apart(tmp_path: Path) -> None:
    found = members(tmp_path, PROFILE, {"tags": [True]}, {"tags": [1]})
    assert {"one_tag", "true_tag"} <= found
    assert "one_tag" not in members(tmp_path, PROFILE, {"tags": [True]})
    assert "true_tag" not in members(tmp_path, PROFILE, {"tags": [1]})


def test_not_in_a_list_holding_null_is_unknown_as_in_sql(tmp_path: Path) -> None:
    checked = {"listed", "not_listed", "not_us_or_ca"}
    assert members(tmp_path, {"country": "DE"}) & checked == {"not_us_or_ca"}  # DE may be the null: unknown
    assert members(tmp_path, {"country": "US"}) & checked == {"listed"}


def test_in_with_text_on_the_right_is_a_substring_test(tmp_path: Path) -> None:
    assert "us_text" in members(tmp_path, {"country": "RUS"})
    assert "us_text" not in members(tmp_path, {"country": "DE"})


def test_two_times_written_as_text_compare_as_instants(tmp_path: Path) -> None:
    earlier_login = {"last_login": "2025-01-01T10:00:00+05:00", "signup": "2025-01-01T06:00:00Z"}  # 05:00Z < 06:00Z
    assert "2025-01-01T10:00:00+05:00" > "2025-01-01T06:00:00Z"  # as text it is the other way round
    assert not {"login_after", "login_same"} & members(tmp_path, earlier_login)
    same = {"last_login": "2025-01-01T07:00:00+01:00", "signup": "2025-01-01T06:00:00Z"}
    assert members(tmp_path, same) & {"login_after", "login_same"} == {"login_same"}
    later = {"last_login": "2025-01-02", "signup": "2025-01-01T23:00:00-02:00"}  # a date alone is midnight UTC
    assert "login_after" not in members(tmp_path, later)  # 2025-01-02T00:00Z is before 2025-01-02T01:00Z


def test_times_written_as_text_take_part_in_arithmetic_as_instants(tmp_path: Path) -> None:
    """As in `since()` and comparisons; the difference was null, so neither held."""
    profile = {"signup": "2024-06-01T00:00:00Z", "last_login": "2024-07-15T09:00:00+02:00"}  # 44 days 7 hours
    assert {"came_back_later", "signed_up_long"} <= members(tmp_path, profile)  # the customer_created is 2026-01-01
    close = {"signup": "2025-12-01", "last_login": "2025-12-30T23:00:00-01:00"}  # 30 days exactly: not above
    assert not {"came_back_later", "signed_up_long"} & members(tmp_path, close)
    assert "came_back_later" not in members(tmp_path, {"signup": "soon", "last_login": "2025-12-30T23:00:00Z"})
