"""Customer groups in Redis: `<prefix>segment:<group>` (member ids) and
`<prefix>customer:<id>` (the customer's group names), for downstream services to read.

`{group: {add: X}}` / `{group: {remove: X}}` (a name or a list); with neither, the
segment's own name is added on enter and removed on exit. Each (customer, segment,
group) remembers the seq of the last change applied to it in the hash
`<prefix>seq:<id>`, field `<segment>:group:<X>`, and a change is applied only when its
seq is greater: the guard and both set writes are one Lua script, so duplicates,
replays and reordering can never undo a newer membership.
"""
from __future__ import annotations

from sinks.base import Delivery, PermanentError
from sinks.redis_lua import Call, LuaScript

GROUP_SCRIPT = LuaScript("""
-- KEYS[1] seq hash, KEYS[2] customer set, KEYS[3..] group sets
-- ARGV[1] segment, ARGV[2] seq, ARGV[3] customer id, then (op, group) per group
local seq = tonumber(ARGV[2])
local applied = 0
for i = 4, #ARGV, 2 do
  local op, group = ARGV[i], ARGV[i + 1]
  local field = ARGV[1] .. ':group:' .. group
  local last = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  if seq > last then
    redis.call('HSET', KEYS[1], field, seq)
    local members = KEYS[3 + (i - 4) / 2]
    if op == 'add' then
      redis.call('SADD', members, ARGV[3])
      redis.call('SADD', KEYS[2], group)
    else
      redis.call('SREM', members, ARGV[3])
      redis.call('SREM', KEYS[2], group)
    end
    applied = 1
  end
end
return applied
""")


def _names(value: object) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(name, (str, int)) and str(name) for name in values):
        raise PermanentError(f"group names must be text, got {value!r}")
    return [str(name) for name in values]


def group_ops(item: Delivery) -> list[tuple[str, str]]:
    """(op, group) pairs of one group action for this change."""
    params = item.action.params
    ops = [("add", name) for name in _names(params.get("add"))]
    ops += [("remove", name) for name in _names(params.get("remove"))]
    if not ops:
        ops = [("add" if item.change.change == "enter" else "remove", item.change.segment)]
    return ops


def group_call(prefix: str, item: Delivery) -> Call:
    change = item.change
    ops = group_ops(item)
    keys = [f"{prefix}seq:{change.customer_id}", f"{prefix}customer:{change.customer_id}"]
    keys += [f"{prefix}segment:{group}" for _, group in ops]
    args: list[str | int] = [change.segment, change.seq, change.customer_id]
    for op, group in ops:
        args += [op, group]
    return GROUP_SCRIPT, keys, args
