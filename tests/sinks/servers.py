"""Real servers for the sinks tests: a Redis process, an SMTP server, a webhook receiver."""
from __future__ import annotations

import asyncio

import hashlib
import hmac
import socket
import subprocess
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

from aiohttp import web
from aiosmtpd.controller import Controller

from stream.broker import free_port


class RedisProcess:
    """`redis-server` on a free port; stop() and start() keep the data (append-only file)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder),
             "--daemonize", "no", "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()  # SIGTERM: Redis finishes the AOF and exits
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class _MailHandler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if self.server.fail_next > 0:
            self.server.fail_next -= 1
            return "451 try again later"
        self.server.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        self.server.recipients.append(list(envelope.rcpt_tos))  # type: ignore[attr-defined]
        return "250 OK"


@dataclass
class MailServer:
    port: int = field(default_factory=free_port)
    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    fail_next: int = 0  # answer this many messages with a temporary error
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(_MailHandler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


class HookServer:
    """Receives webhooks, checks the signature, and fails requests on demand."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.port = free_port()
        self.fail_next = 0  # answer this many requests with 503
        self.down = False  # answer every request with 503
        self.received: list[tuple[dict[str, str], bytes]] = []  # accepted, with a valid signature
        self.bad_signatures = 0
        self.requests = 0
        self.landings = 0  # requests that followed the redirect of /moved
        self.delay = 0.0  # seconds to take over each request (a slow receiver)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            return web.Response(status=503, text="down")
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Segmenter-Signature", "")):
            self.bad_signatures += 1
            return web.Response(status=401, text="bad signature")
        self.received.append((dict(request.headers), body))
        return web.Response(status=204)

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/landing")

    async def landing(self, request: web.Request) -> web.Response:
        self.landings += 1
        return web.Response(status=200, text="a page, not the webhook")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        app.router.add_route("*", "/moved", self.moved)  # a receiver that moved (http -> https, a new path)
        app.router.add_route("*", "/landing", self.landing)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
