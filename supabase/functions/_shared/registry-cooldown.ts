/**
 * The pause of an environment's registre work while the land registry is
 * unreachable from it. A registre runner that cannot reach the site starts
 * the pause; that environment's dispatch starts no registre task while it
 * lasts, so a registry outage costs a few released jobs instead of a fleet
 * of tasks that each spin up Chromium and fail. The key expires by itself:
 * no one has to end the pause, and a crashed runner cannot leave it on.
 *
 * Keyed by environment: "unreachable" is seen from the environment's own
 * network (each SST stage has its own VPC and NAT address, docs/deploy.md),
 * so one environment's broken route or blocked address must not pause the
 * others. A real registry outage is found by each environment's own runners
 * within a job or two.
 */
import type { Redis } from "@upstash/redis";
import type { Environment } from "./environments.ts";

/** The key, under REDIS_KEY_PREFIX like every shared budget (redis-keys.ts), one per environment. */
export function registryCooldownKey(redisKeyPrefix: string, environment: Environment): string {
  return `${redisKeyPrefix}registry:cooldown:${environment}`;
}

export class RegistryCooldown {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(redis: Redis, redisKeyPrefix: string, environment: Environment) {
    this.#redis = redis;
    this.#key = registryCooldownKey(redisKeyPrefix, environment);
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
