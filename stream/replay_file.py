"""Replaying a file of events: the steps `replay`, `lint` and `preview` share.

Reading is separate from evaluating so a file can be read once and evaluated under
two sets of definitions (`preview`).
"""
from __future__ import annotations

import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

from rules import Change, Engine
from rules.evaluate.events import LATEST_TIMESTAMP
from rules.evaluate.program import property_readers
from rules.language.model import Definitions
from rules.timeutil import DATE_ONLY, format_timestamp, parse_timestamp
from stream.eventfile import LoadedEvents, load_events
from stream.gcpause import collector_paused
from stream.replay import OnChange, ReplaySummary, replay
from stream.table import counted

SHOWN_BAD_LINES = 20
BIG_FILE_BYTES = 5_000_000


class Progress(Protocol):
    """What `stream.progress.progress_bar()` yields: one bar per task."""

    def task(self, description: str, total: int) -> Callable[[int], None]: ...


def wants_progress(choice: str, events: Path) -> bool:
    """`--progress auto` draws a bar only for files big enough to wait for."""
    return choice == "always" or (choice == "auto" and events.stat().st_size > BIG_FILE_BYTES)


def input_path(text: str) -> Path:
    """An `--events` argument: `-` is standard input, as for most Unix tools."""
    return Path("/dev/stdin") if text == "-" else Path(text)


def output_path(text: str) -> Path:
    """An output argument: `-` is standard output, as for most Unix tools."""
    return Path("/dev/stdout") if text == "-" else Path(text)


def parse_as_of(text: str | None) -> int | None:
    """`--as-of` as RFC 3339 or epoch milliseconds, within the span of event times;
    raises ValueError."""
    if text is None:
        return None
    if DATE_ONLY.fullmatch(text):  # start or end of that day? Say which
        raise ValueError(f"{text!r} is a date alone, which could mean its start or its end: write "
                         f"{text}T00:00:00Z for its start, or {text}T23:59:59.999Z for its end")
    instant = parse_timestamp(int(text) if text.isdigit() else text)
    if not 0 <= instant <= LATEST_TIMESTAMP:
        raise ValueError(f"{text!r} is outside 1970-01-01 .. 9999-12-31, the span of event times")
    return instant


def checked_inputs(events: Path, as_of: str | None, outputs: Iterable[Path | None] = (),
                   definitions: Iterable[Path] = ()) -> int | None:
    """The events file must be a readable file, `--as-of` must parse and every output
    file must be one that can be written, and none of them the events, a definitions
    file or another output; raises ValueError with the message to print (the shared
    first step of replay, preview and lint), so that no mistake in a command line
    shows up as a traceback, or only after a long replay, or as a lost input."""
    if not events.exists():
        raise ValueError(f"{events}: no such file")
    if events.is_dir():
        raise ValueError(f"{events}: is a folder; give a file of events (JSONL, or JSONL compressed with gzip)")
    try:
        events.open("rb").close()
    except OSError as exc:
        raise ValueError(f"{events}: cannot be read ({exc.strerror})") from None
    taken = {_identity(events): "the events file"}
    for path in definitions:
        taken.setdefault(_identity(path), "a definitions file")
    for output in outputs:
        if output is None:
            continue
        if output.is_dir():
            raise ValueError(f"{output}: is a folder; give the name of a file to write")
        if not output.parent.is_dir():
            raise ValueError(f"{output}: no such folder {output.parent}")
        identity = _identity(output)
        if identity in taken:
            raise ValueError(f"{output}: is {taken[identity]}; writing there would replace it, give another name")
        taken[identity] = "another output of this command"
        _try_writing(output)
    try:
        return parse_as_of(as_of)
    except ValueError as exc:
        raise ValueError(f"--as-of: {exc}") from None


def _try_writing(path: Path) -> None:
    """Open a regular file (or a new one) for appending, to learn now that it can be
    written; nothing is written and a file created here is removed. A named pipe or a
    device is left alone: opening a pipe's end and closing it would end its reader.
    What is there is asked of the path itself, not of its resolved name: /dev/stdout
    on a pipe resolves to `pipe:[N]`, a name with no file behind it."""
    try:
        found = path.stat()
    except OSError:
        found = None
    if found is not None and not stat.S_ISREG(found.st_mode):
        return
    target = path.resolve()  # a link stays a link; its target is what gets written
    existed = found is not None
    try:
        target.open("ab").close()
    except OSError as exc:
        raise ValueError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    if not existed:
        target.unlink(missing_ok=True)


def _identity(path: Path) -> object:
    """The same file whatever the spelling of its path (links, `./`, `..`). A device or
    a pipe (`/dev/null`, `/dev/stdout`) is nothing an output could replace: each
    mention of one is its own."""
    try:
        found = path.stat()
    except OSError:
        return path.resolve()
    if not stat.S_ISREG(found.st_mode):
        return object()  # equal to nothing, not even another mention of the same device
    return (found.st_dev, found.st_ino)


class OutputError(Exception):
    """An output file that could not be written to the end (a full disk, say); the
    message is the line to print."""


@contextmanager
def output_file(path: Path) -> Iterator[BinaryIO]:
    """`path` open for writing; an OSError while it is opened, written or closed comes
    out as `OutputError`, so a command prints one line instead of a traceback."""
    try:
        with path.open("wb") as out:
            yield out
    except OSError as exc:
        raise OutputError(f"{path}: writing failed ({exc.strerror or exc}); the file may be incomplete") from None


def read_events(path: Path, bar: Progress, *definitions: Definitions) -> LoadedEvents:
    """The events of `path`, keeping only the properties that `definitions` read
    (all of them when no definitions are given)."""
    read_properties = frozenset().union(*map(property_readers, definitions)) if definitions else None
    with collector_paused():
        return load_events(path, bar.task("reading", path.stat().st_size), read_properties)


def evaluate(definitions: Definitions, loaded: LoadedEvents, bar: Progress, as_of: int | None = None,
             on_change: OnChange | None = None, label: str = "evaluating") -> tuple[Engine, ReplaySummary]:
    """A fresh engine over `loaded` up to `as_of`; the events are not changed, so they can be reused."""
    engine = Engine(definitions)
    progress = bar.task(label, len(loaded.events))

    def ignore(change: Change) -> None:
        return None

    with collector_paused():
        summary = replay(engine, loaded.events, on_change or ignore, as_of, on_progress=progress)
    progress(len(loaded.events))
    return engine, summary


def final_memberships(engine: Engine) -> dict[str, list[str]]:
    """Customer id -> segments (sorted) as of the end of the replay, for every known customer."""
    return final_memberships_and_holdouts(engine)[0]


def final_memberships_and_holdouts(engine: Engine) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """`final_memberships`, and customer id -> the segments whose holdout group holds
    the customer, for those in any: one pass, as the engine answers both together."""
    members: dict[str, list[str]] = {}
    held: dict[str, list[str]] = {}
    for customer in engine.customers():
        members[customer], holdout = engine.memberships(customer)
        if holdout:
            held[customer] = holdout
    return members, held


def report_bad_lines(path: Path, loaded: LoadedEvents, listed: Path | None = None) -> None:
    """The first bad lines on stderr; `listed`: the file that holds them all (replay's
    `--bad-lines`), named instead of the hint."""
    for line, reason in loaded.bad[:SHOWN_BAD_LINES]:
        print(f"{path}:{line}: skipped: {reason}", file=sys.stderr)
    if len(loaded.bad) > SHOWN_BAD_LINES:
        where = f"all of them in {listed}" if listed else "`segmenter replay --bad-lines FILE` lists them all"
        print(f"... and {counted(len(loaded.bad) - SHOWN_BAD_LINES, 'more bad line')} ({where})", file=sys.stderr)


def nothing_to_evaluate(path: Path, loaded: LoadedEvents, as_of: int | None) -> str | None:
    """Why `path` gives no event to evaluate up to `as_of`, or None. lint and preview
    refuse such a file: over an empty shop, "no warnings" and "nobody changes
    segments" would read as an all-clear."""
    if not loaded.lines:
        return f"{path}: no events: the file is empty"
    if not loaded.events:
        bad = f", {len(loaded.bad):,} of them bad (see above)" if loaded.bad else ""
        return f"{path}: no usable events in its {counted(loaded.lines, 'line')}{bad}"
    first = loaded.events[0].ts
    if as_of is not None and first > as_of:
        return (f"{path}: no events at or before --as-of {format_timestamp(as_of)}; the first is from "
                f"{format_timestamp(first)}")
    return None
