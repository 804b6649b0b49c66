"""Where email templates get a customer's profile and traits from.

The sinks process keeps no customer state: a change event carries only who, which
segment, what and when. Profile attributes and traits come from a lookup hook, called
once per email. `HttpProfileLookup` asks a service that answers
`GET <base>/customers/<id>` with `{"profile": {...}, "traits": {...}}` (the shape of
the worker's HTTP API in the product contract (section 7)); without a hook, templates see only the
change's own fields.
"""
from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

import aiohttp


class ProfileLookup(Protocol):
    async def __call__(self, customer_id: str) -> dict[str, Any]:
        """`{"profile": {...}, "traits": {...}}`; raise to have the email retried."""
        ...


class HttpProfileLookup:
    def __init__(self, base_url: str, token: str = "", timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, customer_id: str) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers)
        async with self._session.get(f"{self.base_url}/customers/{quote(customer_id, safe='')}") as response:
            if response.status == 404:
                return {}
            response.raise_for_status()
            body = await response.json()
        return {"profile": body.get("profile") or {}, "traits": body.get("traits") or {}}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
