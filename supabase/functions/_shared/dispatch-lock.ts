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
 * Pushes the lock's expiry out while we still hold it; 0 when it is no
 * longer ours (it expired and another dispatcher may hold it now).
 */
export const extendLockScript = `
local key = KEYS[1]              -- the lock
local token = ARGV[1]            -- the holder's random token
local ttl = tonumber(ARGV[2])    -- new lifetime from now, ms
if redis.call('GET', key) == token then
  return redis.call('PEXPIRE', key, ttl)
end
return 0
`;

export interface DispatchLockOptions {
  /** Longest a crashed dispatcher can hold the lock, ms. @default 60_000 (a dispatch takes well under a second) */
  ttlMs?: number;
  /** Told when freeing the lock failed: the dispatch itself succeeded, and the lock expires on its own. */
  onReleaseError?: (error: unknown) => void;
}

/** What the work sees of the lock it runs under. */
export interface HeldLock {
  /**
   * Aborted when the lock can no longer be shown to be ours (an extension
   * failed or found it taken). Work must start nothing more after that:
   * another dispatcher may be planning over the same capacity.
   */
  readonly signal: AbortSignal;
}

/**
 * One dispatch at a time per environment. Two invocations at once (a hint
 * and the tick, or two hints) run one after the other, and the second sees
 * the tasks the first started, so together they start no more than one would.
 * The lock is extended every third of its TTL while the work runs, and the
 * work is told (its signal) the moment that fails, so two dispatches never
 * overlap even when one runs long (slow ECS answers, retries).
 */
export class DispatchLock {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #ttlMs: number;
  readonly #onReleaseError: (error: unknown) => void;

  constructor(redis: Redis, key: string, options: DispatchLockOptions = {}) {
    this.#redis = redis;
    this.#key = key;
    this.#ttlMs = options.ttlMs ?? 60_000;
    this.#onReleaseError = options.onReleaseError ?? (() => {});
  }

  /** Runs `work` holding the lock, waiting up to `waitMs` for it; `ran: false` when it stayed busy. */
  async withLock<T>(work: (lock: HeldLock) => Promise<T>, waitMs = 20_000): Promise<{ ran: true; value: T } | { ran: false }> {
    const token = crypto.randomUUID();
    const deadline = Date.now() + waitMs;
    let delay = 20;
    while (!(await this.#tryAcquire(token))) {
      if (Date.now() > deadline) return { ran: false };
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 250);
    }
    return { ran: true, value: await this.#runHolding(token, work) };
  }

  /**
   * Runs `work` under the lock without ever waiting for it: a caller that
   * finds the lock taken leaves a mark (`<lock>:pending`) and returns at
   * once, and the holder, after freeing the lock, runs the work again while
   * marks keep arriving (at most `maxRounds` times; the tick covers the
   * rest). So a burst of hints costs a few Upstash commands each, not 20 s
   * of polling each, and none is lost: a mark left while a run was under
   * way gets a run that starts after it.
   *
   * Order matters: mark, then try the lock; the holder consumes the mark
   * (GETDEL) under the lock before working, and checks for a new one only
   * after freeing the lock, so a mark left at any moment is seen by a
   * holder or by its own caller's try.
   */
  async runCoalesced<T>(work: (lock: HeldLock) => Promise<T>, maxRounds = 5): Promise<{ ran: true; value: T } | { ran: false }> {
    const pendingKey = `${this.#key}:pending`;
    await this.#redis.set(pendingKey, "1", { px: this.#ttlMs });
    let last: { ran: true; value: T } | undefined;
    for (let round = 0; round < maxRounds; round += 1) {
      const token = crypto.randomUUID();
      // Taken: the holder sees our mark once it frees the lock.
      if (!(await this.#tryAcquire(token))) break;
      const outcome = await this.#runHolding(token, async (held) => {
        // Served already (another holder consumed every mark): nothing to do.
        if ((await this.#redis.getdel(pendingKey)) === null) return undefined;
        return { value: await work(held) };
      });
      if (outcome === undefined) break;
      last = { ran: true, value: outcome.value };
      if ((await this.#redis.get(pendingKey)) === null) break;
    }
    return last ?? { ran: false };
  }

  async #tryAcquire(token: string): Promise<boolean> {
    return (await this.#redis.set(this.#key, token, { nx: true, px: this.#ttlMs })) === "OK";
  }

  /** Runs `work` while holding the lock under `token` (already acquired), extending it, and frees it after. */
  async #runHolding<T>(token: string, work: (lock: HeldLock) => Promise<T>): Promise<T> {
    const held = new AbortController();
    // Until an extension confirms it, the lock is ours only up to its first expiry.
    let confirmedUntil = Date.now() + this.#ttlMs;
    // Give up a little before the expiry: clocks and the round trip eat into it.
    const marginMs = Math.min(1_000, Math.floor(this.#ttlMs / 4));
    const expiryTimer = () => setTimeout(() => held.abort(new Error("the dispatch lock expired")), Math.max(0, confirmedUntil - Date.now() - marginMs));
    let expiry = expiryTimer();
    const extender = setInterval(() => {
      const askedAt = Date.now();
      this.#redis.eval(extendLockScript, [this.#key], [token, String(this.#ttlMs)]).then(
        (reply) => {
          if (Number(reply) !== 1) {
            held.abort(new Error("the dispatch lock was lost"));
            return;
          }
          confirmedUntil = askedAt + this.#ttlMs;
          clearTimeout(expiry);
          expiry = expiryTimer();
        },
        // A failed extension is not yet a loss: the expiry timer aborts in time.
        () => {},
      );
    }, Math.max(10, Math.floor(this.#ttlMs / 3)));

    try {
      return await work({ signal: held.signal });
    } finally {
      clearInterval(extender);
      clearTimeout(expiry);
      try {
        await this.#redis.eval(releaseLockScript, [this.#key], [token]);
      } catch (error) {
        // The work is done (or failed on its own); the lock expires within its TTL.
        this.#onReleaseError(error);
      }
    }
  }
}
