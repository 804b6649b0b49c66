"""JSON replies and the optional bearer token."""
from __future__ import annotations

import hmac
from typing import Any

import orjson
from aiohttp import web


def reply(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body, default=str, option=orjson.OPT_NON_STR_KEYS), status=status,
                        content_type="application/json", headers=headers)


def error(status: int, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="segmenter"'} if status == 401 else None
    return reply({"error": message, "status": status}, status, headers)


def authorized(request: Any, token: str) -> bool:
    """True without a configured token, else when `Authorization: Bearer <token>` matches."""
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
