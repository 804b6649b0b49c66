"""The worker's HTTP routes, served by Faust's web server on --web-port.

`/customers/{id}` is answered by the worker holding the customer's partition whichever
worker is asked: the asked worker forwards to the owner (once; see `peers`).
`/health` and `/metrics` stay open; the other routes need the bearer token when
`api_token` is set.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import ClientError
from faust.web import View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from aiohttp import web

from stream.kafka import faustfixes
from stream.web.customers import invalid_id, local_lookup
from stream.web.peers import PeerClient, customer_path, own_url, owner_url, partition_of, peer_urls
from stream.web.replies import authorized, error, reply
from stream.web.segments import Incomplete, combine, local_counts

if TYPE_CHECKING:
    from stream.kafka.app import SegmenterApp


def install(worker: SegmenterApp) -> None:
    app, token, peers = worker.app, worker.settings.api_token, PeerClient()

    def refused(request: Any) -> web.Response | None:
        if not authorized(request, token):
            return error(401, "missing or wrong bearer token (Authorization: Bearer <api token>)")
        if not worker.ready:
            return error(503, "worker not ready: partitions are being assigned or recovered")
        return None

    @app.on_before_shutdown.connect
    async def close_peers(sender: Any, **_: Any) -> None:
        await peers.close()

    async def ask(url: str, path: str, request: Any) -> tuple[int, Any]:
        if url == own_url(worker):
            raise AssertionError("a worker never asks itself over HTTP")
        return await peers.get(url, path, request.headers.get("Authorization"))

    async def find(customer_id: str, request: Any) -> tuple[int, Any]:
        """Ask the owner of the id's partition first, then every other worker (a state
        can sit on another partition when a producer used a different partitioner)."""
        first = owner_url(worker, partition_of(worker, customer_id))
        urls = peer_urls(worker)
        for url in ([first] if first in urls else []) + [u for u in urls if u != first]:
            if url == own_url(worker):
                found = local_lookup(worker, customer_id)
                if found is not None:
                    return 200, found
                continue
            status, body = await ask(url, customer_path(customer_id), request)
            if status == 200:
                return status, body
            if status != 404:
                return status, body
        return 404, None

    @app.page("/customers/{customer_id}")
    class Customer(View):
        async def get(self, request: Any, customer_id: str) -> web.Response:
            problem = invalid_id(customer_id)
            if problem:
                return error(400, problem)
            denied = refused(request)
            if denied is not None:
                return denied
            if request.query.get("local") == "1":
                found = local_lookup(worker, customer_id)
                return reply(found) if found is not None else error(404, f"no customer {customer_id!r} here")
            try:
                status, body = await find(customer_id, request)
                if status == 200 and "alias_of" in body:
                    status, body = await find(str(body["alias_of"]), request)
            except (ClientError, TimeoutError) as exc:
                return error(503, f"the worker holding this customer did not answer: {exc!r}")
            if status == 404:
                return error(404, f"unknown customer {customer_id!r}")
            return reply(body, status)

    @app.page("/customers/")
    class NoCustomer(View):
        async def get(self, request: Any) -> web.Response:
            return error(400, "customer id is empty: use /customers/{id}")

    @app.page("/segments")
    class Segments(View):
        async def get(self, request: Any) -> web.Response:
            denied = refused(request)
            if denied is not None:
                return denied
            if request.query.get("local") == "1":
                return reply(local_counts(worker))
            parts = []
            try:
                for url in peer_urls(worker):
                    if url == own_url(worker):
                        parts.append(local_counts(worker))
                        continue
                    status, body = await ask(url, "/segments", request)
                    if status != 200:
                        return error(503, f"worker {url} answered {status}: {body}")
                    parts.append(body)
                segments = sorted(worker.engine.definitions.segments)
                return reply(combine(parts, worker.settings.partitions, segments))
            except (ClientError, TimeoutError) as exc:
                return error(503, f"a worker did not answer: {exc!r}")
            except Incomplete as exc:
                return error(503, f"{exc} (rebalancing?)")

    @app.page("/health")
    class Health(View):
        async def get(self, request: Any) -> web.Response:
            if not worker.ready:
                return reply({"status": "starting", "url": own_url(worker)}, 503)
            held = faustfixes.held_partitions(app, worker.settings.repartition_topic)
            return reply({"status": "ready", "partitions": sorted(held), "url": own_url(worker)})

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Any) -> web.Response:
            body = generate_latest(worker.metrics.registry)
            response = web.Response(body=body)
            response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
            response.charset = "utf-8"
            return response
