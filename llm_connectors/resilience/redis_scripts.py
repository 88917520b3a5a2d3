"""The Lua scripts behind shared state (docs/redis.md has the key layout).

Every script reads the clock with ``redis.call('TIME')``, so all hosts share the Redis server's
clock and client clock skew plays no part. Each script touches only the keys of one provider
endpoint, which share a ``{hash tag}``, and runs atomically: Redis is the coordination engine,
there is no protocol of our own on top.

Times are milliseconds of server time as floats (microsecond resolution). Replies carry floats
as strings, because Redis truncates Lua numbers to integers.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "ADJUST", "BREAKER_CLOSE", "BREAKER_ELECT", "BREAKER_RELEASE", "BREAKER_TRIP", "COOLDOWN",
           "SEED", "STATUS"]

# Shared by the scripts that need it: the server clock in ms, and the "who is here" heartbeat
# that tells a process how many others share the endpoint (its degraded-mode share).
_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local function heartbeat(key, member, now, window)
  redis.call('ZADD', key, now, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  redis.call('PEXPIRE', key, math.ceil(window * 2))
  return redis.call('ZCARD', key)
end
"""

#: Admit one call under both limits and the 429 cooldown, or say how long to wait.
#:
#: KEYS: requests zset, tokens zset, tokens sum, cooldown, processes zset.
#: ARGV: requests/min (0: none), tokens/min (0: none), tokens to reserve, member id, window ms,
#: process id.
#: Reply: ``{1, now, processes}`` admitted; ``{0, wait_ms, processes}`` not yet;
#: ``{-1, 0, processes}`` never (the reservation alone is over the token limit).
#:
#: Requests are a log of member ids scored by admission time; tokens the same with the amount in
#: the member (``id:amount``) plus a running sum, so reconciling one call is O(log n). Entries
#: older than the window are dropped first, exactly like the local ``RollingWindow``; the wait
#: is when enough of the oldest entries will have left the window for this call to fit.
ACQUIRE = _PRELUDE + """
local rpm, tpm, amount = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local id, window = ARGV[4], tonumber(ARGV[5])
local now = now_ms()
local procs = heartbeat(KEYS[5], ARGV[6], now, 60000)
local horizon = now - window
local wait = 0
local cooldown = redis.call('PTTL', KEYS[4])
if cooldown > 0 then wait = cooldown end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', horizon)
  local excess = redis.call('ZCARD', KEYS[1]) + 1 - rpm
  if excess > 0 then
    local oldest = redis.call('ZRANGE', KEYS[1], excess - 1, excess - 1, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
if tpm > 0 then
  if amount > tpm then return {-1, '0', procs} end
  local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', horizon)
  if #expired > 0 then
    local freed = 0
    for _, member in ipairs(expired) do freed = freed + tonumber(string.match(member, ':(%d+)$')) end
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', horizon)
    redis.call('DECRBY', KEYS[3], freed)
  end
  local total = 0
  if redis.call('ZCARD', KEYS[2]) == 0 then
    redis.call('DEL', KEYS[3])  -- an empty log has no total, whatever a lost key left behind
  else
    total = tonumber(redis.call('GET', KEYS[3]) or '0')
  end
  local excess = total + amount - tpm
  if excess > 0 then
    local freed, start = 0, 0
    while freed < excess do
      local page = redis.call('ZRANGE', KEYS[2], start, start + 99, 'WITHSCORES')
      if #page == 0 then break end
      for i = 1, #page, 2 do
        freed = freed + tonumber(string.match(page[i], ':(%d+)$'))
        if freed >= excess then
          wait = math.max(wait, tonumber(page[i + 1]) + window - now)
          break
        end
      end
      start = start + 100
    end
  end
end
if wait > 0 then return {0, tostring(wait), procs} end
local ttl = math.ceil(window + 1000)
if rpm > 0 then
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
if tpm > 0 then
  redis.call('ZADD', KEYS[2], now, id .. ':' .. amount)
  redis.call('INCRBY', KEYS[3], amount)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return {1, tostring(now), procs}
"""

#: Change what an admitted call's tokens count for: reconcile with usage, or 0 to refund.
#:
#: KEYS: tokens zset, tokens sum. ARGV: member id, amount it counts for now, new amount.
#: An entry that has left the window no longer counts, so changing it changes nothing (as locally).
ADJUST = """
local old = ARGV[1] .. ':' .. ARGV[2]
local score = redis.call('ZSCORE', KEYS[1], old)
if not score then return 0 end
local delta = tonumber(ARGV[3]) - tonumber(ARGV[2])
redis.call('ZREM', KEYS[1], old)
if tonumber(ARGV[3]) > 0 then redis.call('ZADD', KEYS[1], score, ARGV[1] .. ':' .. ARGV[3]) end
redis.call('INCRBY', KEYS[2], delta)
return 1
"""

#: Add calls admitted locally while Redis was away, so the fleet's windows count them.
#:
#: KEYS: requests zset, tokens zset, tokens sum. ARGV: window ms, count requests (0/1), count
#: tokens (0/1), then triples of member id, age in ms, tokens.
SEED = _PRELUDE + """
local window, with_req, with_tok = tonumber(ARGV[1]), ARGV[2] == '1', ARGV[3] == '1'
local now = now_ms()
local added = 0
for i = 4, #ARGV - 2, 3 do
  local at = now - tonumber(ARGV[i + 1])
  if at > now - window then
    if with_req then redis.call('ZADD', KEYS[1], 'NX', at, ARGV[i]) end
    if with_tok then
      local amount = tonumber(ARGV[i + 2])
      if amount > 0 and redis.call('ZADD', KEYS[2], 'NX', at, ARGV[i] .. ':' .. amount) == 1 then
        redis.call('INCRBY', KEYS[3], amount)
      end
    end
    added = added + 1
  end
end
local ttl = math.ceil(window + 1000)
for k = 1, 3 do if redis.call('EXISTS', KEYS[k]) == 1 then redis.call('PEXPIRE', KEYS[k], ttl) end end
return added
"""

#: Block the endpoint for every process (a 429's Retry-After, or exhausted limit headers).
#:
#: KEYS: cooldown. ARGV: ms. Never shortens a longer block already set.
COOLDOWN = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"""

#: What this process caches for up to ``refresh_interval``: circuit phase and cooldown.
#:
#: KEYS: circuit hash, probe, cooldown, processes zset. ARGV: process id.
#: Reply: ``{phase, ms, cooldown_ms, processes}`` where phase 0 is closed, 1 open (``ms`` left),
#: 2 half-open with no probe, 3 half-open with a probe in flight (``ms``: its lease).
STATUS = _PRELUDE + """
local now = now_ms()
local procs = heartbeat(KEYS[4], ARGV[1], now, 60000)
local cooldown = math.max(redis.call('PTTL', KEYS[3]), 0)
local open_until = redis.call('HGET', KEYS[1], 'until')
if not open_until then return {0, '0', cooldown, procs} end
local left = tonumber(open_until) - now
if left > 0 then return {1, tostring(left), cooldown, procs} end
local lease = redis.call('PTTL', KEYS[2])
if lease > 0 then return {3, tostring(lease), cooldown, procs} end
return {2, '0', cooldown, procs}
"""

#: Open the circuit for every process: a local breaker opened, or the fleet's probe failed.
#:
#: KEYS: circuit hash, probe. ARGV: open ms, how long the record outlives the open period
#: (the half-open phase waits that long for a probe), process id.
BREAKER_TRIP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local open_until = now + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'until', tostring(open_until), 'by', ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) + tonumber(ARGV[2])))
redis.call('DEL', KEYS[2])
return tostring(open_until)
"""

#: Ask to send the fleet's one half-open probe.
#:
#: KEYS: circuit hash, probe. ARGV: caller id, lease ms.
#: Reply: ``{0, 0}`` closed (go ahead, no probe needed); ``{1, ms}`` open for ``ms`` more;
#: ``{2, 0}`` elected: this call is the probe; ``{3, ms}`` another probe holds the lease.
BREAKER_ELECT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local open_until = redis.call('HGET', KEYS[1], 'until')
if not open_until then return {0, '0'} end
local left = tonumber(open_until) - now
if left > 0 then return {1, tostring(left)} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, '0'} end
return {3, tostring(math.max(redis.call('PTTL', KEYS[2]), 0))}
"""

#: The probe succeeded: close the circuit for every process (only if it still holds the lease).
#:
#: KEYS: circuit hash, probe. ARGV: caller id.
BREAKER_CLOSE = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
"""

#: The probe proved nothing (cancelled, abandoned): free the lease for another probe.
BREAKER_RELEASE = """
if redis.call('GET', KEYS[2]) == ARGV[1] then return redis.call('DEL', KEYS[2]) end
return 0
"""
