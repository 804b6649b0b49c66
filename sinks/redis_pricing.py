"""Price lists in Redis: the hash `<prefix>pricing:<id>`.

Several segments may grant a customer prices at once (a spend tier and a paid
membership). Each keeps its own fields, `<segment>.price_list` and
`<segment>.discount_percent`, so one segment's exit removes exactly what it granted
and nothing of another's. The summary fields `price_list`, `discount_percent` and
`segment` are what downstream reads: the grant with the highest discount (ties: the
first segment name in alphabetical order), recomputed in the same script; with no
grant left the hash is deleted. The guard is the seq of the last change applied, in
`<prefix>seq:<id>` field `<segment>:pricing`, as for groups.

On enter the action sets its grant; on exit it removes it (the exit of a segment
whose `on_enter` sets pricing removes it even without an `on_exit`, see
`sinks.actions`).
"""
from __future__ import annotations

from sinks.base import Delivery, PermanentError
from sinks.redis_lua import Call, LuaScript

PRICING_SCRIPT = LuaScript("""
-- KEYS[1] seq hash, KEYS[2] pricing hash
-- ARGV[1] segment, ARGV[2] seq, ARGV[3] 'set' or 'remove', ARGV[4] price list, ARGV[5] discount
local seq = tonumber(ARGV[2])
local field = ARGV[1] .. ':pricing'
local last = tonumber(redis.call('HGET', KEYS[1], field) or '0')
if seq <= last then return 0 end
redis.call('HSET', KEYS[1], field, seq)
if ARGV[3] == 'set' then
  redis.call('HSET', KEYS[2], ARGV[1] .. '.price_list', ARGV[4], ARGV[1] .. '.discount_percent', ARGV[5])
else
  redis.call('HDEL', KEYS[2], ARGV[1] .. '.price_list', ARGV[1] .. '.discount_percent')
end
local all = redis.call('HGETALL', KEYS[2])
local best, best_discount = nil, nil
for i = 1, #all, 2 do
  local segment = string.match(all[i], '^(.+)%.discount_percent$')
  if segment then
    local discount = tonumber(all[i + 1]) or 0
    if best == nil or discount > best_discount or (discount == best_discount and segment < best) then
      best, best_discount = segment, discount
    end
  end
end
if best == nil then
  redis.call('DEL', KEYS[2])
else
  redis.call('HSET', KEYS[2], 'segment', best,
             'price_list', redis.call('HGET', KEYS[2], best .. '.price_list'),
             'discount_percent', redis.call('HGET', KEYS[2], best .. '.discount_percent'))
end
return 1
""")


def _discount(value: object) -> str:
    if value is None:
        return "0"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise PermanentError(f"discount_percent must be a number from 0 to 100, got {value!r}")
    return str(value)


def pricing_call(prefix: str, item: Delivery) -> Call:
    change, params = item.change, item.action.params
    keys = [f"{prefix}seq:{change.customer_id}", f"{prefix}pricing:{change.customer_id}"]
    if change.change == "exit":
        return PRICING_SCRIPT, keys, [change.segment, change.seq, "remove", "", "0"]
    if params.get("price_list") is None and params.get("discount_percent") is None:
        raise PermanentError("a pricing action needs price_list and/or discount_percent")
    price_list = str(params.get("price_list") or "")
    return PRICING_SCRIPT, keys, [change.segment, change.seq, "set", price_list, _discount(params.get("discount_percent"))]
