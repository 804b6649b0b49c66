"""The small programs docker-compose runs besides segmenter: the CRM stand-in and the shop producer."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from deploy_files import DEPLOY, ROOT

from stream.broker import EmbeddedBroker
from stream.kafka.topics import ensure_topics
from stream.settings import Settings

SECRET = "test-secret"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DEPLOY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def crm_url() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "CRM_SECRET": SECRET, "CRM_PORT": str(port)}
    process = subprocess.Popen([sys.executable, str(DEPLOY / "crm_receiver.py")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/segments"
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(url: str, body: bytes, signature: str) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Segmenter-Signature": signature,
        "X-Segmenter-Delivery": "c-42:vip:1"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_crm_stand_in_accepts_signed_deliveries(crm_url: str) -> None:
    body = b'{"customer_id": "c-42", "segment": "vip", "change": "enter", "seq": 1}'
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert post(crm_url, body, signature) == 204


def test_crm_stand_in_refuses_a_wrong_signature(crm_url: str) -> None:
    """401 is a permanent error for the webhook sink: a wrong secret is dead-lettered, not retried."""
    body = b'{"customer_id": "c-42", "segment": "vip", "change": "enter", "seq": 1}'
    wrong = "sha256=" + hmac.new(b"another-secret", body, hashlib.sha256).hexdigest()
    assert post(crm_url, body, wrong) == 401
    assert post(crm_url, body, "") == 401


def test_shop_producer_reads_the_worker_broker_syntax() -> None:
    producer = load("shop_producer")
    assert producer.bootstrap_servers("kafka://kafka:9092") == ["kafka:9092"]
    assert producer.bootstrap_servers("kafka://a:9092, b:9093,") == ["a:9092", "b:9093"]


async def read_topics(bootstrap: str, topics: list[str], expect: int) -> list[tuple[str, bytes | None, bytes]]:
    """Every message of `topics` from the beginning, until `expect` were read or nothing new comes."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    found: list[tuple[str, bytes | None, bytes]] = []
    try:
        consumer.assign([TopicPartition(topic, partition) for topic in topics
                         for partition in sorted(consumer.partitions_for_topic(topic) or ())])
        await consumer.seek_to_beginning()
        idle_rounds = 0
        while len(found) < expect and idle_rounds < 50:
            batch = await consumer.getmany(timeout_ms=200)
            idle_rounds = 0 if batch else idle_rounds + 1
            for partition, records in batch.items():
                found.extend((partition.topic, record.key, record.value) for record in records)
    finally:
        await consumer.stop()
    return found


def test_shop_producer_sends_keyed_history_to_the_input_topics(tmp_path: Path) -> None:
    """The compose `producer` service against a real (embedded) broker: the whole backfill
    arrives, each event keyed by its customer and in the topic of its kind."""
    topics = ["orders", "behavior", "customers"]
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        asyncio.run(ensure_topics(Settings(brokers=[broker.url], partitions=4), topics))
        env = {**os.environ, "SEGMENTER_BROKERS": broker.url, "SHOP_CUSTOMERS": "40", "SHOP_DAYS": "20",
               "SHOP_RATE": "20"}
        process = subprocess.Popen([sys.executable, str(DEPLOY / "shop_producer.py")], env=env, cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert process.stdout is not None
            lines = []
            for line in process.stdout:                   # until the backfill is sent
                lines.append(line)
                if line.startswith("live traffic"):
                    break
            assert lines and lines[-1].startswith("live traffic"), "".join(lines)
            backfilled = int(lines[0].split()[1])
        finally:
            process.terminate()
            process.wait(timeout=30)
        messages = asyncio.run(read_topics(broker.bootstrap, topics, backfilled))

    history = [(topic, key, value) for topic, key, value in messages if b'"live-' not in value]
    assert len(history) == backfilled > 100
    kinds: dict[str, set[str]] = {}
    keyed = 0
    for topic, key, value in history:
        try:
            event = json.loads(value)
        except ValueError:
            continue                                      # the shop's malformed events go unkeyed
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            continue
        kinds.setdefault(event["type"], set()).add(topic)
        owner = event.get("customer_id") or event.get("anonymous_id")
        if isinstance(owner, str) and key is not None:
            assert key == owner.encode()                   # the customer, else the visitor
            keyed += 1
    assert keyed > len(history) * 0.9                    # all but the few malformed events are keyed
    assert kinds["order_placed"] == {"orders"}
    assert kinds["customer_created"] == {"customers"}
    assert kinds["page_view"] == {"behavior"}
