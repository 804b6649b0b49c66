"""`validate` rejects each error kind of the product contract (section 3) with `file:line: message`."""
from __future__ import annotations

from pathlib import Path

import pytest

from rules import DefinitionError, load_definitions

EXAMPLE = Path(__file__).parents[2] / "examples" / "segments"


def problems(folder: Path) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_definitions(folder)
    return [str(p) for p in caught.value.problems]


def test_spec_example_definitions_are_valid() -> None:
    defs = load_definitions(EXAMPLE)
    assert "vip" in defs.segments and "platinum" in defs.segments
    assert defs.tiers["spend_tier"][0] == "platinum"


def test_syntax_error_points_at_the_line_of_the_expression(write_yaml) -> None:
    folder = write_yaml("""
        traits:
          orders: count(order_placed)
        segments:
          ok:
            when: orders > 1
          broken:
            description: missing operand
            when: orders >
    """)
    (found,) = problems(folder)
    assert found.startswith(f"{folder / 'segments.yaml'}:8: syntax error: unexpected end of expression")


def test_habits_from_sql_get_a_hint(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          shouted:
            when: count(order_placed) > 1 AND since(last(order_placed)) < 30d
          listed:
            when: profile.country in ("US", "CA")
    """)
    lines = (folder / "segments.yaml").read_text().splitlines()
    found = [p.split("segments.yaml:", 1)[1] for p in problems(folder)]
    assert found == [f"3: syntax error: unexpected 'AND' (the words of the language are lower case: 'and') "
                     f"(column {lines[2].index('AND') + 1})",
                     "5: syntax error: unexpected ',' (a list is written in square brackets: x in [\"US\", \"CA\"]) "
                     f"(column {lines[4].index(',') + 1})"]


def test_multi_line_block_expression_reports_the_inner_line(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          cart:
            when: >-
              count(added_to_cart) > 0
              and count(order_placed) ==
    """)
    (found,) = problems(folder)
    assert found.startswith(f"{folder / 'segments.yaml'}:5:")  # where it ends too early


def test_unknown_name_suggests_the_closest_trait(write_yaml) -> None:
    folder = write_yaml("""
        traits:
          lifetime_spend: sum(order_placed.total)
        segments:
          rich:
            when: lifetime_spnd > 100
    """)
    (found,) = problems(folder)
    assert ":5: unknown name 'lifetime_spnd' (did you mean 'lifetime_spend'?)" in found


def test_duration_compared_with_number_is_a_type_error(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          recent:
            when: since(last(order_placed)) < 30
    """)
    (found,) = problems(folder)
    assert ":3: cannot compare a duration with a number (write the number with a unit, e.g. 30d)" in found


def test_a_value_from_the_data_compared_with_a_duration_is_a_type_error(write_yaml) -> None:
    """JSON has no durations: `profile.minutes > 1d` would read 90 as 90 ms. Values
    computed from the data (two times kept as text, subtracted) may be durations and
    stay valid, as does a number given its unit."""
    folder = write_yaml("""
        traits:
          waited: last(ticket_closed.minutes)
        segments:
          from_profile:
            when: profile.minutes > 1d
          from_an_event:
            when: 1h <= waited
          in_a_filter:
            when: count(call, where=length == 5m) > 0
          through_coalesce:
            when: coalesce(profile.grace, last(ticket_closed.grace)) < 2d
          computed:
            when: profile.last_login - profile.signup > 30d
          given_its_unit:
            when: profile.minutes * 1m > 1d and since(profile.signup) > 1d
    """)
    found = [p.split("segments.yaml:", 1)[1] for p in problems(folder)]
    assert found == [
        "5: cannot compare profile.minutes with a duration: a value from the profile or an event is a number or "
        "text, never a duration (give a number its unit, e.g. profile.minutes * 1m)",
        "7: cannot compare waited with a duration: a value from the profile or an event is a number or text, "
        "never a duration (give a number its unit, e.g. waited * 1m)",
        "9: cannot compare length with a duration: a value from the profile or an event is a number or text, "
        "never a duration (give a number its unit, e.g. length * 1m)",
        "11: cannot compare coalesce(profile.grace, last(ticket_closed.grace)) with a duration: a value from the "
        "profile or an event is a number or text, never a duration (give a number its unit, e.g. "
        "coalesce(profile.grace, last(ticket_closed.grace)) * 1m)",
    ]


def test_unknown_segment_in_in_segment(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          a:
            when: in_segment("vipp")
          vip:
            when: "true"
    """)
    (found,) = problems(folder)
    assert ":3: in_segment(): unknown segment 'vipp' (did you mean 'vip'?)" in found


def test_cycle_between_segments(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          a:
            when: in_segment("b")
          b:
            when: in_segment("c")
          c:
            when: in_segment("a")
    """)
    (found,) = problems(folder)
    assert "cycle between segments: a -> b -> c -> a" in found


def test_cycle_between_segments_through_traits(write_yaml) -> None:
    """`in_segment` inside a trait (or a trait of a trait) is a dependency of every
    segment whose condition uses that trait; a cycle through traits has no evaluation
    order, so it is refused like a direct one. The same trait read by a segment that
    does not close a cycle stays valid."""
    folder = write_yaml("""
        traits:
          in_b: in_segment("b")
          via: in_b or false
          in_big: in_segment("big")
        segments:
          a:
            when: via
          b:
            when: in_segment("a")
          big:
            when: sum(order_placed.total) > 10
          follows:
            when: in_big and in_big
    """)
    (found,) = problems(folder)
    assert found.endswith("cycle between segments: a -> (trait via) -> b -> a")


def test_a_segment_reading_itself_through_a_trait(write_yaml) -> None:
    folder = write_yaml("""
        traits:
          looped: in_segment("loop")
        segments:
          loop:
            when: looped
    """)
    (found,) = problems(folder)
    assert found.endswith(":4: cycle between segments: loop -> (trait looped) -> loop")  # the line of `loop:`


def test_a_refused_tier_level_does_not_make_the_levels_below_read_themselves(write_yaml) -> None:
    """A level whose name is taken is refused; the levels below it keep their places
    (they were counted from the levels written, so each counted itself among the
    levels above it, and one cycle came out as three)."""
    folder = write_yaml("""
        segments:
          taken:
            when: count(order_placed) > 0
        tiers:
          t:
            - {name: taken, when: "true"}
            - {name: lvl, when: in_segment("lvl2")}
            - {name: lvl2, when: in_segment("lvl")}
    """)
    found = [p.split("segments.yaml:", 1)[1] for p in problems(folder)]
    assert found == ["6: duplicate segment name 'taken' (first defined at "
                     f"{folder / 'segments.yaml'}:2)",
                     "8: cycle between segments: lvl -> lvl2 -> lvl (a tier level depends on the levels above it)"]


def test_cycle_between_traits(write_yaml) -> None:
    folder = write_yaml("""
        traits:
          x: y + 1
          y: x + 1
        segments:
          s:
            when: x > 1
    """)
    assert any("cycle between traits" in p for p in problems(folder))


def test_unknown_destination_and_wrong_destination_type(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          big:
            when: max(order_placed.total) > 500
            on_enter: [{email: {template: thanks}}, {group: {add: big, destination: mail}}]
        destinations:
          mail: {type: smtp, host: localhost}
    """)
    found = problems(folder)
    assert any(":4: unknown destination 'email' for email action (known: mail)" in p for p in found)
    assert any(":4: group action needs a redis destination, but 'mail' is smtp" in p for p in found)


def test_duplicate_names_across_files_name_the_first_place(write_yaml) -> None:
    write_yaml("segments:\n  vip:\n    when: 'true'\n", name="a.yaml")
    folder = write_yaml("segments:\n  other:\n    when: 'true'\n  vip:\n    when: 'false'\n", name="b.yaml")
    (found,) = problems(folder)
    assert found == f"{folder / 'b.yaml'}:4: duplicate segment name 'vip' (first defined at {folder / 'a.yaml'}:2)"


def test_tier_level_cannot_reuse_a_segment_name(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          gold:
            when: "true"
        tiers:
          spend:
            - {name: gold, when: "true"}
    """)
    (found,) = problems(folder)
    assert "duplicate segment name 'gold'" in found


def test_duplicate_key_in_one_file(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          a:
            when: "true"
          a:
            when: "false"
    """)
    (found,) = problems(folder)
    assert ":4: duplicate key 'a'" in found


def test_all_errors_are_reported_at_once(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          a:
            when: nope > 1
          b:
            when: since(now) > 5
          c:
            when: count(order_placed.total) > 1
          d:
            when: sum(order_placed) > 1
          e:
            when: count(order_placed, within=90) > 1
          f:
            when: orders +
    """)
    found = problems(folder)
    lines = sorted(int(p.split(":")[1]) for p in found)
    assert lines == [3, 5, 7, 9, 11, 13]


def test_condition_must_be_boolean_and_holdout_a_percentage(write_yaml) -> None:
    folder = write_yaml("""
        segments:
          a:
            when: count(order_placed)
          b:
            when: "true"
            holdout: ten
    """)
    found = problems(folder)
    assert any("expected a condition" in p or "condition must be true/false" in p for p in found)
    assert any(":6: holdout must be a percentage such as 10%" in p for p in found)


def test_yaml_syntax_error_has_a_line(write_yaml) -> None:
    folder = write_yaml("segments:\n  a:\n    when: [unclosed\n")
    (found,) = problems(folder)
    assert "YAML syntax error" in found and found.startswith(str(folder / "segments.yaml") + ":")


def test_a_quote_or_bracket_left_open_is_reported_where_it_opens(write_yaml) -> None:
    """PyYAML notices it only where the file ends, a line past the last one."""
    for text, opened in (('segments:\n  s1:\n    when: "count(x) > 1\n  s2: {when: count(y) > 1\n', 3),
                         ("segments:\n  a:\n    when: count(x) > 1\n    on_enter: [{group: {add: a}}\n", 4)):
        folder = write_yaml(text)
        (found,) = problems(folder)
        assert found.startswith(f"{folder / 'segments.yaml'}:{opened}: YAML syntax error: "), found
        assert found.endswith("is a quote or bracket left open?")


def test_version_changes_with_content_not_with_formatting(write_yaml, tmp_path: Path) -> None:
    one = write_yaml("segments:\n  a:\n    when: count(order_placed) > 1\n")
    first = load_definitions(one).version
    (one / "segments.yaml").write_text("segments:\n    a: {when: 'count(order_placed) > 1'}\n")
    assert load_definitions(one).version == first
    (one / "segments.yaml").write_text("segments:\n  a:\n    when: count(order_placed) > 2\n")
    assert load_definitions(one).version != first


def test_version_ignores_how_an_expression_is_spelled(write_yaml) -> None:
    """Spacing, line breaks, parentheses, equal durations and keyword order are not
    content; a `where=` filter's text is (it names the aggregate's state)."""
    def version(when: str) -> str:
        return load_definitions(write_yaml(f"segments:\n  a:\n    when: {when}\n")).version

    first = version("count(order_placed, within=7d, where=total > 1) > 1 and since(last(order_placed)) < 30d")
    for same in ("count( order_placed,within=7d,where=total > 1 )>1 and since(last(order_placed))<30d",
                 "(count(order_placed, where=total > 1, within=168h) > 1) and (since(last(order_placed)) < 720h)",
                 ">-\n      count(order_placed, within=7d, where=total > 1) > 1\n      and since(last(order_placed)) < 30d"):
        assert version(same) == first, same
    for other in ("count(order_placed, within=7d, where=total > 1) > 2 and since(last(order_placed)) < 30d",
                  "count(order_placed, within=7d, where=total>1) > 1 and since(last(order_placed)) < 30d"):
        assert version(other) != first, other


def test_errors_in_multi_line_conditions_point_at_their_own_line(write_yaml) -> None:
    """Folded (`>-`), plain and quoted scalars join their lines into one, as the SPEC's
    own cart_abandoner is written; each error still names the line it is on (the
    expected lines are those of this text, counted by hand)."""
    folder = write_yaml("""
        segments:
          folded:
            when: >-
              since(last(added_to_cart)) > 4h
              and last(order_placed) is null
              and nosuchtrait > 3
          indented:
            when: >-
              count(x) > 0
              and (last(order_placed) is null
                   or last(order_placed) < last(added_to_cartt)
                   or unknown_two > 3)
          plain:
            when:
              count(x) > 0
              and since(last(x)) > 5
          quoted:
            when: "count(x) > 0 and
              unknown_three > 1"
          filtered:
            when: >-
              count(order_placed,
                    where=total > 5) > 0
              and count(order_placed, within=5 parsecs) > 0
          broken:
            when: >-
              count(x) > 0
              and and count(y) > 0
    """)
    found = sorted((int(p.split(":")[1]), p.split(": ", 1)[1]) for p in problems(folder))
    expected = [(6, "nosuchtrait"), (12, "unknown_two"), (16, "cannot compare a duration with a number"),
                (19, "unknown_three"), (24, "parsecs"), (28, "syntax error")]
    assert [line for line, _ in found] == [line for line, _ in expected]
    for (_, message), (_, part) in zip(found, expected):
        assert part in message


def test_yaml_merge_keys_share_settings_and_keys_written_win(write_yaml) -> None:
    """`<<: *anchor` (YAML merge keys) is a common way to share parts of definitions;
    an `x-` section holds anchors without being a section of its own."""
    folder = write_yaml("""
        x-defaults:
          orders: &orders
            description: shared
            when: count(order_placed) > 0
        segments:
          first:
            <<: *orders
          second:
            <<: *orders
            when: count(order_placed) > 1
    """)
    defs = load_definitions(folder)
    assert defs.segments["first"].description == defs.segments["second"].description == "shared"
    assert defs.segments["first"].when.text == "count(order_placed) > 0"
    assert defs.segments["second"].when.text == "count(order_placed) > 1"


def test_yaml_the_loader_cannot_read_is_a_problem_on_its_line(write_yaml) -> None:
    """Unknown tags, a list as a key, a merge of a plain value and a file that is not
    UTF-8 are reported as `file:line: message`, with the rest, not raised."""
    folder = write_yaml("""
        segments:
          tagged:
            when: !custom count(x) > 0
          listed:
            ? [x, y]
            : 1
            when: count(x) > 0
          merged:
            <<: 5
            when: count(x) > 0
    """)
    (folder / "latin1.yaml").write_bytes(b"segments:\n  cafe:\n    description: caf\xe9\n    when: count(x) > 0\n")
    found = problems(folder)
    assert any(p.endswith("segments.yaml:3: cannot read this value: could not determine a constructor "
                          "for the tag '!custom'") for p in found)
    assert any(p.endswith("segments.yaml:5: a key must be a plain name, not a list or a mapping") for p in found)
    assert any(p.endswith("segments.yaml:9: '<<' merges a mapping, or a list of them (e.g. <<: *defaults)")
               for p in found)
    assert any(p.endswith("latin1.yaml:3: not UTF-8 text (byte 0xe9); save the file as UTF-8") for p in found)


def test_action_and_destination_settings_a_sink_would_refuse(write_yaml) -> None:
    """A typo in an action's settings fails `validate` (in CI), not the sink at the
    first change; `{group: {}}` (the segment's own name) stays valid."""
    folder = write_yaml("""
        segments:
          typo:
            when: count(x) > 0
            on_enter: [{group: {remove: a, frobnicate: 1}}]
          no_template:
            when: count(x) > 0
            on_enter: [{email: {}}]
          own_group:
            when: count(x) > 0
            on_enter: [{group: {}}]
          too_generous:
            when: count(x) > 0
            on_enter: [{pricing: {discount_percent: 150}}]
          nothing_to_price:
            when: count(x) > 0
            on_enter: [{pricing: {}}]
          hooked:
            when: count(x) > 0
            on_enter: [{webhook: {destination: hook, retries: 3}}]
        destinations:
          group: {type: redis}
          pricing: {type: redis}
          email: {type: smtp}
          hook: {type: webhook}
          sheet: {type: csv}
          files: {type: ftp}
    """)
    found = [p.split("segments.yaml:", 1)[1] for p in problems(folder)]
    assert found == [
        "4: group action: unknown setting 'frobnicate' (known: add, remove)",
        "7: email action needs template",
        "13: pricing action: discount_percent must be a number from 0 to 100, got 150",
        "16: pricing action needs discount_percent or price_list",
        "19: webhook action: unknown setting 'retries' (it takes none but destination)",
        "24: webhook destination 'hook' needs url",
        "25: csv destination 'sheet' needs path",
        "26: destination 'files' has an unknown type 'ftp': one of csv, redis, smtp, webhook",
    ]


def test_template_names_and_urls_a_sink_could_not_open(write_yaml) -> None:
    """The email sink reads `<templates>/<destination>/<name>.txt`, the webhook sink
    posts over HTTP(S) and Redis clients open redis://, rediss:// or unix:// URLs; a
    `${VAR}` is read when the sinks start and cannot be checked before."""
    folder = write_yaml("""
        segments:
          a:
            when: count(x) > 0
            on_enter: [{email: {template: ../../etc/passwd}}, {email: {template: welcome.v2}}]
        destinations:
          email: {type: smtp}
          hook: {type: webhook, url: "ftp://files.example.com/in"}
          hostless: {type: webhook, url: "https://"}
          group: {type: redis, url: "redis://cache:notaport"}
          from_env: {type: webhook, url: "${HOOK_URL}"}
          socket: {type: redis, url: "unix:///run/redis.sock"}
          fine: {type: webhook, url: "https://hooks.example.com/in?team=1"}
    """)
    found = [p.split("segments.yaml:", 1)[1] for p in problems(folder)]
    assert found == [
        "4: email action: template '../../etc/passwd' is no file name (letters, digits, '_', '.' and '-', not "
        "starting with one of the last three nor holding '..'): the sink reads <templates>/<destination>/<name>.txt "
        "or .html",
        "7: destination 'hook': url 'ftp://files.example.com/in' must start with http:// or https://",
        "8: destination 'hostless': url 'https://' names no host",
        "9: destination 'group': url 'redis://cache:notaport' has a port that is no number from 0 to 65535",
    ]


@pytest.mark.parametrize("levels", [1, 2])
def test_the_ok_line_counts_what_the_files_define(write_yaml, capsys, levels) -> None:
    from stream.cli import main

    tier = "".join(f"    - name: level{n}\n      when: 'true'\n" for n in range(levels))
    path = write_yaml("traits:\n  spend: sum(order_placed.total)\nsegments:\n  big:\n    when: spend > 1\n"
                      f"tiers:\n  spend_tier:\n{tier}")
    assert main(["validate", str(path)]) == 0
    level_word = "level" if levels == 1 else "levels"
    assert capsys.readouterr().out.startswith(
        f"ok: 1 trait, 1 segment, 1 tier ({levels} {level_word}), 0 destinations; definition version ")


def test_several_paths_are_one_set_as_a_shell_glob_gives_them(tmp_path, capsys) -> None:
    """`segmenter validate segments/*.yaml`: the files are merged as their folder is
    (a trait in one file, the segment reading it in another), with the same version."""
    from stream.cli import main

    (tmp_path / "a.yaml").write_text("segments:\n  big:\n    when: spend > 1\n")
    (tmp_path / "b.yaml").write_text("traits:\n  spend: sum(order_placed.total)\n")
    assert main(["validate", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]) == 0
    assert capsys.readouterr().out.endswith(f"definition version {load_definitions(tmp_path).version}\n")
    assert main(["validate", str(tmp_path / "a.yaml"), str(tmp_path / "gone.yaml")]) == 1
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'gone.yaml'}: no such file or folder\n")
