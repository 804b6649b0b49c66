"""CSV export: header once, complete rows, no duplicates across redeliveries and restarts."""
from __future__ import annotations

import csv
from pathlib import Path

from rules.language.model import Action, Destination, Origin
from sinks.base import Delivery, Status
from sinks.changes import parse_change
from sinks.context import SinkContext
from sinks.csv_export import COLUMNS, CsvSink

HERE = Origin("test", 1)
EXPORT = Action("export", "backorders", {}, HERE)


def item(customer: str, seq: int, kind: str = "enter", cause: str = "e-1") -> Delivery:
    change = parse_change({"customer_id": customer, "segment": "backordered", "change": kind, "seq": seq,
                           "at": "2026-11-20T10:00:00Z", "cause": cause, "holdout": False, "definition": "d"})
    return Delivery(change, EXPORT)


def sink(context: SinkContext, path: Path) -> CsvSink:
    return CsvSink(Destination("backorders", "csv", {"path": str(path)}, HERE), context)


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


async def test_rows_once_with_one_header(context: SinkContext, tmp_path: Path) -> None:
    path = tmp_path / "exports" / "backordered.csv"
    first = sink(context, path)
    assert await first.deliver([item("c-1", 1), item("c-2", 1), item("c-1", 1)]) == [
        Status.APPLIED, Status.APPLIED, Status.DUPLICATE]
    assert await first.deliver([item("c-1", 2, "exit"), item("c-2", 1)]) == [Status.APPLIED, Status.DUPLICATE]
    restarted = sink(context, path)  # a new process reads what is there
    assert await restarted.deliver([item("c-1", 1), item("c-3", 1, cause="=HYPERLINK(\"x\")")]) == [
        Status.DUPLICATE, Status.APPLIED]
    found = rows(path)
    assert found[0] == list(COLUMNS)
    assert found[1:] == [
        ["c-1", "backordered", "enter", "1", "2026-11-20T10:00:00Z", "e-1"],
        ["c-2", "backordered", "enter", "1", "2026-11-20T10:00:00Z", "e-1"],
        ["c-1", "backordered", "exit", "2", "2026-11-20T10:00:00Z", "e-1"],
        ["c-3", "backordered", "enter", "1", "2026-11-20T10:00:00Z", "'=HYPERLINK(\"x\")"],
    ]
    assert path.read_bytes().endswith(b"\r\n")


async def test_partial_last_line_is_cut_and_the_row_written_again(context: SinkContext, tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    assert await sink(context, path).deliver([item("c-1", 1)]) == [Status.APPLIED]
    with path.open("ab") as handle:  # a crash in the middle of writing c-2's row
        handle.write(b"c-2,backord")
    assert await sink(context, path).deliver([item("c-2", 1)]) == [Status.APPLIED]
    assert [row[0] for row in rows(path)] == ["customer_id", "c-1", "c-2"]


async def test_two_writers_share_one_file(context: SinkContext, tmp_path: Path) -> None:
    path = tmp_path / "shared.csv"
    one, two = sink(context, path), sink(context, path)
    await one.deliver([item("c-1", 1)])
    assert await two.deliver([item("c-1", 1), item("c-2", 1)]) == [Status.DUPLICATE, Status.APPLIED]
    assert await one.deliver([item("c-2", 1)]) == [Status.DUPLICATE]
    assert len(rows(path)) == 3


async def test_a_file_saved_without_its_last_line_break_keeps_its_last_row(context: SinkContext,
                                                                           tmp_path: Path) -> None:
    """An editor saved the export without a final line break: that row is whole and stays."""
    path = tmp_path / "backordered.csv"
    assert await sink(context, path).deliver([item("c-1", 1), item("c-2", 1)]) == [Status.APPLIED] * 2
    path.write_bytes(path.read_bytes().rstrip(b"\r\n"))
    again = sink(context, path)
    assert await again.deliver([item("c-2", 1), item("c-3", 1)]) == [Status.DUPLICATE, Status.APPLIED]
    assert [row[0] for row in rows(path)] == ["customer_id", "c-1", "c-2", "c-3"]
    assert all(len(row) == len(COLUMNS) for row in rows(path))
