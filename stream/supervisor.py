"""`segmenter worker --processes N`: N worker processes started and stopped as one worker.

A worker process evaluates on one core at a time (Python's GIL), so on a machine with
cores to spare one process leaves them idle. N processes join the same consumer group
and split the partitions exactly as N separately started workers would: the same
table, the same exactly-once effect, the same hand-over of partitions when one stops.
Each keeps its table store in `<data-dir>/process-<i>` (a store is opened by one
process at a time) and serves the HTTP API on `<web-port> + i`; any of them answers
for any customer, forwarding to the owner as workers on different machines do.

The supervisor only starts, watches and stops them. If one exits, it stops the others
and exits with that code, so an orchestrator restarts the whole worker (a crash is
never hidden behind a half-running worker). SIGTERM or SIGINT stops them all; a
supervisor killed outright takes them with it (Linux: parent-death signal).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import signal
import subprocess
import sys
import time
from dataclasses import replace
from types import FrameType

from stream.settings import Settings, child_environment

STOP_WITHIN = 20.0
"""Seconds the processes get to leave the group and commit before they are killed."""


def process_settings(settings: Settings, index: int) -> Settings:
    """The settings of process `index` of a worker run with `settings.processes`."""
    return replace(settings, processes=1, data_dir=settings.data_dir / f"process-{index}",
                   web_port=settings.web_port + index if settings.web_port > 0 else 0)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies, however it dies."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "worker"], env=child_environment(settings),
        stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )


def supervise(settings: Settings) -> int:
    """Run `settings.processes` worker processes until one exits or a signal stops them."""
    children: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(settings.processes):
            children.append(start(process_settings(settings, index)))
    except OSError:
        _stop(children)
        raise
    print(f"segmenter worker: {len(children)} processes (pids {', '.join(str(c.pid) for c in children)})",
          file=sys.stderr, flush=True)
    stopping = False

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        _stop(children)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        exited = _wait_for_first(children)
        code = exited.returncode
        if not stopping:
            print(f"segmenter worker: process {exited.pid} exited with {code}; stopping the others",
                  file=sys.stderr, flush=True)
            _stop(children)
        _wait_all(children)
        print("segmenter worker: processes ended: " + ", ".join(f"pid {c.pid} with {c.returncode}" for c in children),
              file=sys.stderr, flush=True)
        if stopping:
            return 0
        return 128 - code if code < 0 else (code or 1)  # killed by a signal: as a shell reports it
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)


def _wait_for_first(children: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    while True:
        for child in children:
            if child.poll() is not None:
                return child
        time.sleep(0.1)


def _wait_all(children: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + STOP_WITHIN
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
