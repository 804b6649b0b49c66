"""The Redis of the demo's sinks: groups, price lists and the emails' sent-once markers.

The machine's Redis at 127.0.0.1:6379 when it answers, so that what the demo wrote can
be looked at with `redis-cli` afterwards; its keys all start with `segmenter-demo:` and
are cleared when a demo starts (a new demo replays the same customers, whose changes
would otherwise be taken for duplicates). Otherwise a `redis-server` of the demo's own
on a free port, stopped with it. With neither, the demo runs without sinks.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from stream.broker import free_port

MACHINE_REDIS = "redis://127.0.0.1:6379/0"
DEMO_PREFIX = "segmenter-demo:"


def _answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def clear_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        batch = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
    finally:
        client.close()


class DemoRedis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url = ""
        self.where = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> bool:
        """True once a Redis is ready; False when there is none to use."""
        if _answers(MACHINE_REDIS):
            clear_prefix(MACHINE_REDIS, DEMO_PREFIX)
            self.url, self.where = MACHINE_REDIS, f"Redis 127.0.0.1:6379 (keys {DEMO_PREFIX}*)"
            return True
        if shutil.which("redis-server") is None:
            return False
        port = free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.folder),
             "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.url, self.where = f"redis://127.0.0.1:{port}/0", f"Redis 127.0.0.1:{port} (the demo's own)"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process.poll() is None:
            if _answers(self.url):
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
