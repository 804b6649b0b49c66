"""Lint's static checks: each warning fires on a definition that has the mistake and not on its fix."""
from __future__ import annotations

import textwrap
from pathlib import Path

from rules import load_definitions
from rules.quality.static import static_findings

ACTION = "on_enter: [{group: {add: x}}]"


def lint(write_yaml, text: str) -> list[tuple[str, int, str | None]]:
    """(check, line, segment) of every static warning of `text` (actions added where `{A}` stands)."""
    folder: Path = write_yaml(textwrap.dedent(text.replace("{A}", ACTION)) + "destinations:\n  group: {type: redis}\n")
    return [(f.check, f.origin.line if f.origin else 0, f.segment) for f in static_findings(load_definitions(folder))]


def test_condition_that_can_never_hold(write_yaml) -> None:
    found = lint(write_yaml, """
        traits:
          orders: count(order_placed)
        segments:
          negative:
            when: orders < 0
            {A}
          contradiction:
            when: orders > 5 and orders < 3
            {A}
          fine:
            when: orders > 3 and orders < 5
            {A}
    """)
    assert found == [("never-holds", 5, "negative"), ("never-holds", 8, "contradiction")]


def test_condition_that_always_holds(write_yaml) -> None:
    found = lint(write_yaml, """
        segments:
          everyone:
            when: count(order_placed) >= 0
            {A}
          buyers:
            when: count(order_placed) >= 1
            {A}
    """)
    assert found == [("always-holds", 3, "everyone")]


def test_exit_when_that_never_holds_keeps_members_forever(write_yaml) -> None:
    found = lint(write_yaml, """
        segments:
          stuck:
            when: count(order_placed) > 2
            exit_when: count(order_placed) < 0
            {A}
    """)
    assert found == [("never-holds", 4, "stuck")]


def test_comparison_with_null_in_a_filter(write_yaml) -> None:
    found = lint(write_yaml, """
        segments:
          broken:
            when: count(order_placed, where=coupon == null) > 0
            {A}
          fixed:
            when: count(order_placed, where=coupon is null) > 0
            {A}
    """)
    assert found == [("null-compare", 3, "broken")]


def test_whole_condition_compared_with_null_is_reported_once(write_yaml) -> None:
    found = lint(write_yaml, """
        segments:
          never_ordered:
            when: last(order_placed) == null
            {A}
    """)
    assert found == [("never-holds", 3, "never_ordered")]


def test_tier_level_shadowed_by_a_looser_earlier_level(write_yaml) -> None:
    found = lint(write_yaml, """
        traits:
          spend: sum(order_placed.total)
        tiers:
          ascending:
            - {name: silver, when: "true", on_enter: [{group: {add: s}}]}
            - {name: gold, when: spend > 2000, on_enter: [{group: {add: g}}]}
          wrong_order:
            - {name: bronze, when: spend > 100, on_enter: [{group: {add: b}}]}
            - {name: premium, when: spend > 5000 and count(order_placed) > 3, on_enter: [{group: {add: p}}]}
          right_order:
            - {name: top, when: spend > 5000, on_enter: [{group: {add: t}}]}
            - {name: middle, when: spend > 100, on_enter: [{group: {add: m}}]}
            - {name: rest, when: "true", on_enter: [{group: {add: r}}]}
    """)
    assert found == [("unreachable-level", 6, "gold"), ("unreachable-level", 9, "premium")]


def test_exit_when_overlapping_when_makes_members_flap(write_yaml) -> None:
    found = lint(write_yaml, """
        traits:
          spend: sum(order_placed.total)
        segments:
          inverted:
            when: spend > 1000
            exit_when: spend < 1100
            {A}
          opposite:
            when: spend > 1000
            exit_when: spend <= 1000
            {A}
          hysteresis:
            when: spend > 1000
            exit_when: spend < 900
            {A}
    """)
    assert found == [("hysteresis", 6, "inverted"), ("hysteresis", 10, "opposite")]


def test_hysteresis_on_durations(write_yaml) -> None:
    found = lint(write_yaml, """
        segments:
          quiet:
            when: since(last(order_placed)) > 30d
            exit_when: since(last(order_placed)) < 60d
            {A}
    """)
    assert found == [("hysteresis", 4, "quiet")]


def test_duplicate_conditions_through_traits(write_yaml) -> None:
    found = lint(write_yaml, """
        traits:
          orders: count(order_placed)
        segments:
          buyers:
            when: orders >= 1
            {A}
          customers_who_ordered:
            when: count(order_placed) >= 1
            {A}
          repeat_buyers:
            when: orders >= 2
            {A}
    """)
    assert found == [("duplicate", 7, "customers_who_ordered")]


def test_segment_without_actions_that_nothing_reads(write_yaml) -> None:
    found = lint(write_yaml, """
        segments:
          lonely:
            when: count(order_placed) > 1
          read_by_other:
            when: count(order_placed) > 5
          with_actions:
            when: count(order_placed) > 2 and in_segment("read_by_other")
            {A}
    """)
    assert found == [("unused", 2, "lonely")]


def test_example_definitions_pass_every_static_check() -> None:
    """The shipped example is what users copy: it must lint clean."""
    example = Path(__file__).parents[2] / "examples" / "segments"
    found = [(f.check, f.segment) for f in static_findings(load_definitions(example))]
    assert found == []


def test_comparison_of_two_constants(write_yaml) -> None:
    found = lint(write_yaml, """
        segments:
          switched_off:
            when: 1 > 2 and count(order_placed) > 0
            {A}
          switched_on:
            when: 30d < 1y and count(order_placed) > 0
            {A}
    """)
    assert found == [("never-holds", 3, "switched_off")]


THRESHOLDS = [0, 1, 2, 2.5, 3, 4]
COMPARE = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


def test_hysteresis_of_counts_is_judged_over_whole_numbers(write_yaml) -> None:
    """A count is a whole number: `> 2` / `< 3` leaves no value where both hold (it was
    reported as flapping 'for values > 2 and < 3'), and is the exact opposite. Each
    pair of thresholds is checked against the counts 0..10 one by one."""
    pairs = [(enter_op, a, leave_op, b) for enter_op in (">", ">=") for leave_op in ("<", "<=")
             for a in THRESHOLDS for b in THRESHOLDS]
    text = "segments:\n" + "".join(
        f"  s{i}:\n    when: count(order_placed) {eo} {a}\n    exit_when: count(order_placed) {lo} {b}\n    {{A}}\n"
        for i, (eo, a, lo, b) in enumerate(pairs))
    found: dict[str | None, set[str]] = {}
    for check, _, segment in lint(write_yaml, text):
        found.setdefault(segment, set()).add(check)
    for i, (enter_op, a, leave_op, b) in enumerate(pairs):
        enters = {n for n in range(11) if COMPARE[enter_op](n, a)}  # every threshold is below 10
        leaves = {n for n in range(11) if COMPARE[leave_op](n, b)}
        flaps, opposite = bool(enters & leaves), not (enters & leaves) and enters | leaves == set(range(11))
        expected = {"never-holds"} if not leaves else {"hysteresis"} if flaps or opposite else set()
        if enters == set(range(11)):
            expected.add("always-holds")
        assert found.get(f"s{i}", set()) == expected, (enter_op, a, leave_op, b)


def test_the_negation_of_a_constant_is_named_as_such(write_yaml) -> None:
    folder = write_yaml(f"segments:\n  nobody:\n    when: not true\n    {ACTION}\ndestinations:\n  group: {{type: redis}}\n")
    (finding,) = static_findings(load_definitions(folder))
    assert finding.check == "never-holds" and "'not true' negates a condition that always holds" in finding.message
