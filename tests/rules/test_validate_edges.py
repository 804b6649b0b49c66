"""Definitions at the edges of what can be read and run: each gets a `file:line:`
message from `validate` or runs, never a traceback later; and which files are definitions."""
from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from rules import DefinitionError, Engine, load_definitions, parse_event
from rules.evaluate.codegen import _Source, compiled
from rules.evaluate.plan import _plan_text
from rules.language.depth import MAX_INLINED_DEPTH
from stream.replay import replay

TYPES = ["order_placed", "page_view", "added_to_cart", "product_viewed"]


def problems(folder: Path) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_definitions(folder)
    return [str(p) for p in caught.value.problems]


def page_view(ts: str) -> list:
    raw = {"event_id": "e1", "type": "page_view", "customer_id": "c1", "timestamp": ts}
    return [parse_event(orjson.dumps(raw))]


def test_a_backslash_escape_python_cannot_read_is_a_syntax_error(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          windows_users:
            when: 'profile.home == "C:\\Users\\ann"'
    """)
    (found,) = problems(folder)
    assert found.startswith(f"{folder / 'segments.yaml'}:3: string ") and "backslash" in found


def test_a_destination_type_that_is_a_list_is_reported(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          s: {when: "true"}
        destinations:
          group: {type: [redis]}
    """)
    (found,) = problems(folder)
    assert found.startswith(f"{folder / 'segments.yaml'}:4: destination 'group' has an unknown type")


def test_a_tier_level_reading_a_lower_level_is_a_cycle(write_yaml) -> None:
    folder = write_yaml("""
        tiers:
          t:
            - {name: platinum, when: in_segment("gold")}
            - {name: gold, when: count(order_placed) >= 1}
    """)
    (found,) = problems(folder)
    assert found.startswith(f"{folder / 'segments.yaml'}:4: cycle between segments: platinum -> gold -> platinum")


def _layered(levels: int, terms: int) -> str:
    """`score1` of `terms` windowed counts, each next score the one before plus as many."""
    counts = lambda days: " + ".join(f"count({TYPES[i % len(TYPES)]}, within={days}d)" for i in range(terms))  # noqa: E731
    lines = ["traits:", f"  score1: {counts(30)}"]
    lines += [f"  score{i}: score{i - 1} + {counts(i)}" for i in range(2, levels + 1)]
    return "\n".join(lines + ["segments:", "  engaged:", f"    when: score{levels} > 0"]) + "\n"


def test_a_condition_too_deep_for_generated_code_runs_on_the_closures(tmp_path: Path) -> None:
    # 12 levels of 8 terms: well within the limit, but deeper than Python's parser
    # takes once inlined into one generated expression
    (tmp_path / "defs.yaml").write_text(_layered(12, 8))
    engine = Engine(load_definitions(tmp_path))
    program = engine.program
    everything = tuple(range(len(program.segments)))
    assert compiled(_plan_text(program, everything, _Source(program.compiler), checked=False), "<t>") is None
    changes: list = []
    replay(engine, page_view("2026-01-01T00:00:00Z"), changes.append)
    # one page view counts once in every page-view term: 12 levels x 2 terms
    assert [(c.segment, c.change) for c in changes] == [("engaged", "enter")]
    assert engine.explain("c1", engine.states["c1"].clock)["traits"]["score12"] == 24  # type: ignore[index]


def test_a_chain_of_traits_too_deep_to_evaluate_names_the_trait_that_goes_over(tmp_path: Path) -> None:
    terms = 20
    levels = MAX_INLINED_DEPTH // terms + 2  # certainly over: each level adds at least `terms` levels
    (tmp_path / "over").mkdir()
    (tmp_path / "over" / "defs.yaml").write_text(_layered(levels, terms))
    (found,) = problems(tmp_path / "over")
    named = int(found.split("trait 'score")[1].split("'")[0])
    assert found.startswith(f"{tmp_path / 'over' / 'defs.yaml'}:{named + 1}:") and "too deep" in found
    # a level less (with room for the condition around it) is accepted, and the engine builds and evaluates it
    (tmp_path / "under").mkdir()
    (tmp_path / "under" / "defs.yaml").write_text(_layered(named - 2, terms))
    engine = Engine(load_definitions(tmp_path / "under"))
    changes: list = []
    replay(engine, page_view("2026-01-01T00:00:00Z"), changes.append)
    assert [(c.segment, c.change) for c in changes] == [("engaged", "enter")]
    assert engine.explain("c1", engine.states["c1"].clock) is not None


def test_files_and_folders_whose_names_begin_with_a_dot_are_not_definitions(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          s: {when: "true"}
    """)
    (folder / ".github" / "workflows").mkdir(parents=True)
    (folder / ".github" / "workflows" / "validate.yml").write_text("name: validate\non: [push]\n")
    (folder / ".#segments.yaml").write_text("segments:\n  s: {when: 'true'}\n")  # an editor's lock file
    (folder / "more").mkdir()
    (folder / "more" / "extra.yml").write_text("segments:\n  t: {when: 'false'}\n")
    assert sorted(load_definitions(folder).segments) == ["s", "t"]


def test_words_of_the_language_and_the_clock_cannot_name_traits(write_yaml) -> None:
    folder = write_yaml("""
        traits:
          now: count(order_placed)
          and: count(page_view)
          fine: count(page_view)
        segments:
          s: {when: fine > 1}
    """)
    found = problems(folder)
    path = folder / "segments.yaml"
    assert [f.split(": ")[0] + ": " + f.split(": ")[1][:6] for f in found] == [f"{path}:2: 'now' ", f"{path}:3: 'and' "]
    assert all("cannot name a trait" in f for f in found)


def test_a_keyword_argument_given_twice_is_an_error(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          dup: {when: "count(order_placed, within=1d, within=90d) > 0"}
    """)
    (found,) = problems(folder)
    assert found.startswith(f"{folder / 'segments.yaml'}:2: count(): within= given twice")


@pytest.mark.parametrize("condition, refused", [
    ("1d / since(last(added_to_cart)) > 2", True),  # changes at every instant: no flip found
    ("100 / (now - last(added_to_cart)) > 2", True),
    ("sum(order_placed.total, within=7d) / count(order_placed, within=7d) > 50", True),
    ("10 / count(page_view, within=1d) > 4", False),  # changes in steps the flip search follows
    ("since(last(added_to_cart)) / 2 > 1h", False),
])
def test_division_by_a_value_that_changes_with_time(write_yaml, condition: str, refused: bool) -> None:
    folder = write_yaml(f"""
        segments:
          s: {{when: "{condition}"}}
    """)
    if refused:
        (found,) = problems(folder)
        assert found.startswith(f"{folder / 'segments.yaml'}:2: ") and "divides by a value that changes with time" in found
    else:
        assert "s" in load_definitions(folder).segments


def test_a_window_alone_in_a_denominator_flips_when_its_events_leave(tmp_path: Path) -> None:
    (tmp_path / "defs.yaml").write_text("segments:\n  few_views: {when: '10 / count(page_view, within=1d) > 4'}\n")
    engine = Engine(load_definitions(tmp_path))
    events = [parse_event(orjson.dumps({"event_id": f"e{i}", "type": "page_view", "customer_id": "c1",
                                        "timestamp": f"2026-01-01T{hour:02d}:00:00Z"}))
              for i, hour in enumerate((0, 5, 10))]
    changes: list = []
    replay(engine, events, changes.append, as_of=parse_event(orjson.dumps(
        {"event_id": "x", "type": "x", "customer_id": "c", "timestamp": "2026-01-03T00:00:00Z"})).ts)
    day = 86_400_000
    start = events[0].ts
    # 10/1 and 10/2 hold, 10/3 does not; then the views leave the window a day after each
    # (bucket widths of a 1-day window are below an hour, so whole hours are exact)
    expected = [("enter", start), ("exit", start + 10 * 3_600_000), ("enter", start + day),
                ("exit", start + day + 10 * 3_600_000)]
    assert [(c.change, c.at) for c in changes] == expected


def test_a_definition_left_out_for_its_own_error_is_not_reported_again_as_unknown(write_yaml) -> None:
    folder = write_yaml("""
        traits:
          spend: sum(order_placed.total) +
        segments:
          big: {when: count(order_placed) > 3, holdout: 10}
          big_again: {when: in_segment("big")}
          rich: {when: spend > 100, on_enter: [{webhook: {destination: crm}}]}
        destinations:
          crm: {type: [webhook]}
    """)
    path = folder / "segments.yaml"
    found = problems(folder)
    assert [f.split(": ")[0] for f in found] == [f"{path}:2", f"{path}:4", f"{path}:8"]  # each its own error only
    assert not any("unknown" in f and "type" not in f for f in found)
    # nor is one refused for its spelling
    (folder / "segments.yaml").write_text(
        "traits: {Orders: count(order_placed)}\nsegments:\n  big: {when: Orders > 2}\n"
        "  fan: {when: in_segment(\"Big-One\")}\n  Big-One: {when: count(order_placed) > 3}\n")
    found = problems(folder)
    assert len(found) == 2 and all("invalid name" in f for f in found)
    # a name that was never defined is still unknown
    (folder / "more.yaml").write_text('segments:\n  other: {when: in_segment("nowhere")}\n')
    assert any("unknown segment 'nowhere'" in f for f in problems(folder))


def test_destination_settings_a_sink_would_never_read_or_could_not_read(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          a:
            when: "true"
            on_enter: [{group: {add: {vip: yes}}}, {email: {template: welcome}}]
            on_exit: [{group: {remove: ""}}, {group: {add: [vip, gold], remove: old}}]
        destinations:
          group: {type: redis}
          email: {type: smtp, hots: mail.internal, port: twenty-five, timeout: "${SMTP_TIMEOUT}", lock_seconds: 1e3}
          crm: {type: webhook, url: "${CRM_URL}", timeout: 2.5, description: the CRM's intake}
    """)
    path = folder / "segments.yaml"
    found = problems(folder)
    assert found == [
        f"{path}:4: group action: add takes a group name or a list of names, got {{'vip': True}}",
        f"{path}:5: group action: remove takes a group name or a list of names, got ''",
        f"{path}:8: destination 'email': lock_seconds must be a whole number, got '1e3'",  # int('1e3') fails in the sink
        f"{path}:8: destination 'email': port must be a whole number, got 'twenty-five'",
        f"{path}:8: destination 'email': unknown setting 'hots' for smtp (known: description, host, lock_seconds, "
        "marker_days, password, port, sender, ssl, starttls, timeout, to, username)",
    ]


def test_a_profile_or_event_value_moved_by_a_duration_points_to_since(write_yaml) -> None:
    # a time written as text is read as a time by since() only: `text + 30d` would be
    # null at every instant, a segment that can never hold
    folder = write_yaml("""
        segments:
          new_customer: {when: profile.created_at + 30d > now}
          works: {when: last(order_placed) + 30d > now}
    """)
    (found,) = problems(folder)
    assert found.startswith(f"{folder / 'segments.yaml'}:2: 'profile.created_at + 30d': a value read from the profile")
    assert "since(profile.created_at) < 30d" in found


def test_aliases_of_aliases_that_expand_without_end_are_refused_quickly(write_yaml) -> None:
    levels = ["x-l0: &l0 [a, b, c, d, e, f, g, h, i, j]"]
    levels += [f"x-l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10^9 values
    folder = write_yaml("\n".join(levels) + "\nsegments:\n  s: {when: 'true'}\n")
    (found,) = problems(folder)
    assert found.startswith(f"{folder / 'segments.yaml'}:1: YAML holds more than 200,000 values")


CHAINS = {  # trait i+1 from trait i, three kinds of levels the closures build differently
    "sum": ("count(order_placed)", "t{i} + count(page_view) + 1", "t{last} > 0"),
    "coalesce": ("count(order_placed)", "coalesce(t{i}, 0) + 1", "t{last} > 0"),
    "logic": ("count(order_placed) > 0", "not (t{i} and count(page_view) > 0)", "t{last} == true"),
}


def _chain(kind: str, length: int) -> str:
    first, step, condition = CHAINS[kind]
    lines = ["traits:", f"  t0: {first}"] + [f"  t{i + 1}: {step.format(i=i)}" for i in range(length - 1)]
    return "\n".join(lines + ["segments:", "  s:", f"    when: {condition.format(last=length - 1)}"]) + "\n"


def _at_depth(frames: int, call):  # type: ignore[no-untyped-def]
    """`call()` under `frames` more Python frames, as under a caller's deep stack."""
    return call() if frames == 0 else _at_depth(frames - 1, call)


@pytest.mark.parametrize("kind", sorted(CHAINS))
def test_the_longest_chain_validate_accepts_builds_and_runs_under_a_deep_caller(tmp_path: Path, kind: str) -> None:
    length = 1
    while True:  # lengthen until validate refuses: the limit is what is tested, not a number
        (tmp_path / "defs.yaml").write_text(_chain(kind, length + 1))
        try:
            load_definitions(tmp_path)
        except DefinitionError as exc:
            assert "too deep" in str(exc)
            break
        length += 1
    (tmp_path / "defs.yaml").write_text(_chain(kind, length))

    def run() -> tuple[list, object]:
        engine = Engine(load_definitions(tmp_path))
        changes: list = []
        replay(engine, page_view("2026-01-01T00:00:00Z"), changes.append)
        return changes, engine.explain("c1", engine.states["c1"].clock)

    changes, explanation = _at_depth(300, run)
    assert explanation is not None and [c.segment for c in changes] in ([], ["s"])


def test_a_trait_named_like_the_event_type_it_counts_is_still_measured(tmp_path: Path) -> None:
    # `t0: count(t0)` counts events of type t0; it does not read the trait t0
    text = _chain("sum", 2 * MAX_INLINED_DEPTH).replace("t0: count(order_placed)", "t0: count(t0)")
    (tmp_path / "defs.yaml").write_text(text)
    assert "too deep" in "\n".join(problems(tmp_path))


def test_a_chain_of_negations_is_not_written_out_exponentially(tmp_path: Path) -> None:
    # each level reads the one before as a value, which generated code writes twice
    # ("holds" and "fails"): 30 levels would be 2^30 copies; the closures take over
    (tmp_path / "defs.yaml").write_text(_chain("logic", 30))
    engine = Engine(load_definitions(tmp_path))
    changes: list = []
    replay(engine, page_view("2026-01-01T00:00:00Z"), changes.append)
    # t0 = false (no order); t1 = not (false and ...) = true; from then on each
    # t(i+1) = not (t(i) and count(page_view) > 0) flips with the one page view
    expected = False
    for _ in range(29):
        expected = not (expected and True)
    assert [c.segment for c in changes] == (["s"] if expected else [])


def test_every_mistake_in_one_condition_is_reported_in_one_run(write_yaml) -> None:
    folder = write_yaml("""
        traits:
          spend: sum(order_placed.total)
        segments:
          s:
            when: spnd > 5 and ordrs >= 1 and coutn(order_placed) > 2 and -"x" > 1
    """)
    at = f"{folder / 'segments.yaml'}:5: "
    assert sorted(problems(folder)) == sorted([
        at + "unknown name 'spnd' (did you mean 'spend'?)",
        at + "unknown name 'ordrs'",
        at + "unknown function coutn() (did you mean count()?)",
        at + "cannot negate a string",
    ])


def test_a_part_already_reported_raises_no_second_message(write_yaml) -> None:
    # `bad` has no type once its own name is unknown: moving it by a duration, or
    # comparing it, must not add "cannot be moved by a duration" or the like.
    folder = write_yaml("""
        traits:
          spend: sum(order_placed.total)
          bad: spnd + 1
          later: bad + 30d
        segments:
          s:
            when: later > 1 and bad > "x" and since(bad) > 1d and spnd < 3
    """)
    file = folder / "segments.yaml"
    assert problems(folder) == [f"{file}:3: unknown name 'spnd' (did you mean 'spend'?)",
                                f"{file}:7: unknown name 'spnd' (did you mean 'spend'?)"]


def test_a_mistake_in_an_anchor_merged_into_two_segments_is_said_once(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          a: &common
            when: ordrs >= 1
          b:
            <<: *common
            description: the same condition
    """)
    assert problems(folder) == [f"{folder / 'segments.yaml'}:3: unknown name 'ordrs'"]


def test_a_syntax_error_names_the_line_and_column_an_editor_shows(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          folded:
            when: >-
              count(order_placed) > 5
              and count(page_view) ! 3
          literal:
            when: |
              count(order_placed) > 1 and
                count(page_view) $ 3
          flow: {description: x, when: "count(page_view) >> 2"}
    """)
    file = folder / "segments.yaml"
    lines = file.read_text().splitlines()
    found = problems(folder)
    # (line, column) of the offending character, found in the file's own text
    expected = {(line, lines[line - 1].rindex(char) + 1) for line, char in ((5, "!"), (9, "$"), (10, ">"))}
    assert {(int(p.split(":")[1]), int(p.rsplit("column ", 1)[1].rstrip(")"))) for p in found} == expected


def test_a_misplaced_argument_of_a_call_over_several_lines_is_reported_at_its_own_line(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          twice:
            when: >-
              count(order_placed,
                where=total > 5,
                where=total > 3) > 1
          after:
            when: >-
              count(order_placed, within=3d,
                order_placed) > 1
    """)
    file = folder / "segments.yaml"
    assert problems(folder) == [f"{file}:6: count(): where= given twice (column 9)",
                                f"{file}:10: count(): positional argument after keyword argument (column 9)"]


def test_a_misspelt_key_of_a_segment_gets_a_did_you_mean(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          a:
            whn: count(order_placed) > 1
            when: "true"
            on_entr: []
    """)
    file = folder / "segments.yaml"
    assert problems(folder) == [f"{file}:3: unknown key 'whn' in segment 'a' (did you mean 'when'?)",
                                f"{file}:5: unknown key 'on_entr' in segment 'a' (did you mean 'on_enter'?)"]


def test_definitions_without_any_segment_are_refused(write_yaml) -> None:
    """An empty file (a config map mounted before it was filled in) must not start a
    worker that evaluates nothing while it looks healthy."""
    folder = write_yaml("")
    assert problems(folder) == [f"{folder / 'segments.yaml'}:1: no segments or tiers are defined: nothing could "
                                "ever enter or exit (add a 'segments:' or 'tiers:' mapping)"]
    write_yaml("traits:\n  orders: count(order_placed)\n")
    write_yaml("", name="more.yaml")
    (found,) = problems(folder)
    assert found.startswith(f"{folder}: no segments or tiers are defined")
    write_yaml("tiers:\n  spend:\n    - name: anyone\n      when: 'true'\n", name="more.yaml")
    assert "anyone" in load_definitions(folder).segments  # a tier alone is enough


def test_the_profile_inside_a_filter_is_refused_with_where_to_write_it(write_yaml) -> None:
    """`where=profile.country == "US"` read an event property called 'profile' and
    never matched; the filter reads one event, the profile goes beside the aggregate."""
    folder = write_yaml("""
        segments:
          us_orders:
            when: count(order_placed, where=profile.country == "US") >= 1
          recent:
            when: count(order_placed, where=since(ordered_at) < 1d) >= 1
    """)
    profile, since = problems(folder)
    assert profile.startswith(f"{folder / 'segments.yaml'}:3: 'profile.country' inside where= would read an event "
                              "property called 'profile'")
    assert "count(order_placed) >= 1 and profile.country ==" in profile
    assert since.startswith(f"{folder / 'segments.yaml'}:5: since() cannot be used inside where=: a filter reads "
                            "one event's properties")


def test_coalesce_inside_a_filter_reads_the_events_properties(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          small_or_unpriced:
            when: count(order_placed, where=coalesce(total, 0) < 100) >= 2
    """)
    engine = Engine(load_definitions(folder))
    events = [parse_event(orjson.dumps({"event_id": f"o{i}", "type": "order_placed", "customer_id": "c1",
                                        "timestamp": 1_767_225_600_000 + i, "properties": properties}))
              for i, properties in enumerate([{}, {"total": 500}, {"total": 20}])]
    changes: list = []
    replay(engine, events, changes.append)
    assert [(c.segment, c.change, c.at) for c in changes] == [("small_or_unpriced", "enter", events[2].ts)]
