"""`segmenter replay` as a user runs it: files in, SPEC-shaped files out."""
from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from stream.cli import main
from stream.eventfile import load_events
from stream.replay_file import checked_inputs

DEFS = """
traits:
  spend: sum(order_placed.total)
segments:
  big:
    when: spend > 100
  lapsed:
    when: count(order_placed) >= 1 and since(last(order_placed)) > 1d
"""


def event(event_id: str, customer: str, ts: str, total: float) -> bytes:
    return orjson.dumps({"event_id": event_id, "type": "order_placed", "customer_id": customer,
                         "timestamp": ts, "properties": {"total": total}})


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "defs.yaml").write_text(DEFS)
    lines = [
        event("e2", "c-2", "2026-01-01T12:00:00Z", 150),
        b"this is not json",
        event("e1", "c-1", "2026-01-01T10:00:00Z", 50),  # out of file order: earlier
        b'{"event_id": "x", "type": "order_placed", "customer_id": "c-9", "timestamp": "yesterday"}',
        event("e3", "c-1", "2026-01-01T11:00:00+01:00", 60),  # 10:00Z, same instant as e1
        event("e1", "c-1", "2026-01-01T10:00:00Z", 50),  # duplicate
        event("e4", "c-1", "2026-01-03T00:00:00Z", 0),
    ]
    plain = tmp_path / "events.jsonl"
    plain.write_bytes(b"\n".join(lines) + b"\n")
    packed = tmp_path / "events.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    return {"defs": tmp_path / "defs.yaml", "plain": plain, "gz": packed, "dir": tmp_path}


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("kind", ["plain", "gz"])
def test_replay_writes_changes_and_memberships_in_spec_format(files, kind, capsys) -> None:
    changes, members = files["dir"] / "changes.jsonl", files["dir"] / "members.jsonl"
    code = main(["replay", "--segments", str(files["defs"]), "--events", str(files[kind]),
                 "--changes", str(changes), "--memberships", str(members)])
    assert code == 0
    out = read_jsonl(changes)
    assert set(out[0]) == {"customer_id", "segment", "change", "seq", "at", "cause", "holdout", "definition"}
    summary = [(c["customer_id"], c["segment"], c["change"], c["seq"], c["at"], c["cause"]) for c in out]
    assert summary == [
        ("c-1", "big", "enter", 1, "2026-01-01T10:00:00Z", "e3"),  # 50 + 60 at the same instant
        ("c-2", "big", "enter", 1, "2026-01-01T12:00:00Z", "e2"),
        ("c-1", "lapsed", "enter", 1, "2026-01-02T10:00:00.001Z", "timer"),
        ("c-2", "lapsed", "enter", 1, "2026-01-02T12:00:00.001Z", "timer"),
        ("c-1", "lapsed", "exit", 2, "2026-01-03T00:00:00Z", "e4"),
    ]
    assert read_jsonl(members) == [
        {"customer_id": "c-1", "segments": ["big"], "holdout": []},
        {"customer_id": "c-2", "segments": ["big", "lapsed"], "holdout": []},
    ]
    err = capsys.readouterr().err
    assert f"{files[kind]}:2: skipped: not valid JSON" in err
    assert f"{files[kind]}:4: skipped: cannot parse timestamp 'yesterday'" in err
    assert "1 duplicate, 2 bad lines" in err


def test_as_of_stops_the_clock(files) -> None:
    members = files["dir"] / "members.jsonl"
    assert main(["replay", "--segments", str(files["defs"]), "--events", str(files["plain"]),
                 "--as-of", "2026-01-02T11:00:00Z", "--memberships", str(members)]) == 0
    by_customer = {m["customer_id"]: m["segments"] for m in read_jsonl(members)}
    assert by_customer == {"c-1": ["big", "lapsed"], "c-2": ["big"]}


def test_bad_definitions_stop_replay_with_file_line(files, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("segments:\n  a:\n    when: spend > 1\n")
    assert main(["replay", "--segments", str(bad), "--events", str(files["plain"])]) == 1
    assert f"{bad}:3: unknown name 'spend'" in capsys.readouterr().err


def test_progress_bar_goes_to_stderr(files) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stream.cli", "replay", "--segments", str(files["defs"]),
         "--events", str(files["plain"]), "--progress", "always"],
        capture_output=True, text=True, check=True,
    )
    assert "evaluating" in result.stderr and "reading" in result.stderr
    assert result.stdout == ""


def test_explain_shows_each_condition_part(files, capsys) -> None:
    assert main(["replay", "--segments", str(files["defs"]), "--events", str(files["plain"]),
                 "--explain", "c-2"]) == 0
    explained = orjson.loads(capsys.readouterr().out)
    lapsed = explained["conditions"]["lapsed"]["when"]
    assert explained["segments"] == ["big", "lapsed"]
    assert [p["condition"] for p in lapsed["parts"]] == ["count(order_placed) >= 1", "since(last(order_placed)) > 1d"]
    assert explained["traits"] == {"spend": 150}


def _changes(files: dict[str, Path], events: Path) -> list[dict[str, object]]:
    out = files["dir"] / f"changes-of-{events.name}.jsonl"
    assert main(["replay", "--segments", str(files["defs"]), "--events", str(events), "--changes", str(out)]) == 0
    return read_jsonl(out)


def test_compression_is_recognised_by_content_not_by_name(files) -> None:
    """A compressed file without `.gz`, or a plain one named `.gz`, replays as what it is."""
    expected = _changes(files, files["plain"])
    unnamed, misnamed = files["dir"] / "packed.jsonl", files["dir"] / "plain.jsonl.gz"
    unnamed.write_bytes(files["gz"].read_bytes())
    misnamed.write_bytes(files["plain"].read_bytes())
    assert _changes(files, unnamed) == expected
    assert _changes(files, misnamed) == expected


@pytest.mark.parametrize("compress", [False, True])
def test_a_byte_order_mark_at_the_start_of_the_file_is_not_part_of_the_first_event(files, compress) -> None:
    """Windows tools (PowerShell's Out-File, Excel's "CSV UTF-8") begin a file with a BOM."""
    expected = _changes(files, files["plain"])
    marked = files["dir"] / "marked.jsonl"
    body = b"\xef\xbb\xbf" + files["plain"].read_bytes()
    marked.write_bytes(gzip.compress(body) if compress else body)
    assert _changes(files, marked) == expected
    loaded = load_events(marked)
    assert [line for line, _ in loaded.bad] == [2, 4]  # only the file's own bad lines


def test_a_cut_short_compressed_file_replays_what_was_read(files, capsys) -> None:
    """A .jsonl.gz still being written (or cut in a copy) is not fatal: the lines
    before the break are replayed, and the break is reported as a bad line."""
    lines = [event(f"e{n}", f"c-{n % 50}", f"2026-01-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z", n % 90)
             + b"\n" for n in range(4000)]
    whole = b"".join(lines)  # big enough that a cut falls well inside the data
    cut = files["dir"] / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(whole)[: len(gzip.compress(whole)) // 2])
    readable = b""
    with gzip.open(cut, "rb") as handle:  # the lines before the break, as gzip itself gives them
        try:
            for line in handle:
                readable += line
        except EOFError:
            pass
    read = len(readable.splitlines())
    assert 0 < read < len(lines)
    prefix = files["dir"] / "prefix.jsonl"
    prefix.write_bytes(readable)
    assert _changes(files, cut) == _changes(files, prefix)
    assert f"{cut}:{read + 1}: skipped: the compressed file ends here" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["--events", "{dir}"], "{dir}: is a folder; give a file of events"),
    (["--events", "{plain}", "--changes", "{dir}/missing/changes.jsonl"], "{dir}/missing/changes.jsonl: no such folder"),
    (["--events", "{plain}", "--memberships", "{dir}"], "{dir}: is a folder; give the name of a file to write"),
    (["--events", "{dir}/nothing.jsonl"], "{dir}/nothing.jsonl: no such file"),
    (["--events", "{plain}", "--changes", "{plain}"], "{plain}: is the events file; writing there would replace it"),
    (["--events", "{plain}", "--changes", "{dir}/../{dir_name}/events.jsonl"],
     "{dir}/../{dir_name}/events.jsonl: is the events file"),
    (["--events", "{plain}", "--memberships", "{defs}"], "{defs}: is a definitions file"),
    (["--events", "{plain}", "--changes", "{dir}/out.jsonl", "--memberships", "{dir}/out.jsonl"],
     "{dir}/out.jsonl: is another output of this command"),
    (["--events", "{plain}", "--changes", "/proc/version"], "/proc/version: cannot be written"),
    (["--events", "{plain}", "--as-of", "300000000000000"], "--as-of: '300000000000000' is outside 1970-01-01"),
    (["--events", "{plain}", "--as-of", "2026-01-20"], "--as-of: '2026-01-20' is a date alone, which could mean its "
                                                       "start or its end: write 2026-01-20T00:00:00Z for its start"),
])
def test_command_line_mistakes_get_one_line_before_any_work(files, arguments, message, capsys) -> None:
    names = {name: str(path) for name, path in files.items()} | {"dir_name": files["dir"].name}
    before = {path: path.read_bytes() for path in files["dir"].iterdir() if path.is_file()}
    code = main(["replay", "--segments", str(files["defs"]), *(a.format(**names) for a in arguments)])
    assert {path: path.read_bytes() for path in files["dir"].iterdir() if path.is_file()} == before  # nothing lost
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == next(line for line in err.splitlines() if line.strip())  # one line, no traceback
    assert err.startswith(message.format(**names))


def test_anonymous_ids_are_explained_as_the_worker_answers_for_them(files, tmp_path, capsys) -> None:
    """An identified visitor's id explains its customer, a visitor never identified its
    own history (both exited 1 as unknown), as `GET /customers/<id>` does."""
    events = tmp_path / "visit.jsonl"
    events.write_bytes(b"\n".join([
        orjson.dumps({"event_id": "v1", "type": "page_view", "anonymous_id": "d-1", "timestamp": "2026-01-01T00:00:00Z"}),
        orjson.dumps({"event_id": "v2", "type": "identify", "anonymous_id": "d-1", "customer_id": "c-7",
                      "timestamp": "2026-01-01T00:01:00Z"}),
        orjson.dumps({"event_id": "v3", "type": "page_view", "anonymous_id": "d-2", "timestamp": "2026-01-01T00:02:00Z"}),
        orjson.dumps({"event_id": "o1", "type": "order_placed", "customer_id": "c-8", "timestamp": "2026-03-01T00:00:00Z",
                      "properties": {"total": 5}}),
    ]) + b"\n")
    out = tmp_path / "members.jsonl"
    replay = ["replay", "--segments", str(files["defs"]), "--events", str(events), "--as-of", "2026-02-01T00:00:00Z"]
    assert main([*replay, "--explain", "c-7"]) == 0
    customer = orjson.loads(capsys.readouterr().out)
    assert main([*replay, "--explain", "d-1", "--memberships", str(out)]) == 0
    captured = capsys.readouterr()
    assert orjson.loads(captured.out) == customer and customer["customer_id"] == "c-7"
    assert customer["anonymous"] is False and customer["as_of"] == "2026-02-01T00:00:00Z"
    assert "--explain: 'd-1' is an anonymous id of customer 'c-7', explained below" in captured.err
    assert [orjson.loads(line)["customer_id"] for line in out.read_bytes().splitlines()] == ["c-7"]
    assert main([*replay, "--explain", "d-2"]) == 0
    visitor = orjson.loads(capsys.readouterr().out)
    assert (visitor["customer_id"], visitor["anonymous"], visitor["segments"]) == ("d-2", True, [])
    assert main([*replay, "--explain", "c-8"]) == 1  # in the file, but only after the as-of
    assert capsys.readouterr().err.startswith(
        "--explain: customer 'c-8' has no event at or before the as-of (the first is at 2026-03-01T00:00:00Z)")


def test_a_customer_missing_from_the_usable_events_may_be_on_a_bad_line(files, capsys) -> None:
    """c-9's only line has a timestamp that cannot be read: not "not in the file"."""
    assert main(["replay", "--segments", str(files["defs"]), "--events", str(files["plain"]), "--explain", "c-9"]) == 1
    assert (f"--explain: no customer 'c-9' among the usable events of {files['plain']} (or only on the 2 bad lines "
            "skipped)\n") in capsys.readouterr().err


def test_a_file_without_usable_events_says_so_and_fails(files, tmp_path, capsys) -> None:
    """A backfill in CI must not pass on a file it could not read; an empty file (a
    day without traffic) is no failure."""
    events = tmp_path / "bad-only.jsonl"
    events.write_bytes(b"not json\n")
    assert main(["replay", "--segments", str(files["defs"]), "--events", str(events)]) == 1
    err = capsys.readouterr().err
    assert "replayed 0 events of 0 customers as of - (no usable events)" in err and "0 duplicates, 1 bad line\n" in err
    assert err.endswith(f"{events}: no usable events in its 1 line, 1 of them bad (see above)\n")
    events.write_bytes(b"")
    assert main(["replay", "--segments", str(files["defs"]), "--events", str(events)]) == 0


@pytest.mark.parametrize(("tool", "name", "reader"), [(["bzip2", "-c"], "bzip2", "bzcat"), (["xz", "-c"], "xz", "xzcat")])
def test_a_file_compressed_with_another_tool_is_one_bad_line_that_names_it(files, tmp_path, capsys, tool, name,
                                                                           reader) -> None:
    """Not a "not UTF-8" for each of its lines: what it is and how to read it."""
    if shutil.which(tool[0]) is None:
        pytest.skip(f"{tool[0]} is not installed")
    packed = tmp_path / "events.jsonl.packed"
    packed.write_bytes(subprocess.run([*tool, str(files["plain"])], capture_output=True, check=True).stdout)
    assert main(["replay", "--segments", str(files["defs"]), "--events", str(packed)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"{packed}:1: skipped: the file is compressed with {name}; only gzip is read: decompress it "
                      f"first, e.g. --events <({reader} {packed})")
    assert "1 bad line" in err[1]


@pytest.mark.parametrize("listed", [False, True])
def test_every_bad_line_can_be_listed_in_a_file(files, tmp_path, capsys, listed) -> None:
    """stderr shows the first 20 bad lines; `--bad-lines` writes all of them."""
    good = files["plain"].read_bytes().splitlines()
    lines = list(good)
    made_bad = []
    for n in range(25):
        lines.append(b'{"event_id": "x' + str(n).encode() + b'", "type": "Order Placed"}')
        made_bad.append(len(lines))
    events = tmp_path / "dirty.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "bad.jsonl"
    command = ["replay", "--segments", str(files["defs"]), "--events", str(events)]
    assert main(command + (["--bad-lines", str(out)] if listed else [])) == 0
    err = capsys.readouterr().err
    shown = [int(line.split(":")[1]) for line in err.splitlines() if ": skipped: " in line]
    assert shown == ([2, 4] + made_bad)[:20]
    if listed:
        written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        assert [entry["line"] for entry in written] == [2, 4] + made_bad
        assert all(entry["reason"] for entry in written)
        assert f"... and 7 more bad lines (all of them in {out})" in err
    else:
        assert "... and 7 more bad lines (`segmenter replay --bad-lines FILE` lists them all)" in err


def test_events_can_come_from_a_pipe(files, tmp_path) -> None:
    """`--events <(zcat export.jsonl.gz)` or `--events /dev/stdin`: a stream that cannot seek."""
    expected = _changes(files, files["plain"])
    for source in (files["plain"], files["gz"]):
        out = tmp_path / "changes-from-pipe.jsonl"
        done = subprocess.run(
            [sys.executable, "-m", "stream.cli", "replay", "--segments", str(files["defs"]),
             "--events", "/dev/stdin", "--changes", str(out)],
            input=source.read_bytes(), capture_output=True, cwd=Path(__file__).parents[2], timeout=60)  # a pipe
        assert done.returncode == 0, done.stderr
        assert read_jsonl(out) == expected


def test_a_disk_that_fills_up_is_one_line_not_a_traceback(files, capsys) -> None:
    code = main(["replay", "--segments", str(files["defs"]), "--events", str(files["plain"]),
                 "--changes", "/dev/full"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("/dev/full: writing failed (No space left on device)") and "Traceback" not in err


def test_devices_and_named_pipes_are_outputs_like_any_other(files, tmp_path) -> None:
    """`/dev/null` twice is no overwrite, and a named pipe's reader gets every change
    (opening and closing its end to check it would end the reader early)."""
    expected = _changes(files, files["plain"])
    base = ["replay", "--segments", str(files["defs"]), "--events", str(files["plain"])]
    assert main([*base, "--changes", "/dev/null", "--memberships", "/dev/null"]) == 0
    fifo = tmp_path / "changes.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    assert main([*base, "--changes", str(fifo)]) == 0
    out, _ = reader.communicate(timeout=30)
    assert [orjson.loads(line) for line in out.splitlines()] == expected


def test_changes_can_go_to_standard_output_through_a_pipe(files) -> None:
    """`--changes /dev/stdout | jq .`: the link /dev/stdout points at `pipe:[N]`, a name
    with no file behind it, and the pipe is written like any other output."""
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "replay", "--segments", str(files["defs"]),
         "--events", str(files["plain"]), "--changes", "/dev/stdout"],
        capture_output=True, cwd=Path(__file__).parents[2], timeout=60)  # stdout is a pipe
    assert done.returncode == 0, done.stderr
    assert [orjson.loads(line) for line in done.stdout.splitlines()] == _changes(files, files["plain"])


def test_a_dash_is_standard_input_and_output(files) -> None:
    """`zcat export.jsonl.gz | segmenter replay --events - --changes - | jq .`"""
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "replay", "--segments", str(files["defs"]), "--events", "-",
         "--changes", "-"],
        input=files["plain"].read_bytes(), capture_output=True, cwd=Path(__file__).parents[2], timeout=60)
    assert done.returncode == 0, done.stderr
    assert [orjson.loads(line) for line in done.stdout.splitlines()] == _changes(files, files["plain"])
    assert not (Path(__file__).parents[2] / "-").exists()


def test_a_named_pipe_is_not_opened_to_check_it(files, tmp_path) -> None:
    """Deterministic half of the test above: with no reader yet, opening the pipe to
    check it would wait for one (and, once there, end it with an empty write)."""
    fifo = tmp_path / "changes.fifo"
    os.mkfifo(fifo)
    checking = threading.Thread(target=checked_inputs, args=(files["plain"], None, [fifo]), daemon=True)
    checking.start()
    checking.join(timeout=10)
    if checking.is_alive():  # stuck opening the pipe: give it a reader so the thread ends
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    assert not checking.is_alive(), "checking the outputs opened the named pipe"


def test_an_output_through_a_link_not_yet_pointing_anywhere_keeps_the_link(files, tmp_path) -> None:
    link, target = tmp_path / "link.jsonl", tmp_path / "target.jsonl"
    link.symlink_to(target)
    assert main(["replay", "--segments", str(files["defs"]), "--events", str(files["plain"]),
                 "--changes", str(link)]) == 0
    assert link.is_symlink() and read_jsonl(target) == _changes(files, files["plain"])
