"""Which worker owns a partition, and how to ask it.

Every worker advertises its `canonical_url` when it joins the group; Faust's assignor
hands all members the table's partition -> URL map, which is what we read here.
Requests between workers carry `?local=1`: the receiver answers from its own
partitions only, so a request is forwarded at most once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from faust.types import TP

if TYPE_CHECKING:
    from stream.kafka.app import SegmenterApp

TIMEOUT = aiohttp.ClientTimeout(total=10)


def own_url(worker: SegmenterApp) -> str:
    return str(worker.app.conf.canonical_url).rstrip("/")


def owner_url(worker: SegmenterApp, partition: int) -> str | None:
    url = worker.app.assignor._tps_url.get(TP(worker.changelog, partition))
    return None if url is None else str(url).rstrip("/")


def peer_urls(worker: SegmenterApp) -> list[str]:
    """Every worker of the group that holds partitions, this one included."""
    urls = {str(url).rstrip("/") for url in worker.app.assignor.tables_metadata()}
    return sorted(urls | {own_url(worker)})


def partition_of(worker: SegmenterApp, identifier: str) -> int:
    """The partition an id's events are routed to (the repartition topic's key hash)."""
    return worker.output.partition_for(identifier.encode())


class PeerClient:
    """One HTTP session for requests to other workers, opened on first use."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def get(self, url: str, path: str, authorization: str | None) -> tuple[int, Any]:
        """(status, decoded JSON body) of `GET url/path?local=1`."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        headers = {"Authorization": authorization} if authorization else {}
        async with self._session.get(f"{url}{path}", params={"local": "1"}, headers=headers) as response:
            return response.status, await response.json(content_type=None)


    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def customer_path(customer_id: str) -> str:
    return f"/customers/{quote(customer_id, safe='')}"
