"""`segmenter lint --events` on dirty data: properties the definitions read that the
events lack or send as text, profile attributes no profile has, a sign-up feed that
stopped, a clock far ahead, and files with nothing to evaluate."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from stream.cli import main


def event(event_id: str, kind: str, customer: str, day: int, **properties: object) -> dict[str, object]:
    return {"event_id": event_id, "type": kind, "customer_id": customer,
            "timestamp": f"2026-01-{day:02d}T10:00:00Z", "properties": properties}


def write(tmp_path: Path, definitions: str, events: list[dict[str, object]]) -> tuple[Path, Path]:
    (tmp_path / "defs.yaml").write_text(definitions)
    (tmp_path / "events.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return tmp_path / "defs.yaml", tmp_path / "events.jsonl"


def warnings(capsys, defs: Path, events: Path, *extra: str) -> dict[str, list[dict[str, object]]]:
    main(["lint", str(defs), "--events", str(events), "--json", "--min-size", "0", "--max-share", "1",
          "--max-overlap", "1", *extra])
    found: dict[str, list[dict[str, object]]] = {}
    for warning in orjson.loads(capsys.readouterr().out)["warnings"]:
        found.setdefault(warning["check"], []).append(warning)
    return found


ORDERS = [
    event("o1", "order_placed", "c-1", 2, total=20, items=[{"sku": "A"}, {"sku": "B"}]),
    event("o2", "order_placed", "c-2", 3, total="24.99", items=[{"sku": "A"}]),
    event("o3", "order_placed", "c-3", 4, total=5.5, items=[{"sku": 7}]),
    event("o4", "order_placed", "c-1", 5, total="7", items=[]),
    event("o5", "order_placed", "c-2", 6),
]


def test_a_misspelt_property_is_named_with_the_one_meant(tmp_path, capsys) -> None:
    defs, events = write(tmp_path, "segments:\n  low:\n    when: >-\n      count(order_placed) >= 1\n"
                                   "      and sum(order_placed.totl) < 100\n", ORDERS)
    (found,) = warnings(capsys, defs, events)["missing-properties"]
    assert found["line"] == 5 and found["message"] == (
        f"no 'order_placed' event in {events} has 'totl' (read by segment 'low'); they have items, total "
        "(did you mean 'total'?)")


def test_a_misspelt_nested_property_and_a_filter_name_are_found(tmp_path, capsys) -> None:
    defs, events = write(tmp_path, "segments:\n  a:\n    when: count(order_placed, where=\"A\" in items.skus) > 0\n"
                                   "  b:\n    when: distinct(order_placed.items.sku) == []\n", ORDERS)
    found = warnings(capsys, defs, events)
    assert [w["message"] for w in found["missing-properties"]] == [
        f"no 'order_placed' event in {events} has 'items.skus' (read by segment 'a'); items has sku "
        "(did you mean 'sku'?)"]
    assert "mistyped-properties" not in found  # distinct() reads any value: the number 7 is no mistake there


def test_numbers_sent_as_text_are_counted_for_numeric_aggregates(tmp_path, capsys) -> None:
    defs, events = write(tmp_path, "traits:\n  spend: sum(order_placed.total)\nsegments:\n  big:\n"
                                   "    when: spend > 10 and max(order_placed.total) > 1\n", ORDERS)
    text_totals = [e for e in ORDERS if isinstance(e["properties"].get("total"), str)]
    (found,) = warnings(capsys, defs, events)["mistyped-properties"]
    assert found["line"] == 2 and found["message"].startswith(
        f"order_placed.total is no number in {len(text_totals)} of {len(ORDERS)} 'order_placed' events "
        "(such as '24.99'), and sum, avg, min and max leave those values out (read by trait 'spend', segment 'big')")


def test_a_profile_attribute_no_profile_has(tmp_path, capsys) -> None:
    signups = [event(f"s{n}", "customer_created", f"c-{n}", 1, country="US", email="a@b") for n in range(3)]
    defs, events = write(tmp_path, "segments:\n  us:\n    when: profile.cuntry == \"US\"\n"
                                   "  mail:\n    when: profile.email is not null\n", signups + ORDERS)
    (found,) = warnings(capsys, defs, events)["missing-properties"]
    assert found["line"] == 3 and found["message"] == (
        "no customer's profile has 'cuntry' (read by segment 'us'); they have country, created_at, email (did you mean 'country'?)")


def test_a_signup_feed_that_stopped_is_stale_for_segments_reading_the_profile(tmp_path, capsys) -> None:
    signups = [event(f"s{n}", "customer_created", f"c-{n}", 1 + n) for n in range(3)]  # the last on day 3
    defs, events = write(tmp_path, "segments:\n  new:\n    when: since(profile.created_at) < 30d\n",
                         signups + ORDERS)  # as of day 6
    stale = warnings(capsys, defs, events, "--stale-after", "2d")["stale-events"]
    assert [(w["line"], w["message"]) for w in stale] == [
        (3, "the last 'customer_created' event is from 2026-01-03T10:00:00Z, 3.0 days before 2026-01-06T10:00:00Z "
            "(profile read by segment 'new'): has the feed stopped?")]
    assert "stale-events" not in warnings(capsys, defs, events, "--stale-after", "4d")


def test_no_profile_events_at_all_is_a_missing_feed(tmp_path, capsys) -> None:
    defs, events = write(tmp_path, "segments:\n  new:\n    when: since(profile.created_at) < 30d\n", ORDERS)
    (found,) = warnings(capsys, defs, events)["missing-events"]
    assert found["message"] == (f"no profile events (customer_created or customer_updated) in {events} "
                                "(profile read by segment 'new'): a feed not connected")


def test_an_as_of_before_a_types_first_event_is_not_called_a_typo(tmp_path, capsys) -> None:
    defs, events = write(tmp_path, "segments:\n  any:\n    when: count(order_placed) > 0\n",
                         [event("v1", "page_view", "c-1", 1), *ORDERS])
    (found,) = warnings(capsys, defs, events, "--as-of", "2026-01-02T00:00:00Z")["missing-events"]
    assert found["message"] == ("no 'order_placed' events at or before 2026-01-02T00:00:00Z (counted by segment "
                                "'any'): the first is from 2026-01-02T10:00:00Z")


def test_a_few_events_from_a_wrong_clock_are_named(tmp_path, capsys) -> None:
    views = [{"event_id": f"v{n}", "type": "page_view", "customer_id": f"c-{n % 50}",
              "timestamp": 1_767_225_600_000 + n * 60_000} for n in range(1500)]  # a day of page views
    future = {"event_id": "x", "type": "page_view", "customer_id": "c-1", "timestamp": "2099-02-04T10:00:00Z"}
    defs, events = write(tmp_path, "segments:\n  viewer:\n    when: count(page_view) > 0\n", [*views, future])
    (found,) = warnings(capsys, defs, events)["outlying-times"]
    assert found["message"].startswith(f"1 of 1,501 events in {events} is dated more than 7.0 days after 99.9 % "
                                       "of the others, the last at 2099-02-04T10:00:00Z")
    assert "outlying-times" not in warnings(capsys, defs, events, "--as-of", "2026-01-02T00:00:00Z")
    defs, events = write(tmp_path, "segments:\n  viewer:\n    when: count(page_view) > 0\n", views)
    assert "outlying-times" not in warnings(capsys, defs, events)


def test_timestamps_sent_in_epoch_seconds_are_named(tmp_path, capsys) -> None:
    """Valid events, each read as a day of January 1970: nothing else would say so."""
    seconds = [{"event_id": f"o{n}", "type": "order_placed", "customer_id": f"c-{n}",
                "timestamp": 1_767_225_600 + n * 86_400} for n in range(3)]  # 2026-01-01.. in seconds
    defs, events = write(tmp_path, "segments:\n  buyer:\n    when: count(order_placed) > 0\n", seconds)
    (found,) = warnings(capsys, defs, events)["epoch-seconds"]
    first = datetime.fromtimestamp(1_767_225_600 / 1000, tz=timezone.utc)  # the seconds read as milliseconds
    assert found["message"].startswith(f"3 of 3 events in {events} are dated before 1973-03-03T09:46:40Z, the first "
                                       f"at {first:%Y-%m-%dT%H:%M:%S}.600Z: epoch seconds?")
    millis = [{**order, "timestamp": order["timestamp"] * 1000} for order in seconds]
    defs, events = write(tmp_path, "segments:\n  buyer:\n    when: count(order_placed) > 0\n", millis)
    assert "epoch-seconds" not in warnings(capsys, defs, events)


@pytest.mark.parametrize("content, message", [
    (b"", "no events: the file is empty"),
    (b"not json\n[1]\n\n", "no usable events in its 3 lines, 2 of them bad (see above)"),
])
def test_a_file_with_nothing_to_evaluate_is_refused_not_reported_clean(tmp_path, capsys, content, message) -> None:
    (tmp_path / "defs.yaml").write_text("segments:\n  any:\n    when: count(order_placed) > 0\n")
    (tmp_path / "events.jsonl").write_bytes(content)
    defs, events = tmp_path / "defs.yaml", tmp_path / "events.jsonl"
    assert main(["lint", str(defs), "--events", str(events)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"{events}: {message}"
    assert main(["preview", "--segments", str(defs), "--live", str(defs), "--events", str(events)]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == f"{events}: {message}"


def test_an_as_of_before_every_event_is_refused(tmp_path, capsys) -> None:
    defs, events = write(tmp_path, "segments:\n  any:\n    when: count(order_placed) > 0\n", ORDERS)
    assert main(["lint", str(defs), "--events", str(events), "--as-of", "2025-01-01T00:00:00Z"]) == 2
    assert capsys.readouterr().err.strip() == (f"{events}: no events at or before --as-of 2025-01-01T00:00:00Z; "
                                               "the first is from 2026-01-02T10:00:00Z")
