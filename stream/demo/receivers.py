"""Stand-ins for the shop's mail server and CRM, so the demo's sinks have somewhere to send.

`MailCatcher` is an SMTP server (aiosmtpd, in a thread) that writes each message it
accepts to `<folder>/<n>-<recipient>.eml`, which any mail program opens.
`WebhookReceiver` answers the CRM webhooks (stdlib HTTP server, in a thread): it checks
the HMAC-SHA256 signature, as a real receiver must, and appends each accepted body to
`<folder>/webhooks.jsonl`; a wrong signature gets a 401.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller

from stream.broker import free_port

UNSAFE = re.compile(r"[^A-Za-z0-9@._-]+")


class _SaveMessages:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        recipient = UNSAFE.sub("_", ",".join(envelope.rcpt_tos))[:80]  # type: ignore[attr-defined]
        with self._lock:
            self.count += 1
            number = self.count
        (self.folder / f"{number:05d}-{recipient}.eml").write_bytes(envelope.original_content)  # type: ignore[attr-defined]
        return "250 OK"


class MailCatcher:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self._handler = _SaveMessages(folder)
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)
        self._started = False

    @property
    def received(self) -> int:
        return self._handler.count

    def start(self) -> None:
        self._controller.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._controller.stop()
            self._started = False


class WebhookReceiver:
    def __init__(self, folder: Path, secret: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.secret, self.port = secret.encode(), free_port()
        self.path = folder / "webhooks.jsonl"
        self.received = self.rejected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                good = hmac.compare_digest(expected, self.headers.get("X-Segmenter-Signature") or "")
                if good:
                    receiver.accept(body)
                else:
                    receiver.rejected += 1
                self.send_response(204 if good else 401)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep the terminal clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/segments"

    def accept(self, body: bytes) -> None:
        with self._lock:
            self.received += 1
            with self.path.open("ab") as out:
                out.write(body.rstrip(b"\n") + b"\n")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()  # waits for serve_forever, so only once it runs
            self._thread = None
        self._server.server_close()
