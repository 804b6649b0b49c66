"""`segmenter preview`: who enters and exits, checked against two independent replays."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from examples.traffic import TrafficConfig, write_jsonl
from rules import load_definitions
from stream.cli import main

EXAMPLE = Path(__file__).parents[2] / "examples" / "segments" / "shop.yaml"
BLOG = "https://shop.example.com/blog/spf-guide"


def memberships(path: Path) -> dict[str, set[str]]:
    return {row["customer_id"]: set(row["segments"]) for row in map(orjson.loads, path.read_bytes().splitlines())}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Shop traffic; NEW lowers the loyalty and gold thresholds, drops `lapsed` and adds
    `two_orders` and `blog_reader` (which reads a property no live definition reads)."""
    folder = tmp_path_factory.mktemp("preview")
    events = folder / "events.jsonl"
    write_jsonl(events, TrafficConfig(customers=400, days=300, seed=5))
    text = EXAMPLE.read_text()
    new = (text.replace("when: lifetime_spend > 1000", "when: lifetime_spend > 600")
               .replace("when: lifetime_spend > 2000", "when: lifetime_spend > 1200")
               .replace("  lapsed:\n", "  two_orders:\n    when: orders >= 2\n"
                        f"  blog_reader:\n    when: count(page_view, where=url == '{BLOG}') >= 1\n  lapsed_old:\n", 1)
               .replace("  lapsed_old:\n    description: Has ordered, but not in the last 90 days\n"
                        "    when: orders >= 1 and since(last(order_placed)) > 90d\n"
                        "    on_enter: [{email: {template: win_back}}]\n", ""))
    (folder / "new.yaml").write_text(new)
    segments = load_definitions(folder / "new.yaml").segments
    assert "two_orders" in segments and "blog_reader" in segments and "lapsed" not in segments
    return {"events": events, "old": EXAMPLE, "new": folder / "new.yaml", "dir": folder}


def test_entered_and_exited_match_two_replays(files, capsys) -> None:
    old_members, new_members, diff = (files["dir"] / name for name in ("old.jsonl", "new.jsonl", "diff.jsonl"))
    for definitions, out in ((files["old"], old_members), (files["new"], new_members)):
        assert main(["replay", "--segments", str(definitions), "--events", str(files["events"]),
                     "--memberships", str(out)]) == 0
    before, after = memberships(old_members), memberships(new_members)
    capsys.readouterr()

    assert main(["preview", "--segments", str(files["new"]), "--events", str(files["events"]),
                 "--live", str(files["old"]), "--out", str(diff), "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    rows = {row["segment"]: row for row in report["segments"]}
    names = {s for segments in [*before.values(), *after.values()] for s in segments}
    assert names <= set(rows)
    for name, row in rows.items():
        old = {c for c, s in before.items() if name in s}
        new = {c for c, s in after.items() if name in s}
        assert (row["before"], row["after"]) == (len(old), len(new)), name
        assert (row["entered"], row["exited"], row["unchanged"]) == (len(new - old), len(old - new), len(old & new)), name
        assert row["entered_sample"] == sorted(new - old)[:5] and row["exited_sample"] == sorted(old - new)[:5]
    assert rows["loyalty"]["status"] == "changed" and rows["loyalty"]["entered"] > 0
    assert rows["gold"]["status"] == "changed" and rows["silver"]["status"] == "changed"  # silver follows gold
    assert rows["lapsed"]["status"] == "removed" and rows["lapsed"]["after"] == 0 and rows["lapsed"]["exited"] > 0
    assert rows["two_orders"]["status"] == "added" and rows["two_orders"]["before"] == 0
    assert rows["blog_reader"]["status"] == "added" and rows["blog_reader"]["after"] > 0
    assert rows["vip"]["status"] == "same" and rows["vip"]["entered"] == rows["vip"]["exited"] == 0

    expected = [c for c in sorted(before) if before[c] != after.get(c, set())]
    lines = [orjson.loads(line) for line in diff.read_bytes().splitlines()]
    assert [line["customer_id"] for line in lines] == expected
    for line in lines:
        customer = line["customer_id"]
        assert set(line["entered"]) == after[customer] - before[customer]
        assert set(line["exited"]) == before[customer] - after[customer]


def test_live_definitions_default_to_segmenter_segments(files, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SEGMENTER_SEGMENTS", str(files["old"]))
    assert main(["preview", "--segments", str(files["old"]), "--events", str(files["events"])]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(f"{files['old']} -> {files['old']}")
    rows = [line.split() for line in out[2:] if line and not line.startswith(" ")]
    assert rows and all(row[1] == "same" and row[4] == row[5] == "0" for row in rows)


def test_missing_live_definitions_name_where_they_were_looked_for(files, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./segments here
    monkeypatch.delenv("SEGMENTER_SEGMENTS", raising=False)
    assert main(["preview", "--segments", str(files["new"]), "--events", str(files["events"])]) == 1
    assert capsys.readouterr().err.strip() == ("segments: no such file or folder for the live definitions "
                                               "(the default; give them with --live PATH)")
    assert main(["preview", "--segments", str(files["new"]), "--live", "gone", "--events", str(files["events"])]) == 1
    assert capsys.readouterr().err.strip() == "gone: no such file or folder for the live definitions (from --live)"


def test_as_of_compares_memberships_at_that_instant(files, capsys) -> None:
    as_of = "2025-06-01T00:00:00Z"
    old_members, new_members = files["dir"] / "old_asof.jsonl", files["dir"] / "new_asof.jsonl"
    for definitions, out in ((files["old"], old_members), (files["new"], new_members)):
        assert main(["replay", "--segments", str(definitions), "--events", str(files["events"]), "--as-of", as_of,
                     "--memberships", str(out)]) == 0
    capsys.readouterr()
    assert main(["preview", "--segments", str(files["new"]), "--live", str(files["old"]), "--events",
                 str(files["events"]), "--as-of", as_of, "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["as_of"] == "2025-06-01T00:00:00Z"
    before, after = memberships(old_members), memberships(new_members)
    old = {c for c, s in before.items() if "loyalty" in s}
    new = {c for c, s in after.items() if "loyalty" in s}
    row = next(r for r in report["segments"] if r["segment"] == "loyalty")
    assert (row["before"], row["after"], row["entered"], row["exited"]) == (len(old), len(new), len(new - old), len(old - new))


def test_invalid_new_definitions_are_reported_with_file_line(files, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("segments:\n  a:\n    when: spend > 1\n")
    assert main(["preview", "--segments", str(bad), "--live", str(files["old"]), "--events", str(files["events"])]) == 1
    assert f"{bad}:3: unknown name 'spend'" in capsys.readouterr().err


def test_progress_goes_to_stderr(files) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stream.cli", "preview", "--segments", str(files["new"]), "--live", str(files["old"]),
         "--events", str(files["events"]), "--progress", "always"],
        capture_output=True, text=True, check=True,
    )
    assert "reading" in result.stderr and "live" in result.stderr and "new" in result.stderr
    assert "━" not in result.stdout and "loyalty" in result.stdout


def test_definition_status_follows_traits_and_in_segment(tmp_path) -> None:
    from stream.commands.preview_command import statuses

    live, new = tmp_path / "live.yaml", tmp_path / "new.yaml"
    live.write_text("traits:\n  spend: sum(order_placed.total)\nsegments:\n"
                    "  big:\n    when: spend > 100\n  reader:\n    when: in_segment(\"big\")\n"
                    "  plain:\n    when: count(page_view) > 1\n  gone:\n    when: count(page_view) > 9\n")
    new.write_text("traits:\n  spend: sum(order_placed.total) - sum(order_refunded.amount)\nsegments:\n"
                   "  big:\n    when: spend > 100\n  reader:\n    when: in_segment(\"big\")\n"
                   "  plain:\n    when: count(page_view) > 1\n  fresh:\n    when: count(page_view) > 5\n")
    found = statuses(load_definitions(live), load_definitions(new))
    assert found == {"big": "changed", "reader": "changed", "plain": "same", "fresh": "added", "gone": "removed"}


def test_an_out_file_that_fails_is_one_line_and_the_definitions_are_kept(files, capsys) -> None:
    base = ["preview", "--segments", str(files["new"]), "--events", str(files["events"]), "--live", str(files["old"])]
    assert main([*base, "--out", "/dev/full"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("/dev/full: writing failed (No space left on device)")
    kept = files["new"].read_bytes()
    assert main([*base, "--out", str(files["new"])]) == 1
    assert capsys.readouterr().err.startswith(f"{files['new']}: is a definitions file")
    assert files["new"].read_bytes() == kept


def test_a_changed_holdout_share_shows_who_moves_into_the_control_group(files, capsys) -> None:
    """Raising vip's holdout moves members into its control group without moving any
    member: preview said 'changed' and then showed no effect at all. Checked against
    the holdout lists of two separate replays."""
    raised = files["dir"] / "holdout.yaml"
    raised.write_text(EXAMPLE.read_text().replace("holdout: 10%", "holdout: 95%"))
    held: list[dict[str, set[str]]] = []
    for definitions, out in ((files["old"], "old-held.jsonl"), (raised, "new-held.jsonl")):
        assert main(["replay", "--segments", str(definitions), "--events", str(files["events"]),
                     "--memberships", str(files["dir"] / out)]) == 0
        rows = map(orjson.loads, (files["dir"] / out).read_bytes().splitlines())
        held.append({row["customer_id"]: set(row["holdout"]) for row in rows if row["holdout"]})
    capsys.readouterr()
    diff = files["dir"] / "holdout-diff.jsonl"
    assert main(["preview", "--segments", str(raised), "--events", str(files["events"]), "--live", str(files["old"]),
                 "--out", str(diff), "--json"]) == 0
    out, err = capsys.readouterr()
    vip = next(row for row in orjson.loads(out)["segments"] if row["segment"] == "vip")
    in_vip = [sum("vip" in segments for segments in found.values()) for found in held]
    assert (vip["held_before"], vip["held_after"]) == tuple(in_vip) and in_vip[0] < in_vip[1]
    moved = {line["customer_id"]: line for line in map(orjson.loads, diff.read_bytes().splitlines())}
    expected = {c for c in set(held[0]) | set(held[1]) if held[0].get(c, set()) != held[1].get(c, set())}
    assert set(moved) == expected
    for customer, line in moved.items():
        assert line["before"] == line["after"] and not line["entered"] and not line["exited"]
        assert set(line["holdout_after"]) == held[1].get(customer, set())
    assert f"0 customers change segments and {len(expected)} only their holdout (control) groups" in err
    assert main(["preview", "--segments", str(raised), "--events", str(files["events"]),
                 "--live", str(files["old"])]) == 0
    table = capsys.readouterr().out
    assert f"{in_vip[0]} -> {in_vip[1]}" in next(line for line in table.splitlines() if line.startswith("vip "))
