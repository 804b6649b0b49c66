"""`segmenter lint` as a user runs it: warnings with file:line, sizes and overlaps, exit codes."""
from __future__ import annotations

from itertools import combinations
from pathlib import Path

import orjson
import pytest

from examples.traffic import TrafficConfig, write_jsonl
from stream.cli import main

EXAMPLE = Path(__file__).parents[2] / "examples" / "segments"

DEFS = """\
traits:
  spend: sum(order_placed.total)
segments:
  big:
    when: spend > 100
    on_enter: [{group: {add: big}}]
  everyone:
    when: count(order_placed) >= 1 or count(page_view) >= 1
    on_enter: [{group: {add: everyone}}]
  refunded:
    when: count(order_refund) > 0
    on_enter: [{group: {add: refunded}}]
  viewer:
    when: count(page_view) >= 1
    on_enter: [{group: {add: viewer}}]
destinations:
  group: {type: redis}
"""


def order(event_id: str, customer: str, day: int, total: float) -> bytes:
    return orjson.dumps({"event_id": event_id, "type": "order_placed", "customer_id": customer,
                         "timestamp": f"2026-01-{day:02d}T10:00:00Z", "properties": {"total": total}})


def view(event_id: str, customer: str, day: int) -> bytes:
    return orjson.dumps({"event_id": event_id, "type": "page_view", "customer_id": customer,
                         "timestamp": f"2026-01-{day:02d}T09:00:00Z"})


@pytest.fixture
def small(tmp_path: Path) -> dict[str, Path]:
    """Four customers: c-1 and c-2 spend over 100, all four ordered, only c-1 viewed a page (on day 1)."""
    (tmp_path / "defs.yaml").write_text(DEFS)
    lines = [view("v1", "c-1", 1), order("o1", "c-1", 2, 150), order("o2", "c-2", 3, 300),
             order("o3", "c-3", 4, 20), b"not json", order("o4", "c-4", 20, 10)]
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return {"defs": tmp_path / "defs.yaml", "events": tmp_path / "events.jsonl"}


def lint_json(capsys, *args: str) -> tuple[int, dict[str, object]]:
    code = main(["lint", *args, "--json"])
    return code, orjson.loads(capsys.readouterr().out)


def test_sizes_narrow_broad_missing_and_stale_events(small, capsys) -> None:
    code, report = lint_json(capsys, str(small["defs"]), "--events", str(small["events"]),
                             "--min-size", "2", "--max-share", "0.9", "--max-overlap", "0.99")
    assert code == 1
    sizes = {s["segment"]: (s["members"], s["share"]) for s in report["segments"]}
    assert sizes == {"big": (2, 0.5), "everyone": (4, 1.0), "refunded": (0, 0.0), "viewer": (1, 0.25)}
    warnings = {(w["check"], w["segment"], w["line"]) for w in report["warnings"]}
    assert warnings == {
        ("too-broad", "everyone", 7),  # 100% > 90%
        ("never-entered", "refunded", 10),
        ("too-narrow", "viewer", 13),  # 1 member < 2
        ("missing-events", None, 11),  # order_refund: no such events (the typo of order_refunded)
        ("stale-events", None, 8),  # last page_view on day 1, as-of day 20: 19 days > 7d
        ("bad-events", None, 5),  # line 5 of the events file
    }
    assert report["customers"] == 4 and report["as_of"] == "2026-01-20T10:00:00Z"


def test_thresholds_silence_warnings_and_exit_zero(small, capsys) -> None:
    code, report = lint_json(capsys, str(small["defs"]), "--events", str(small["events"]), "--min-size", "1",
                             "--max-share", "1", "--stale-after", "30d", "--ignore", "never-entered,missing-events",
                             "--ignore", "bad-events,too-narrow")
    assert (code, report["warnings"]) == (0, [])


def test_a_segment_never_entered_is_too_narrow_once_never_entered_is_ignored(small, capsys) -> None:
    """'refunded' has no members: ignoring the more precise warning must not hide it."""
    args = [str(small["defs"]), "--events", str(small["events"]), "--min-size", "1", "--max-share", "1",
            "--stale-after", "30d", "--ignore", "missing-events,bad-events"]
    _, report = lint_json(capsys, *args)
    assert [(w["check"], w["segment"]) for w in report["warnings"]] == [("never-entered", "refunded")]
    _, report = lint_json(capsys, *args, "--ignore", "never-entered")
    assert [(w["check"], w["segment"]) for w in report["warnings"]] == [("too-narrow", "refunded")]


def test_text_output_has_file_line_warnings_and_a_table(small, capsys) -> None:
    assert main(["lint", str(small["defs"]), "--events", str(small["events"]), "--min-size", "2"]) == 1
    out = capsys.readouterr().out
    assert f"{small['defs']}:13: warning: segment 'viewer' has 1 member, fewer than --min-size 2 [too-narrow]" in out
    assert f"{small['events']}:5: warning: 1 of 6 lines cannot be used" in out
    lines = out.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("segment ")):]
    assert table[0].split() == ["segment", "members", "share", "entered", "exited"]
    assert table[1].split() == ["big", "2", "50.0%", "2", "0"]
    assert out.rstrip().endswith("6 warnings")


def test_invalid_definitions_exit_2_with_file_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("segments:\n  a:\n    when: spend > 1\n  b:\n    when: count(order_placed) >\n")
    assert main(["lint", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{bad}:3: unknown name 'spend'")
    assert err[1].startswith(f"{bad}:5: syntax error")


def test_static_only_lint_of_clean_definitions_exits_zero(tmp_path, capsys) -> None:
    clean = tmp_path / "clean.yaml"
    clean.write_text("segments:\n  buyers:\n    when: count(order_placed) >= 1\n    on_enter: [{group: {add: b}}]\n"
                     "destinations:\n  group: {type: redis}\n")
    assert main(["lint", str(clean)]) == 0
    assert capsys.readouterr().out == "no warnings\n"  # and nothing before it


def test_sizes_and_overlaps_match_replay_memberships(tmp_path, capsys) -> None:
    """Sizes, shares and every pairwise Jaccard, against plain sets built from `replay --memberships`."""
    events = tmp_path / "events.jsonl"
    write_jsonl(events, TrafficConfig(customers=300, days=200, seed=11))
    members_file = tmp_path / "members.jsonl"
    assert main(["replay", "--segments", str(EXAMPLE), "--events", str(events), "--memberships", str(members_file)]) == 0
    capsys.readouterr()
    members: dict[str, set[str]] = {}
    customers = 0
    for line in members_file.read_bytes().splitlines():
        row = orjson.loads(line)
        customers += 1
        for segment in row["segments"]:
            members.setdefault(segment, set()).add(row["customer_id"])

    _, report = lint_json(capsys, str(EXAMPLE), "--events", str(events))
    assert report["customers"] == customers
    for size in report["segments"]:
        expected = members.get(size["segment"], set())
        assert size["members"] == len(expected)
        assert size["share"] == pytest.approx(len(expected) / customers)
    expected_pairs = {}
    for a, b in combinations(sorted(members), 2):
        both, either = len(members[a] & members[b]), len(members[a] | members[b])
        if both:
            expected_pairs[(a, b)] = (both, either, round(both / either, 6))
    got = {(p["first"], p["second"]): (p["both"], p["either"], p["jaccard"]) for p in report["overlaps"]}
    assert got == expected_pairs
    assert len(got) > 10  # the example segments do overlap in this traffic
    flagged = {(w["segment"], w["message"].split("'")[1]) for w in report["warnings"] if w["check"] == "overlap"}
    assert flagged == {(b, a) for (a, b), (_, _, j) in expected_pairs.items() if j > 0.8}


def test_unknown_check_in_ignore_is_an_error(small, capsys) -> None:
    assert main(["lint", str(small["defs"]), "--ignore", "too-wide"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("--ignore: unknown check too-wide (the checks: never-holds, ") and "too-broad" in err


@pytest.mark.parametrize("option, value, message", [
    ("--max-share", "90", "--max-share: a fraction from 0 to 1 (0.9 means 90 %), got 90"),
    ("--max-overlap", "-0.1", "--max-overlap: a fraction from 0 to 1 (0.9 means 90 %), got -0.1"),
    ("--min-size", "-1", "--min-size: a number of members, 0 or more, got -1"),
])
def test_thresholds_out_of_range_are_errors(small, capsys, option, value, message) -> None:
    """`--max-share 90` (meant as 90 %) would silence every too-broad warning."""
    assert main(["lint", str(small["defs"]), "--events", str(small["events"]), option, value]) == 2
    assert capsys.readouterr().err.strip() == message


def test_profile_times_that_cannot_be_read_are_counted(tmp_path, capsys) -> None:
    """Signup dates in a form that is no time make `since(profile.created_at)` null:
    lint counts those customers (a date alone, epoch ms and RFC 3339 are fine; a
    customer without the attribute, or with null, is not counted)."""
    (tmp_path / "defs.yaml").write_text(
        "segments:\n"
        "  new_customer:\n"
        "    when: since(profile.created_at) < 30d\n"
        "  adult:\n"
        "    when: >-\n"
        "      count(order_placed) >= 0\n"
        "      and since(profile.birthday) > 18y\n")
    profiles = {"c-1": "05/01/2024", "c-2": "2024-05-01", "c-3": 1714521600000, "c-4": "2024-05-01T10:00:00Z",
                "c-5": ["2024-05-01"], "c-6": None, "c-9": 1714521600000.5, "c-10": True}
    lines = [orjson.dumps({"event_id": f"e-{customer}", "type": "customer_created", "customer_id": customer,
                           "timestamp": "2026-01-02T10:00:00Z", "properties": {"birthday": birthday}})
             for customer, birthday in profiles.items()]
    lines.append(orjson.dumps({"event_id": "e-c-7", "type": "customer_created", "customer_id": "c-7",
                               "timestamp": "2026-01-02T10:00:00Z"}))
    lines.append(orjson.dumps({"event_id": "e-c-8", "type": "customer_created", "customer_id": "c-8",
                               "timestamp": "2026-01-02T10:00:00Z", "properties": {"created_at": "soon"}}))
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    code, report = lint_json(capsys, str(tmp_path / "defs.yaml"), "--events", str(tmp_path / "events.jsonl"),
                             "--min-size", "0", "--max-share", "1")
    found = {w["message"].split(" that ")[0]: w["line"] for w in report["warnings"] if w["check"] == "unreadable-times"}
    assert code == 1
    assert found == {"3 of 10 customers have a profile.birthday": 7,  # the line of since(profile.birthday)
                     "1 of 10 customers have a profile.created_at": 3}


def test_overlaps_of_a_too_broad_segment_are_named_in_its_one_warning(tmp_path, capsys) -> None:
    """Three segments that everyone enters made three overlap warnings beside their
    three too-broad ones; each pair is now named once, in the too-broad warnings."""
    everyone = "".join(f"  all_{n}:\n    when: count(page_view) >= 0\n    on_enter: [{{group: {{add: x}}}}]\n"
                       for n in "abc")
    (tmp_path / "defs.yaml").write_text(DEFS.replace("segments:\n", "segments:\n" + everyone))
    lines = [view(f"v{i}", f"c-{i}", 1 + i % 9) for i in range(20)] + [order("o1", "c-1", 12, 150)]
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    args = [str(tmp_path / "defs.yaml"), "--events", str(tmp_path / "events.jsonl"), "--min-size", "0"]
    _, report = lint_json(capsys, *args)
    warnings = {(w["check"], w["segment"]): w["message"] for w in report["warnings"]}
    assert not [key for key in warnings if key[0] == "overlap"]
    for name in ("all_a", "all_b", "all_c", "viewer", "everyone"):  # each holds all 20 customers
        others = sorted({"all_a", "all_b", "all_c", "viewer", "everyone"} - {name})
        message = warnings[("too-broad", name)]
        assert message.startswith(f"segment {name!r} holds 100.0% of customers")
        assert sorted(message.split("so it overlaps ")[1].split(" by more")[0].replace("'", "").split(", ")) == others
    _, report = lint_json(capsys, *args, "--ignore", "too-broad")
    overlapping = {(w["segment"], w["message"].split("'")[1]) for w in report["warnings"] if w["check"] == "overlap"}
    assert len(overlapping) == 10  # every pair of the five, once the too-broad warnings are not wanted
