"""Shared pieces of the worker benchmark: the bench context on the embedded broker,
child processes and their CPU use, small helpers."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aiokafka import TopicPartition

from stream.broker import EmbeddedBroker
from stream.kafka import timers as worker_timers
from stream.kafka.topics import ensure_topics, worker_topics
from stream.settings import Settings, to_environment


REPO = Path(__file__).resolve().parents[2]

SEGMENTS = REPO / "examples" / "segments"
INPUTS = ["orders", "behavior", "customers"]
PARTITIONS = 4
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
IDLE_MS = getattr(worker_timers, "IDLE_MS", 1000)  # a partition idle this long lets its flips follow the wall clock

LATENCY_DEFINITIONS = """\
segments:
  viewed:
    description: Viewed a page at least once (each benchmark event is a new customer, so each enters)
    when: count(page_view) >= 1
"""

TIMER_DEFINITIONS = """\
segments:
  recent:
    description: Pinged within the last {window}
    when: since(last(ping)) < {window}
"""


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def wall_ms() -> int:
    return int(time.time() * 1000)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def process_tree(pid: int) -> list[int]:
    """`pid` and its running descendants (a worker run with --processes has children)."""
    found = [pid]
    for tasks in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [p for child in tasks.read_text().split() for p in process_tree(int(child))]
        except OSError:
            pass
    return found


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(p) for p in process_tree(pid))


def tree_wait_seconds(pid: int) -> float:
    return sum(cpu_wait_seconds(p) for p in process_tree(pid))


def cpu_wait_seconds(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a core (/proc/<pid>/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel a background reader (if it was started) and wait until it has ended."""
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def at_ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


class Child:
    """A subprocess in its own process group; its output lines are kept with their arrival time."""

    running: list[Child] = []

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.lines: list[tuple[float, str]] = []
        self.process = subprocess.Popen(
            argv, cwd=REPO, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True,
        )
        Child.running.append(self)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.log_path.open("a") as out:
            for line in self.process.stdout:
                self.lines.append((time.time(), line))
                out.write(line)
                out.flush()

    def tail(self, n: int = 25) -> str:
        return "".join(line for _, line in self.lines[-n:])

    async def wait_line(self, marker: str, timeout: float) -> tuple[float, str]:
        """(arrival wall time, line) of the first output line containing `marker`."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            lines = self.lines
            for stamp, line in lines[seen:]:
                if marker in line:
                    return stamp, line
            seen = len(lines)
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no {marker!r} after {timeout:.0f}s; see {self.log_path}\n"
                                   f"{self.tail()}")
            await asyncio.sleep(0.02)

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}\n"
                               f"{self.tail()}")

    def cpu(self) -> float:
        return tree_cpu_seconds(self.process.pid)

    def waited(self) -> float:
        return tree_wait_seconds(self.process.pid)

    def stop(self, timeout: float = 15.0) -> None:
        if self in Child.running:
            Child.running.remove(self)
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass

    @classmethod
    def stop_all(cls) -> None:
        for child in list(cls.running):
            child.stop()


class Usage:
    """CPU used by a process (with its children) and the broker, and the process's wait
    for a core, over a `with` block."""

    def __init__(self, pid: int, broker: EmbeddedBroker) -> None:
        self.pid = pid
        self.broker_pid = broker.process.pid if broker.process else 0

    def _own(self) -> tuple[float, float]:
        return tree_cpu_seconds(self.pid), tree_wait_seconds(self.pid)

    def __enter__(self) -> Usage:
        self.began = time.monotonic()
        (self.cpu, self.waited), self.broker = self._own(), cpu_seconds(self.broker_pid)
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.monotonic() - self.began
        cpu, waited = self._own()
        self.cpu, self.waited = cpu - self.cpu, waited - self.waited
        self.broker = cpu_seconds(self.broker_pid) - self.broker

    def text(self, name: str) -> str:
        wall = max(self.wall, 1e-9)
        return (f"{name} CPU {self.cpu / wall:.0%} of a core (waited for one {self.waited / wall:.0%} of the time), "
                f"broker {self.broker / wall:.0%}")


@dataclass
class Bench:
    broker: EmbeddedBroker
    workdir: Path
    ends: dict[TopicPartition, int] = field(default_factory=dict)  # pre-produced inputs: true end offsets

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def total(self) -> int:
        return sum(self.ends.values())

    def settings(self, name: str, segments: Path, topics: list[str]) -> Settings:
        return Settings(brokers=[self.broker.url], segments=segments, topics=topics, app_id=name,
                        changes_topic=f"{name}-changes", repartition_topic=f"{name}-repartition",
                        dlq_topic=f"{name}-dlq", partitions=PARTITIONS, store="memory://",
                        data_dir=self.workdir / name, web_port=0)

    async def start_worker(self, settings: Settings) -> Child:
        await ensure_topics(settings, worker_topics(settings))
        return Child(settings.app_id, [sys.executable, "-m", "stream.cli", "worker"], to_environment(settings),
                     self.workdir / f"{settings.app_id}.log")

    async def create(self, *names: str) -> None:
        await ensure_topics(Settings(brokers=[self.broker.url], partitions=PARTITIONS), list(names))
