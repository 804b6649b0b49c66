"""The dirt a real topic carries: messages a broken producer sends, unusable per the
product contract (section 2), and the check of what is usable."""
from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from examples.traffic.shop import Shop

EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*")  # a valid event type (the product contract (section 2))
# Timestamps that cannot be parsed: the product contract (section 2) says such events must be dead-lettered.
BAD_TIMESTAMPS = ("2025-13-45T10:00:00Z", "31/12/2025 10:00", "yesterday", "",
                  "2025-06-01T25:61:00+02:00", "next tuesday")


def bad_message(shop: Shop, raw: bytes) -> bytes:
    """An unusable message modelled on `raw`, as a broken producer would send it."""
    rng = shop.rng
    k = int(rng.random() * 7)
    if k == 0:
        return raw[: max(1, len(raw) // 2)]  # truncated: not JSON
    if k == 1:
        return b"\xff\xfe" + raw[1:20] + b"\x00"  # binary garbage: not JSON
    if k == 2:
        return b"[" + raw + b"]"  # a batch sent as a JSON array: not an object
    d = orjson.loads(raw)
    shop.counter += 1
    d["event_id"] = f"{shop.id_prefix}{shop.counter}"
    if k == 3:
        del d["event_id"]
    elif k == 4:
        d["timestamp"] = BAD_TIMESTAMPS[int(rng.random() * len(BAD_TIMESTAMPS))]
    elif k == 5:  # a producer that spells the type its own way
        words = str(d["type"]).split("_")
        spelled = (" ".join(w.capitalize() for w in words), "".join(w.capitalize() for w in words),
                   " ".join(words), str(d["type"]).upper())[int(rng.random() * 4)]
        d["type"] = spelled if not EVENT_TYPE.fullmatch(spelled) else spelled.upper()
    else:
        d.pop("customer_id", None)  # nobody to attribute it to
        d.pop("anonymous_id", None)
    return orjson.dumps(d)


def usable(d: object) -> bool:
    """True if `d` (a decoded message) is an event the product contract (section 2) accepts."""
    if not isinstance(d, dict):
        return False
    if not isinstance(d.get("event_id"), str) or not d["event_id"]:
        return False
    etype = d.get("type")
    if not isinstance(etype, str) or not EVENT_TYPE.fullmatch(etype):
        return False
    cid, aid = d.get("customer_id"), d.get("anonymous_id")
    if not (isinstance(cid, str) and cid) and not (isinstance(aid, str) and aid):
        return False
    ts = d.get("timestamp")
    if isinstance(ts, str):
        try:
            if datetime.fromisoformat(ts).tzinfo is None:
                return False
        except ValueError:
            return False
    elif not isinstance(ts, int) or isinstance(ts, bool):
        return False
    props = d.get("properties")
    return props is None or isinstance(props, dict)
