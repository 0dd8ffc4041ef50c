import type { Redis } from "@upstash/redis";

/**
 * Deletes the lock only if it still holds our token: a dispatcher that
 * overran its lock's expiry must not free a lock someone else now holds.
 */
export const releaseLockScript = `
local key = KEYS[1]    -- the lock
local token = ARGV[1]  -- the holder's random token
if redis.call('GET', key) == token then
  return redis.call('DEL', key)
end
return 0
`;

/**
 * One dispatch at a time per environment. Two invocations at once (a hint
 * and the tick, or two hints) run one after the other, and the second sees
 * the tasks the first started, so together they start no more than one would.
 */
export class DispatchLock {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #ttlMs: number;

  /**
   * @param ttlMs longest a crashed dispatcher can hold the lock. @default 60_000 (a dispatch takes well under a second)
   */
  constructor(redis: Redis, key: string, ttlMs = 60_000) {
    this.#redis = redis;
    this.#key = key;
    this.#ttlMs = ttlMs;
  }

  /** Runs `work` holding the lock, waiting up to `waitMs` for it; undefined when it stayed busy. */
  async withLock<T>(work: () => Promise<T>, waitMs = 20_000): Promise<{ ran: true; value: T } | { ran: false }> {
    const token = crypto.randomUUID();
    const deadline = Date.now() + waitMs;
    let delay = 20;
    while ((await this.#redis.set(this.#key, token, { nx: true, px: this.#ttlMs })) !== "OK") {
      if (Date.now() > deadline) return { ran: false };
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 250);
    }
    try {
      return { ran: true, value: await work() };
    } finally {
      await this.#redis.eval(releaseLockScript, [this.#key], [token]);
    }
  }
}
