"""What the demo shows: live changes and segment sizes, computed from the change stream."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import orjson
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


@dataclass
class DemoView:
    descriptions: dict[str, str]
    broker: str = ""
    phase: str = "starting"
    produced: int = 0
    changes: int = 0
    timer_changes: int = 0
    dead_letters: int = 0
    sinks: str = ""  # where the sinks' effects are, or why there are none
    sink_counts: dict[str, int] = field(default_factory=dict)
    last_sink_failure: str = ""
    members: dict[str, int] = field(default_factory=dict)
    recent: deque[tuple[str, dict[str, object]]] = field(default_factory=lambda: deque(maxlen=14))
    _last_seq: dict[tuple[str, str], int] = field(default_factory=dict)
    _started: float = field(default_factory=time.monotonic)
    _rate_mark: tuple[float, int] = (0.0, 0)
    rate: float = 0.0

    def on_change(self, value: bytes) -> None:
        change = orjson.loads(value)
        key = (change["customer_id"], change["segment"])
        if change["seq"] <= self._last_seq.get(key, 0):
            return  # a redelivered duplicate: same seq, already counted
        self._last_seq[key] = change["seq"]
        self.changes += 1
        if change["cause"] == "timer":
            self.timer_changes += 1
        delta = 1 if change["change"] == "enter" else -1
        self.members[change["segment"]] = self.members.get(change["segment"], 0) + delta
        self.recent.appendleft((time.strftime("%H:%M:%S"), change))

    def on_sink_dead_letter(self, value: bytes) -> None:
        """Remember why the latest action was dead-lettered: the first thing to fix."""
        letter = orjson.loads(value)
        change = letter.get("change") or {}
        error = str(letter.get("error")).removeprefix("PermanentError: ")
        self.last_sink_failure = f"{letter.get('destination')} for {change.get('customer_id')}: {error}"
        if len(self.last_sink_failure) > 180:
            self.last_sink_failure = self.last_sink_failure[:179] + "…"

    def tick(self) -> None:
        now = time.monotonic()
        mark_time, mark_count = self._rate_mark
        if now - mark_time >= 1.0:
            if mark_time:
                self.rate = (self.produced - mark_count) / (now - mark_time)
            self._rate_mark = (now, self.produced)

    def sink_line(self, separator: str = ", ") -> str:
        return separator.join(f"{label} {count:,}" for label, count in self.sink_counts.items() if label != "dead letters")

    def dead_letter_line(self) -> str:
        count = self.sink_counts.get("dead letters", 0)
        return f"dead letters {count:,}" + (f", the last: {self.last_sink_failure}" if count and self.last_sink_failure else "")

    def summary_line(self) -> str:
        sizes = ", ".join(f"{name} {count}" for name, count in sorted(self.members.items()) if count)
        actions = f" | actions: {self.sink_line()}, {self.dead_letter_line()}" if self.sink_counts else ""
        return (f"[{self.phase}] events {self.produced:,} ({self.rate:,.0f}/s), changes {self.changes:,} "
                f"({self.timer_changes:,} time-based), bad events {self.dead_letters}{actions} | {sizes}")

    def render(self) -> Group:
        self.tick()
        header = Text.assemble(
            ("segmenter demo", "bold"), f"  broker {self.broker}  ", (self.phase, "cyan"),
            f"\nevents sent {self.produced:,} ({self.rate:,.0f}/s)   changes {self.changes:,} "
            f"({self.timer_changes:,} time-based, no event needed)   bad events {self.dead_letters}",
            f"\nactions   {self.sink_line(' · ')}" if self.sink_counts else "",
            (f"\n{self.dead_letter_line()}" if self.sink_counts.get("dead letters") else "", "yellow"),
            (f"\n{self.sinks}" if self.sinks else "", "dim"),
            ("\nCtrl-C stops everything.", "dim"),
        )
        sizes = Table(title="segment sizes", expand=True, show_edge=False)
        sizes.add_column("segment")
        sizes.add_column("members", justify="right")
        sizes.add_column("", ratio=1)
        largest = max([1, *self.members.values()])
        for name in sorted(self.descriptions):
            count = self.members.get(name, 0)
            sizes.add_row(name, f"{count:,}", Text("█" * max(0, int(30 * count / largest)), style="green"))
        recent = Table(title="latest changes", expand=True, show_edge=False)
        for column in ("time", "customer", "change", "segment", "cause"):
            recent.add_column(column)
        for stamp, change in self.recent:
            style = "green" if change["change"] == "enter" else "red"
            cause = "⏱ timer" if change["cause"] == "timer" else str(change["cause"])
            recent.add_row(stamp, str(change["customer_id"]), Text(str(change["change"]), style=style),
                           str(change["segment"]), cause)
        return Group(Panel(header), sizes, recent)
