"""A progress bar on stderr for long work (replays of big files, backfills)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class _Bar:
    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    def task(self, description: str, total: int) -> Callable[[int], None]:
        """Start a task; returns `update(completed)`."""
        if self._progress is None:
            return lambda completed: None
        task_id = self._progress.add_task(description, total=total)
        progress = self._progress
        return lambda completed: progress.update(task_id, completed=completed)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[_Bar]:
    if not enabled:
        yield _Bar(None)
        return
    columns = (TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        yield _Bar(progress)
