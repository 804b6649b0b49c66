"""The demo's own processes (`segmenter worker`, `segmenter sinks`), each in its own
process group: a Ctrl-C in the terminal reaches only the demo, which then stops them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stream.settings import Settings, child_environment


class SegmenterProcess:
    """`segmenter <command>` with settings in its environment, its output in `log`."""

    def __init__(self, command: str, env: dict[str, str], log: Path, ready_text: str,
                 cwd: Path | None = None) -> None:
        """`env`: the whole environment of the process (see `stream.settings.child_environment`)."""
        self.command, self.log, self.ready_text = command, log, ready_text
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", command], env=env, cwd=cwd,
            stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def exited(self) -> bool:
        return self.process.poll() is not None

    @property
    def lines(self) -> list[str]:
        """Everything it printed so far."""
        return self.log.read_text(errors="replace").splitlines(keepends=True)

    def wait_ready(self, timeout: float = 60.0, count: int = 1) -> None:
        """Until it has printed its ready line `count` times (a worker prints it after
        every partition assignment)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.read_text(errors="replace").count(self.ready_text) >= count:
                return
            if self.exited():
                raise RuntimeError(f"segmenter {self.command} exited with {self.process.returncode}; see {self.log}:\n"
                                   + "".join(self.lines[-30:]))
            time.sleep(0.05)
        raise TimeoutError(f"segmenter {self.command} was not ready after {timeout}s; see {self.log}:\n"
                           + "".join(self.lines[-30:]))

    def kill(self) -> None:
        """SIGKILL to its whole process group, as a crash would end it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._out.close()

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; its exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()
        return self.process.returncode


class WorkerProcess(SegmenterProcess):
    def __init__(self, settings: Settings, log: Path) -> None:
        super().__init__("worker", child_environment(settings), log, "segmenter worker ready")
