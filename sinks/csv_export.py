"""A `csv` destination: rows appended to the file at `path`, for a spreadsheet.

Columns: customer_id, segment, change, seq, at, cause; the header is written once,
when the file is new. Each row is one `write` of a whole line on a file opened for
appending, and a batch is fsynced before it counts as done (and before the input
offset is committed), so the file never holds half a row that was acknowledged.

A row is written once per (customer, segment, seq): the rows already in the file are
read at start and whatever other writers appended since is read again under an
exclusive lock before each batch, so a redelivered change adds no second row, even
with several sinks processes on one host. A partial last line (a crash in the
middle of a write, which was never acknowledged) is cut off before appending.
Cells starting with = + - @ get a leading ' so a spreadsheet shows them as text.
"""
from __future__ import annotations

import asyncio
import csv
import fcntl
import io
import os
from collections.abc import Sequence
from pathlib import Path

from rules.language.model import Destination
from sinks.base import Delivery, Outcome, PermanentError, Sink, Status
from sinks.context import SinkContext

COLUMNS = ("customer_id", "segment", "change", "seq", "at", "cause")
FORMULA = ("=", "+", "-", "@")


def _cell(value: object) -> str:
    text = "" if value is None else str(value).replace("\r", " ").replace("\n", " ")
    return "'" + text if text.startswith(FORMULA) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:2] in FORMULA else text


def format_row(values: Sequence[object]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([_cell(value) for value in values])
    return out.getvalue().encode("utf-8")


class CsvSink(Sink):
    def __init__(self, destination: Destination, context: SinkContext) -> None:
        super().__init__(destination)
        self.path = Path(str(destination.settings.get("path") or ""))
        self.seen: set[tuple[str, str, str]] = set()
        self.read_to = 0  # bytes of the file already read into `seen`

    def _catch_up(self, fd: int) -> int:
        """Read rows appended since last time; cut a partial tail; returns the file size."""
        size = os.fstat(fd).st_size
        if size < self.read_to:  # replaced or truncated by someone: read it all again
            self.seen.clear()
            self.read_to = 0
        data = os.pread(fd, size - self.read_to, self.read_to) if size > self.read_to else b""
        complete = data[: data.rfind(b"\n") + 1]
        tail = data[len(complete):]
        if tail and _whole_row(tail):  # saved by an editor without a final line break: the row stays
            ending = b"\n" if tail.endswith(b"\r") else b"\r\n"
            size += os.write(fd, ending)
            complete = data + ending
        elif tail:  # a row cut short by a crash while it was written: written again below
            size = self.read_to + len(complete)
            os.ftruncate(fd, size)
        for row in csv.reader(io.StringIO(complete.decode("utf-8", errors="replace"))):
            if len(row) >= 4 and tuple(row[:4]) != COLUMNS[:4]:
                self.seen.add((_uncell(row[0]), row[1], row[3]))
        self.read_to = size
        return size

    def _write(self, batch: Sequence[Delivery]) -> list[Outcome]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = self._catch_up(fd)
            if size == 0:
                size += os.write(fd, format_row(COLUMNS))
            outcomes: list[Outcome] = []
            for item in batch:
                change = item.change
                key = (change.customer_id, change.segment, str(change.seq))
                if key in self.seen:
                    outcomes.append(Status.DUPLICATE)
                    continue
                raw = change.raw
                size += os.write(fd, format_row([change.customer_id, change.segment, change.change, change.seq,
                                                 raw.get("at"), raw.get("cause")]))
                self.seen.add(key)
                outcomes.append(Status.APPLIED)
            os.fsync(fd)
            self.read_to = size
            return outcomes
        finally:
            os.close(fd)  # closing releases the lock

    async def deliver(self, batch: Sequence[Delivery], deadline: float | None = None) -> list[Outcome]:
        if not str(self.path) or str(self.path) == ".":
            return [PermanentError(f"csv destination {self.name!r} has no path")] * len(batch)
        try:
            return await asyncio.to_thread(self._write, batch)
        except OSError as exc:
            return [exc] * len(batch)


def _whole_row(tail: bytes) -> bool:
    """Whether a last line without its line break holds every column (a row kept by
    an editor) rather than the start of one (a write cut short)."""
    rows = list(csv.reader(io.StringIO(tail.decode("utf-8", errors="replace"))))
    return len(rows) == 1 and len(rows[0]) >= len(COLUMNS)
