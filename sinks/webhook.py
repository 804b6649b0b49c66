"""A `webhook` destination: the change, as JSON, POSTed and signed.

Settings: `url`, `secret`, `timeout` (seconds, 10), optional `headers`. Each request
carries `X-Segmenter-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>`
and `X-Segmenter-Delivery: <customer>:<segment>:<seq>` (the same on every retry and
redrive, so a receiver can drop repeats). A 2xx answer is success; 408, 429 and 5xx
answers, timeouts and connection errors are retried with backoff by the dispatcher;
any other answer (a 400, a 401 for a wrong secret) will not improve by retrying, so
the action goes straight to the dead-letter topic.
"""
from __future__ import annotations

import hashlib
import hmac

import aiohttp

from rules.language.model import Destination
from sinks.base import Delivery, OrderedSink, PermanentError, Status
from sinks.context import SinkContext

RETRYABLE = {408, 425, 429}


class WebhookError(Exception):
    pass


def signature(secret: str, body: bytes) -> str:
    """The header value a receiver recomputes to check the body came from us."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSink(OrderedSink):
    def __init__(self, destination: Destination, context: SinkContext) -> None:
        super().__init__(destination)
        settings = destination.settings
        self.url = str(settings.get("url") or "")
        self.secret = str(settings.get("secret") or "")
        self.timeout = aiohttp.ClientTimeout(total=float(str(settings.get("timeout") or 10)))
        extra = settings.get("headers")
        self.headers = {str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else {}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver_one(self, item: Delivery) -> Status:
        if not self.url:
            raise PermanentError(f"webhook destination {self.name!r} has no url")
        await self.start()
        assert self._session is not None
        body = item.change.body()
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "X-Segmenter-Delivery": item.change.delivery_id,
            "X-Segmenter-Signature": signature(self.secret, body),
        }
        # Redirects are not followed: aiohttp would turn the POST into a GET without the
        # body, and a 200 to that GET would count as delivered what never arrived.
        async with self._session.post(self.url, data=body, headers=headers, allow_redirects=False) as response:
            if 200 <= response.status < 300:
                return Status.APPLIED
            if 300 <= response.status < 400:
                raise PermanentError(f"{self.url} answered {response.status}, a redirect to "
                                     f"{response.headers.get('Location', '(no Location)')}: webhooks are not "
                                     "redirected; set the destination's url to the address that takes the POST")
            text = (await response.text())[:200]
            error = f"{self.url} answered {response.status}: {text}"
            if response.status >= 500 or response.status in RETRYABLE:
                raise WebhookError(error)
            raise PermanentError(error)
