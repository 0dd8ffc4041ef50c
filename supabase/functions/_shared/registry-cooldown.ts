/**
 * The shared pause of registre work while the land registry is unreachable.
 * A registre runner that cannot reach the site starts the pause; dispatch
 * (every environment) starts no registre task while it lasts, so a registry
 * outage costs a few released jobs instead of a fleet of tasks that each
 * spin up Chromium and fail. The key expires by itself: no one has to end
 * the pause, and a crashed runner cannot leave it on.
 */
import type { Redis } from "@upstash/redis";

/** The key, under REDIS_KEY_PREFIX like every shared budget (redis-keys.ts). */
export function registryCooldownKey(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}registry:cooldown`;
}

export class RegistryCooldown {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(redis: Redis, redisKeyPrefix: string) {
    this.#redis = redis;
    this.#key = registryCooldownKey(redisKeyPrefix);
  }

  /**
   * Pauses registre dispatch for `durationMs` from now. `reason` is stored as
   * the value, for whoever looks at Redis; it must not carry a credential.
   */
  async pause(durationMs: number, reason: string): Promise<void> {
    if (!Number.isInteger(durationMs) || durationMs < 1) throw new RangeError(`durationMs must be a whole number ≥ 1, got ${durationMs}`);
    await this.#redis.set(this.#key, reason.slice(0, 500), { px: durationMs });
  }

  /** Milliseconds the pause still lasts; 0 when registre work may go on. */
  async remainingMs(): Promise<number> {
    const left = await this.#redis.pttl(this.#key);
    return left > 0 ? left : 0;
  }
}
