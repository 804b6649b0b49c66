"""Fixtures for the sinks tests: real Redis, SMTP and HTTP servers started by the tests.

Redis: the machine's server at 127.0.0.1:6379 with a key prefix unique to each test
(removed afterwards), or a dedicated `redis-server` subprocess on a free port for the
tests that stop and start it. SMTP: aiosmtpd. HTTP: aiohttp, in the test's loop.
The helper modules next to this file are made importable whatever pytest's import mode.
"""
from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis as sync_redis

sys.path.insert(0, str(Path(__file__).parent))

from servers import HookServer, MailServer, RedisProcess  # noqa: E402

from sinks.context import SinkContext  # noqa: E402
from stream.broker import EmbeddedBroker  # noqa: E402

SHARED_REDIS = "redis://127.0.0.1:6379/0"


def _shared_redis_up() -> bool:
    try:
        return bool(sync_redis.Redis.from_url(SHARED_REDIS, socket_connect_timeout=1).ping())
    except sync_redis.RedisError:
        return False


@pytest.fixture(scope="session")
def own_redis() -> Iterator[RedisProcess | None]:
    """A redis-server of the test session, used when the machine's is not running."""
    if _shared_redis_up():
        yield None
        return
    if shutil.which("redis-server") is None:
        pytest.skip("no Redis at 127.0.0.1:6379 and no redis-server to start one")
    process = RedisProcess(Path(f"/tmp/segmenter-sinks-redis-{uuid.uuid4().hex[:8]}"))
    process.start()
    yield process
    process.stop()


@pytest.fixture
def redis_url(own_redis: RedisProcess | None) -> str:
    return own_redis.url if own_redis is not None else SHARED_REDIS


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    value = f"test-sinks-{uuid.uuid4().hex[:12]}:"
    yield value
    client = sync_redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=value + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def context(redis_url: str, prefix: str, tmp_path: Path) -> SinkContext:
    return SinkContext(redis_url=redis_url, redis_prefix=prefix, templates=tmp_path / "templates")


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    """A Redis of this test alone, persisting every write (AOF, fsync always), so it can
    be stopped and started again with its data."""
    if shutil.which("redis-server") is None:
        pytest.skip("these tests stop and start a Redis of their own: no redis-server here")
    process = RedisProcess(tmp_path / "redis")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def hook_server() -> AsyncIterator[HookServer]:
    server = HookServer(secret="s3cret")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """The embedded Kafka-compatible broker, shared by the tests that need one (each
    uses its own topics and consumer groups)."""
    with EmbeddedBroker() as running:
        yield running
