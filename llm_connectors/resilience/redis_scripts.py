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
           "PACE", "STATUS"]

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

#: The GCRA arithmetic of ``ratelimit.Bucket``, on server time. A bucket is one string key, its
#: "theoretical arrival time" in ms: when it will be full again. A missing key is a full bucket
#: (keys expire once they are), so a lost key costs at most one burst.
_BUCKET = """
local function spacing(interval, pace_key)
  local pace = tonumber(redis.call('GET', pace_key) or '0') or 0
  if pace > interval then return pace end
  return interval
end
local function tat_of(key)
  return tonumber(redis.call('GET', key) or '0') or 0
end
local function store(key, tat, now)
  if tat > now then
    redis.call('SET', key, string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
  else
    redis.call('DEL', key)
  end
end
"""

#: Admit one call under both buckets and the 429 cooldown, or say how long to wait.
#:
#: KEYS: requests tat, tokens tat, cooldown, processes zset, requests pace, tokens pace.
#: ARGV: ms per request (0: no request limit), request capacity, ms per token (0: no token limit),
#: token capacity, tokens per minute, tokens to reserve, process id.
#: Reply: ``{1, now, processes, 0}`` admitted; ``{0, wait_ms, processes, why}`` not yet (why: 1
#: requests, 2 tokens, 3 cooldown); ``{-1, 0, processes, 2}`` never (more than a minute's tokens).
#:
#: A call may go when its bucket's tat is at most ``(capacity - need) * spacing`` ahead of now,
#: ``need`` being what it takes, capped at the capacity (a bigger call goes when the bucket is
#: full and leaves it in debt). The spacing is the limit's, or a slower pace the provider's
#: headers set (``PACE``) while that key lives.
ACQUIRE = _PRELUDE + _BUCKET + """
local req_ms, req_cap, tok_ms, tok_cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tpm, amount = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
local procs = heartbeat(KEYS[4], ARGV[7], now, 60000)
local wait, why = 0, 0
local cooldown = redis.call('PTTL', KEYS[3])
if cooldown > 0 then wait, why = cooldown, 3 end
local req_tat, req_sp, tok_tat, tok_sp = 0, 0, 0, 0
if req_ms > 0 then
  req_sp, req_tat = spacing(req_ms, KEYS[5]), tat_of(KEYS[1])
  local w = req_tat - now - (req_cap - 1) * req_sp
  if w > wait then wait, why = w, 1 end
end
if tok_ms > 0 then
  if amount > tpm then return {-1, '0', procs, 2} end
  tok_sp, tok_tat = spacing(tok_ms, KEYS[6]), tat_of(KEYS[2])
  local w = tok_tat - now - (tok_cap - math.min(amount, tok_cap)) * tok_sp
  if w > wait then wait, why = w, 2 end
end
if wait > 0 then return {0, tostring(wait), procs, why} end
if req_ms > 0 then store(KEYS[1], math.max(req_tat, now) + req_sp, now) end
if tok_ms > 0 and amount > 0 then store(KEYS[2], math.max(tok_tat, now) + amount * tok_sp, now) end
return {1, tostring(now), procs, 0}
"""

#: Count more or fewer tokens for an admitted call: reconcile with usage, or refund.
#:
#: KEYS: tokens tat, tokens pace. ARGV: ms per token, tokens to add (negative: give back).
#: Tokens given back to a bucket that has refilled meanwhile overflow, as locally.
ADJUST = _PRELUDE + _BUCKET + """
local now = now_ms()
local sp, delta = spacing(tonumber(ARGV[1]), KEYS[2]), tonumber(ARGV[2])
local tat = tat_of(KEYS[1])
if delta > 0 then tat = math.max(tat, now) + delta * sp else tat = tat + delta * sp end
store(KEYS[1], tat, now)
return 1
"""

#: Pace a bucket for every process as the provider's headers ask (``adapt_to_headers``).
#:
#: KEYS: the bucket's pace, the bucket. ARGV: ms per unit (0: drop the pace), for how many ms, the
#: limit's own ms per unit. As locally, the units the bucket is ahead by are kept, each as long as
#: the new spacing, so the change applies to the next call in every process.
PACE = _PRELUDE + _BUCKET + """
local pace, ttl, base = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local ahead = math.max(0, tat_of(KEYS[2]) - now) / spacing(base, KEYS[1])
if pace <= 0 or ttl <= 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', math.ceil(ttl))
end
if ahead > 0 then store(KEYS[2], now + ahead * spacing(base, KEYS[1]), now) end
return 1
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
