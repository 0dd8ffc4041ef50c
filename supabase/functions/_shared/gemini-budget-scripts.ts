/**
 * The Lua scripts of the Gemini rate budget (gemini-rate-budget.ts), one
 * named constant each. Each runs atomically in Redis, so racing workers
 * never read a count between another's read and write. Their SHA1s are
 * pinned in tests/ledger/gemini-rate-budget.test.ts: a change to a script
 * is a change to the budget's protocol, made on purpose.
 */

/** Sets a model's cooldown to at least `delay` ms and returns the cooldown left (ms). */
export const recordRateLimitedScript = `
local cooldownKey = KEYS[1]           -- string whose TTL is the cooldown left
local strikesKey  = KEYS[2]           -- 429s without retryDelay in a row; expires after a quiet spell
local retryDelay  = tonumber(ARGV[1]) -- ms from the 429's RetryInfo.retryDelay, or -1 when it had none
local backoff     = tonumber(ARGV[2]) -- first fallback cooldown, ms; doubles with each strike
local maxBackoff  = tonumber(ARGV[3]) -- longest fallback cooldown, ms

local delay = retryDelay
if delay < 0 then
  local strikes = redis.call("INCR", strikesKey)
  redis.call("PEXPIRE", strikesKey, maxBackoff * 2)
  delay = math.min(backoff * 2 ^ (strikes - 1), maxBackoff)
end
delay = math.floor(delay)

-- Never shorten a cooldown another worker set from a longer retryDelay.
local left = redis.call("PTTL", cooldownKey)
if delay > 0 and left < delay then
  redis.call("SET", cooldownKey, "429", "PX", delay)
  left = delay
end
if left < 0 then left = 0 end
return left
`;

/**
 * The first look of an admission, read-only (it runs beside the minute
 * budgets, in the same round trip): {2, cooldown ms left} while the model
 * cools down after a 429, {0, -1} when a daily-quota 429 paused it for the
 * rest of the day, {0, used} when the day's requests are used up, {1, used}
 * when there is room.
 */
export const checkModelScript = `
local dayKey      = KEYS[1]           -- requests admitted for one model on one Pacific day
local pauseKey    = KEYS[2]           -- exists when Google answered 429 for that model's daily quota that day
local cooldownKey = KEYS[3]           -- string whose TTL is the model's 429 cooldown left
local limit       = tonumber(ARGV[1]) -- requests per day

local cooldown = redis.call("PTTL", cooldownKey)
if cooldown > 0 then return {2, cooldown} end
if redis.call("EXISTS", pauseKey) == 1 then return {0, -1} end
local used = tonumber(redis.call("GET", dayKey) or "0")
if used + 1 > limit then return {0, used} end
return {1, used}
`;

/**
 * The last step of an admission: counts one request against a model's day
 * if it fits. The day's count only ever grows by calls that are sent, so a
 * caller is never told the day is over while another's attempt is being
 * given back. Returns {1, used} when admitted, {0, used} when the day is
 * used up, {0, -1} when a daily-quota 429 paused the model.
 */
export const admitDailyScript = `
local dayKey   = KEYS[1]           -- requests admitted for one model on one Pacific day
local pauseKey = KEYS[2]           -- exists when Google answered 429 for that model's daily quota that day
local limit    = tonumber(ARGV[1]) -- requests per day
local ttl      = tonumber(ARGV[2]) -- ms the day's key lives from now: what is left of the day plus a margin, by the budget's clock
-- With day shares (gemini-day-shares.ts): KEYS[3], KEYS[4], … are, per
-- environment, its requests of the day and its "asked lately" key; ARGV[3]
-- is the asking environment's position (1-based), ARGV[4] how long asking
-- keeps an environment active (ms), ARGV[5], … each environment's share.
local own = tonumber(ARGV[3] or "0")
local environments = (#KEYS - 2) / 2
if own > 0 then
  redis.call("SET", KEYS[2 + 2 * own], "1", "PX", tonumber(ARGV[4]))
end

if redis.call("EXISTS", pauseKey) == 1 then return {0, -1} end
local used = tonumber(redis.call("GET", dayKey) or "0")
if used + 1 > limit then return {0, used} end
if own > 0 then
  -- What is left of the shares of the other environments that asked lately is theirs.
  local reserved = 0
  for i = 1, environments do
    if i ~= own and redis.call("EXISTS", KEYS[2 + 2 * i]) == 1 then
      local theirs = tonumber(redis.call("GET", KEYS[1 + 2 * i]) or "0")
      reserved = reserved + math.max(0, math.floor(tonumber(ARGV[4 + i]) * limit) - theirs)
    end
  end
  if used + 1 > limit - reserved then return {0, used, reserved} end
  redis.call("INCR", KEYS[1 + 2 * own])
  redis.call("PEXPIRE", KEYS[1 + 2 * own], ttl)
end
used = redis.call("INCR", dayKey)
redis.call("PEXPIRE", dayKey, ttl)
return {1, used}
`;

/** Adds one call's numbers to a model's statistics of the day. */
export const recordUsageScript = `
local statsKey    = KEYS[1]           -- hash: requests, inputTokens, outputTokens, rateLimited
local ttl         = tonumber(ARGV[1]) -- ms the statistics live from now: to a day after the day ends, so yesterday stays readable
local requests    = tonumber(ARGV[2])
local inputTokens = tonumber(ARGV[3])
local outputTokens = tonumber(ARGV[4])
local rateLimited = tonumber(ARGV[5])

redis.call("HINCRBY", statsKey, "requests", requests)
redis.call("HINCRBY", statsKey, "inputTokens", inputTokens)
redis.call("HINCRBY", statsKey, "outputTokens", outputTokens)
redis.call("HINCRBY", statsKey, "rateLimited", rateLimited)
redis.call("PEXPIRE", statsKey, ttl)
return 1
`;

/**
 * Gives back part of what one fixed window of `@upstash/ratelimit` counted,
 * in that very window, whenever the answer arrives (issue 18 item 4). The
 * library's `fixedWindow` counts in the string key
 * `<prefix>:<identifier>:<bucket>`, bucket = floor(now / window), INCRBY
 * then PEXPIRE(window) on its first count (node_modules/@upstash/ratelimit
 * 2.2.0, dist/index.mjs, `fixedWindow` and `fixedWindowLimitScript`). A
 * negative `limit()` would count in the window current at the refund, which
 * for a vision call outlasting its slice is a later one: the excess was
 * never given back and a later slice was over-credited. This script targets
 * the reserving window's key itself: once that key is gone the window has
 * expired with its count, and the refund is moot (nothing is created). The
 * count never goes below 0 and its TTL is kept: no expiry is computed here.
 * Returns what is left counted, or -1 when the window had expired.
 */
export const refundWindowScript = `
local key    = KEYS[1]           -- a fixedWindow counter: <prefix>:<identifier>:<bucket>
local amount = tonumber(ARGV[1]) -- what the reservation overstated (> 0)

local used = redis.call("GET", key)
if not used then return -1 end
local left = tonumber(used) - amount
if left < 0 then left = 0 end
redis.call("SET", key, left, "KEEPTTL")
return left
`;

/**
 * One admission to a rolling minute made of short slices
 * (gemini-minute-counters.ts, RollingMinuteCounter): counts `amount` in the
 * current slice first (every request counted before its verdict, as
 * `fixedWindow` does, so racing callers can never together pass the limit),
 * then admits it if the current slice and the ones before it, as many as
 * the minute and its arrival margin span, hold no more than the minute's
 * limit. A refused count is given back by the caller (refundWindowScript),
 * like a refused fixedWindow count. Each slice's key lives as long as it is
 * read: `ttl` is a duration, the same on Redis' clock as on ours.
 * Returns {1, total} when admitted, {0, total} when not.
 */
export const rollingMinuteScript = `
local limit  = tonumber(ARGV[1]) -- what the minute admits
local amount = tonumber(ARGV[2]) -- this request's count (tokens, or 1 request)
local ttl    = tonumber(ARGV[3]) -- ms a slice's key lives: every slice read below, plus one

-- KEYS[1] is the current slice; KEYS[2..] the slices before it, newest first.
local total = redis.call("INCRBY", KEYS[1], amount)
redis.call("PEXPIRE", KEYS[1], ttl)
for i = 2, #KEYS do
  total = total + tonumber(redis.call("GET", KEYS[i]) or "0")
end
if total <= limit then return {1, total} end
return {0, total}
`;
