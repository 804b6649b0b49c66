"""What the demo's sinks write to, on this machine: which Redis it picks, and the
stand-in CRM that checks webhook signatures as a real receiver must."""
from __future__ import annotations

import hashlib
import hmac
import shutil
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis

from stream.broker import free_port
from stream.demo import redis_server
from stream.demo.receivers import WebhookReceiver
from stream.demo.redis_server import DEMO_PREFIX, DemoRedis


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def test_machine_redis_is_used_and_only_the_demo_keys_are_cleared(tmp_path: Path) -> None:
    if not answers(redis_server.MACHINE_REDIS):
        pytest.skip("no Redis at 127.0.0.1:6379")
    client = redis.Redis.from_url(redis_server.MACHINE_REDIS)
    mine, other = f"{DEMO_PREFIX}test-{uuid.uuid4().hex}", f"test-demo-other-{uuid.uuid4().hex}"
    client.set(mine, "stale")
    client.set(other, "kept")
    try:
        demo = DemoRedis(tmp_path / "redis")
        assert demo.start()
        assert demo.url == "redis://127.0.0.1:6379/0" and demo.process is None
        assert client.get(mine) is None and client.get(other) == b"kept"
    finally:
        client.delete(mine, other)
        client.close()


def test_without_machine_redis_the_demo_starts_and_stops_its_own(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server here")
    monkeypatch.setattr(redis_server, "MACHINE_REDIS", f"redis://127.0.0.1:{free_port()}/0")  # nothing there
    demo = DemoRedis(tmp_path / "redis")
    assert demo.start()
    assert demo.process is not None and answers(demo.url)
    process = demo.process
    demo.stop()
    assert process.poll() is not None and not answers(demo.url)


def test_with_no_redis_at_all_the_demo_goes_without(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_server, "MACHINE_REDIS", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server to start
    assert DemoRedis(tmp_path / "redis").start() is False


def post(url: str, body: bytes, signature: str) -> int:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "X-Segmenter-Signature": signature})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_crm_stand_in_keeps_signed_webhooks_and_refuses_others(tmp_path: Path) -> None:
    receiver = WebhookReceiver(tmp_path, "s3cret")
    receiver.start()
    try:
        body = b'{"customer_id":"c-1","segment":"vip","change":"enter","seq":1}'
        good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        bad = "sha256=" + hmac.new(b"wrong", body, hashlib.sha256).hexdigest()
        assert post(receiver.url, body, good) == 204
        assert post(receiver.url, body, bad) == 401
    finally:
        receiver.stop()
    assert (tmp_path / "webhooks.jsonl").read_bytes() == body + b"\n"
    assert (receiver.received, receiver.rejected) == (1, 1)
