"""The demo's worker: `segmenter worker` in its own process group, stopped with the demo."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stream.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    return {
        "SEGMENTER_BROKERS": ",".join(settings.brokers),
        "SEGMENTER_SEGMENTS": str(settings.segments),
        "SEGMENTER_STORE": settings.store,
        "SEGMENTER_DATA_DIR": str(settings.data_dir),
        "SEGMENTER_WEB_PORT": str(settings.web_port),
        "SEGMENTER_PARTITIONS": str(settings.partitions),
    }


class WorkerProcess:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"], env={**os.environ, **settings_env(settings)},
            stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def exited(self) -> bool:
        return self.process.poll() is not None

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "segmenter worker ready" in self.log.read_text(errors="replace"):
                return
            if self.exited():
                raise RuntimeError(f"the worker exited; see {self.log}")
            time.sleep(0.1)
        raise TimeoutError(f"the worker was not ready after {timeout}s; see {self.log}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._out.close()
