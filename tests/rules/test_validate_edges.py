"""Definitions at the edges of what can be read and run: each gets a `file:line:`
message from `validate` or runs, never a traceback later; and which files are definitions."""
from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from rules import DefinitionError, Engine, load_definitions, parse_event
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
