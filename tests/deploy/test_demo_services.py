"""The small programs docker-compose runs besides segmenter: the CRM stand-in and the shop producer."""
from __future__ import annotations

import hashlib
import hmac
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from types import ModuleType

import pytest
from deploy_files import DEPLOY

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
