// The capacity ledger's Lua scripts, one per operation, each argument commented; the SHA of each is pinned in tests/ledger.

/**
 * The capacity ledger: one compute budget shared by every environment, every
 * dispatcher and every runner. A task may start only while it holds a lease;
 * a lease reserves its kind's vCPU and RAM until it is released or stops
 * being renewed.
 *
 * Redis holds four keys and nothing else:
 * - `<prefix>:leases`, a sorted set of lease ids scored by expiry (ms);
 * - `<prefix>:lease-records`, a hash of lease id → JSON {kind, environment,
 *   holder, vcpu, ram, task?, registered?} in thousandths (milli-vCPU, MB);
 * - `<prefix>:budget`, a hash holding the budget's limits (written once from
 *   configuration; every acquirer must agree with them) and, after Redis
 *   lost its data, the time before which no new task is admitted;
 * - `<prefix>:released`, tombstones of released leases (one TTL long), so a
 *   runner cannot re-register a lease someone released on purpose.
 * Allocation is always summed from the live leases, never kept in a counter,
 * so a crashed holder cannot leak capacity: its lease expires and the next
 * acquire or snapshot drops it. No cleanup process is needed.
 *
 * Time: every script takes "now" from the caller rather than calling TIME.
 * Upstash asks scripts to stay deterministic (no clock or random source inside,
 * https://upstash.com/docs/redis/commands/scripting/eval), and
 * `@upstash/ratelimit` passes the client's clock the same way. Holders run on
 * NTP-synced hosts whose skew (well under a second) is small against a lease
 * TTL of minutes.
 */

/**
 * Grants a lease only if the kind's vCPU, RAM and per-kind cap all fit, in
 * one atomic step: no check-then-write from a client, so concurrent
 * dispatchers cannot over-allocate. Around that core:
 * - Idempotent by lease id: a caller whose reply was lost retries with the
 *   same id and gets its own live lease back instead of a refusal (the
 *   client's own retry would otherwise count its first grant against itself).
 * - The budget's limits live once, in the budget hash. The first acquirer
 *   writes them from its configuration; an acquirer configured differently is
 *   refused with the stored limits so it can name the difference.
 * - A missing budget hash means Redis lost its data (or the budget is new):
 *   live tasks' leases are gone too. In mode "start-task" (dispatch) no new
 *   task is admitted until one lease TTL has passed, the longest a running or
 *   booting task takes to renew and so re-register. Mode "re-register" (a
 *   runner whose lease vanished) is admitted if capacity allows, but never
 *   for a lease that was released on purpose (the tombstones).
 * Returns `{1, expiresAt, "granted" | "existing"}`, or `{0, resource, …}`:
 * "vcpu"/"ram" with the amount needed, free and capacity (thousandths);
 * "kind_cap" with the leases the kind holds and its cap; "limits" with the
 * stored limits; "recovering" with the time new tasks are admitted again;
 * "released" when re-registering a lease that was released.
 */
export const acquireLeaseScript = `
local leases        = KEYS[1]            -- sorted set: lease id → expiry (ms since epoch)
local records       = KEYS[2]            -- hash: lease id → JSON {kind, environment, holder, vcpu, ram, task?, registered?}
local budget        = KEYS[3]            -- hash: limits → canonical JSON of the limits, admit_after → ms before which no new task starts
local released      = KEYS[4]            -- sorted set: released lease id → when its tombstone may go (ms)
local now           = tonumber(ARGV[1])  -- caller's clock, ms since epoch
local id            = ARGV[2]            -- the lease's id (a uuid), chosen by the caller so a retry finds it
local kind          = ARGV[3]            -- job kind the lease is for
local environment   = ARGV[4]            -- dev | staging | prod
local holder        = ARGV[5]            -- who asks (dispatcher or runner name), for status output
local vcpu          = tonumber(ARGV[6])  -- milli-vCPU the lease reserves
local ram           = tonumber(ARGV[7])  -- MB (milli-GB) the lease reserves
local vcpuCapacity  = tonumber(ARGV[8])  -- milli-vCPU all leases may hold together
local ramCapacity   = tonumber(ARGV[9])  -- MB all leases may hold together
local kindCap       = tonumber(ARGV[10]) -- most leases of this kind at once; -1 for no cap
local ttl           = tonumber(ARGV[11]) -- lease lifetime without renewal, ms
local limits        = ARGV[12]           -- canonical JSON of the caller's limits (capacity, per-kind sizes and caps)
local mode          = ARGV[13]           -- start-task | re-register | unchecked (tests and tools: no recovery wait)

local stored = redis.call("HGET", budget, "limits")
if not stored then
  local admitAfter = 0
  if mode ~= "unchecked" then admitAfter = now + ttl end
  redis.call("HSET", budget, "limits", limits, "admit_after", admitAfter)
  stored = limits
end
if stored ~= limits then
  return {0, "limits", stored}
end

local existing = redis.call("ZSCORE", leases, id)
if existing and tonumber(existing) > now and redis.call("HEXISTS", records, id) == 1 then
  return {1, tonumber(existing), "existing"}
end

redis.call("ZREMRANGEBYSCORE", released, "-inf", now)
if mode == "re-register" and redis.call("ZSCORE", released, id) then
  return {0, "released", 0, 0, 0}
end
if mode == "start-task" then
  local admitAfter = tonumber(redis.call("HGET", budget, "admit_after") or "0")
  if now < admitAfter then return {0, "recovering", admitAfter, 0, 0} end
end

local expired = redis.call("ZRANGEBYSCORE", leases, "-inf", now)
for _, expiredId in ipairs(expired) do
  redis.call("HDEL", records, expiredId)
end
redis.call("ZREMRANGEBYSCORE", leases, "-inf", now)

local usedVcpu, usedRam, sameKind = 0, 0, 0
local ids = redis.call("ZRANGE", leases, 0, -1)
for _, leaseId in ipairs(ids) do
  local encoded = redis.call("HGET", records, leaseId)
  if encoded then
    local record = cjson.decode(encoded)
    usedVcpu = usedVcpu + record.vcpu
    usedRam = usedRam + record.ram
    if record.kind == kind then sameKind = sameKind + 1 end
  end
end

if kindCap >= 0 and sameKind + 1 > kindCap then
  return {0, "kind_cap", sameKind, kindCap, 0}
end
if usedVcpu + vcpu > vcpuCapacity then
  return {0, "vcpu", vcpu, vcpuCapacity - usedVcpu, vcpuCapacity}
end
if usedRam + ram > ramCapacity then
  return {0, "ram", ram, ramCapacity - usedRam, ramCapacity}
end

local expiresAt = now + ttl
redis.call("ZADD", leases, expiresAt, id)
redis.call("HSET", records, id, cjson.encode({kind = kind, environment = environment, holder = holder, vcpu = vcpu, ram = ram, registered = (mode == "re-register")}))
return {1, expiresAt, "granted"}
`;

/**
 * Extends a live lease by the TTL and marks it registered (its runner is up,
 * so dispatch no longer watches its task for a stop before start). Returns
 * the new expiry, or 0 when the lease is gone or already expired: the
 * runner then re-registers through acquire, which checks capacity again.
 */
export const renewLeaseScript = `
local leases  = KEYS[1]           -- sorted set: lease id → expiry (ms since epoch)
local records = KEYS[2]           -- hash: lease id → JSON record
local now     = tonumber(ARGV[1]) -- caller's clock, ms since epoch
local id      = ARGV[2]           -- lease to renew
local ttl     = tonumber(ARGV[3]) -- new lifetime from now, ms

local expiresAt = redis.call("ZSCORE", leases, id)
local encoded = redis.call("HGET", records, id)
if not expiresAt or not encoded then return 0 end
if tonumber(expiresAt) <= now then
  redis.call("ZREM", leases, id)
  redis.call("HDEL", records, id)
  return 0
end
local record = cjson.decode(encoded)
if not record.registered then
  record.registered = true
  redis.call("HSET", records, id, cjson.encode(record))
end
redis.call("ZADD", leases, "XX", now + ttl, id)
return now + ttl
`;

/**
 * Removes a lease and leaves a tombstone for one TTL, so its runner (if one
 * still lives) cannot re-register it. Returns 1 only when this call freed
 * live capacity, so releasing twice (or an expired lease) frees once.
 */
export const releaseLeaseScript = `
local leases   = KEYS[1]           -- sorted set: lease id → expiry (ms since epoch)
local records  = KEYS[2]           -- hash: lease id → JSON record
local released = KEYS[3]           -- sorted set: released lease id → when its tombstone may go (ms)
local now      = tonumber(ARGV[1]) -- caller's clock, ms since epoch
local id       = ARGV[2]           -- lease to release
local ttl      = tonumber(ARGV[3]) -- lease lifetime, ms: how long the tombstone stays

local expiresAt = redis.call("ZSCORE", leases, id)
redis.call("ZREM", leases, id)
redis.call("HDEL", records, id)
redis.call("ZADD", released, now + ttl, id)
if expiresAt and tonumber(expiresAt) > now then return 1 end
return 0
`;

/**
 * Records which ECS task a lease was granted for, so a later dispatch can
 * return the lease of a task that stopped before its runner registered.
 * Returns 1, or 0 when the lease is gone.
 */
export const attachTaskScript = `
local records = KEYS[1]  -- hash: lease id → JSON record
local id      = ARGV[1]  -- the lease
local task    = ARGV[2]  -- the ECS task ARN RunTask returned

local encoded = redis.call("HGET", records, id)
if not encoded then return 0 end
local record = cjson.decode(encoded)
record.task = task
redis.call("HSET", records, id, cjson.encode(record))
return 1
`;

/**
 * Writes the budget's limits from configuration. Mode "if-missing" writes
 * them only where none are stored, declaring that no task runs (no recovery
 * wait): the local stack at start, a fresh deployment. Mode "replace"
 * changes them on purpose (an operator changed the budget everywhere) and
 * keeps any recovery wait. Returns 1 when written.
 */
export const setBudgetLimitsScript = `
local budget = KEYS[1]  -- hash: limits → canonical JSON, admit_after → ms
local limits = ARGV[1]  -- canonical JSON of the limits
local mode   = ARGV[2]  -- if-missing | replace

if mode == "replace" then
  redis.call("HSET", budget, "limits", limits)
  return 1
end
if redis.call("HSETNX", budget, "limits", limits) == 1 then
  redis.call("HSET", budget, "admit_after", 0)
  return 1
end
return 0
`;

/**
 * Drops expired leases and returns the live ones as a flat list:
 * id, expiry (ms), JSON record, id, expiry, record, …
 */
export const snapshotLeasesScript = `
local leases  = KEYS[1]           -- sorted set: lease id → expiry (ms since epoch)
local records = KEYS[2]           -- hash: lease id → JSON record
local now     = tonumber(ARGV[1]) -- caller's clock, ms since epoch

local expired = redis.call("ZRANGEBYSCORE", leases, "-inf", now)
for _, expiredId in ipairs(expired) do
  redis.call("HDEL", records, expiredId)
end
redis.call("ZREMRANGEBYSCORE", leases, "-inf", now)

local out = {}
local live = redis.call("ZRANGE", leases, 0, -1, "WITHSCORES")
for i = 1, #live, 2 do
  local encoded = redis.call("HGET", records, live[i])
  if encoded then
    out[#out + 1] = live[i]
    out[#out + 1] = live[i + 1]
    out[#out + 1] = encoded
  end
end
return out
`;
