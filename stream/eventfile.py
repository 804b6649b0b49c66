"""Reading event files (JSONL, plain or gzip-compressed) for replay, lint and preview."""
from __future__ import annotations

import gzip
import operator
import zlib
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rules import BadEvent, Event, parse_event


@dataclass
class LoadedEvents:
    """Good events in event-time order (ties keep file order) and bad lines with reasons."""

    events: list[Event] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    lines: int = 0


UTF8_BOM = b"\xef\xbb\xbf"
"""Some Windows tools begin a UTF-8 text file with this mark; it is not part of the first line."""
GZIP_MAGIC = b"\x1f\x8b"
"""How a gzip file begins: compression is recognised by content, not by the name."""
OTHER_FORMATS = {b"BZh": ("bzip2", "bzcat"), b"\xfd7zXZ\x00": ("xz", "xzcat"), b"\x28\xb5\x2f\xfd": ("zstd", "zstdcat"),
                 b"PK\x03\x04": ("zip", "unzip -p"), b"\x04\x22\x4d\x18": ("lz4", "lz4cat")}
"""How files this reader does not decompress begin, with the tool that does: such a
file is one bad line saying so, not a "not UTF-8" for each of its lines."""


def load_events(path: Path, on_progress: object = None,
                read_properties: Container[str] | None = None) -> LoadedEvents:
    """Parse every line; bad lines are kept as (line, reason), never fatal.

    A compressed file that breaks off (truncated while it was being copied or
    written, or corrupt) keeps the lines read before the break, and the break is
    reported as a bad line after them: what could be read is replayed.
    `on_progress(bytes_read)` is called now and then so a caller can draw a bar.
    `read_properties`: keep the properties of these event types only (see
    `parse_event`); every line is validated all the same.
    """
    loaded = LoadedEvents()
    events, bad = loaded.events, loaded.bad
    raw_size = path.stat().st_size
    with path.open("rb") as raw:
        start = raw.peek(6)[:6]  # peeked, not read: a pipe cannot seek back
        other = next((found for magic, found in OTHER_FORMATS.items() if start.startswith(magic)), None)
        if other is not None:
            loaded.lines = 1
            source = path if raw.seekable() else "FILE"  # not /dev/stdin
            bad.append((1, f"the file is compressed with {other[0]}; only gzip is read: decompress it first, "
                           f"e.g. --events <({other[1]} {source})"))
            return loaded
        compressed = start[:2] == GZIP_MAGIC
        handle: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        if not raw.seekable():  # a pipe (`--events <(zcat ...)`, /dev/stdin): no position to show
            on_progress = None
        append, number = events.append, 0
        try:
            for number, line in enumerate(handle, start=1):
                if number == 1 and line.startswith(UTF8_BOM):
                    line = line[len(UTF8_BOM):]
                try:
                    append(parse_event(line, read_properties=read_properties))
                except BadEvent as exc:
                    if line.strip():
                        bad.append((number, str(exc)))
                if on_progress is not None and not number % 50_000:
                    on_progress(min(raw.tell(), raw_size))  # type: ignore[operator]
        except EOFError:
            number += 1
            bad.append((number, "the compressed file ends here, cut short (was it still being written?); "
                                "the lines before were read"))
        except (OSError, zlib.error) as exc:
            number += 1
            bad.append((number, f"the file cannot be read from here on ({exc}); the lines before were read"))
        loaded.lines = number
    if on_progress is not None:
        on_progress(raw_size)  # type: ignore[operator]
    events.sort(key=_TIMESTAMP)  # stable: equal timestamps keep file order
    return loaded


_TIMESTAMP = operator.attrgetter("ts")
