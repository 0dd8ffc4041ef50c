import type { Redis } from "@upstash/redis";
import { ENVIRONMENTS, type Environment } from "./environments.ts";
import { isJobKind, type JobKind } from "./job-kinds.ts";

/**
 * Kinds that waited for room at the last dispatch of each environment: rows
 * were claimable, the plan wanted tasks for them, and vCPU or RAM ran out.
 * Dispatch writes it; a runner with nothing to claim reads it and, when
 * another kind (or another environment) is waiting for room, hands its lease
 * back at once instead of holding the capacity idle for its whole idle
 * period. Each entry expires on its own, so a dispatcher that stopped running
 * leaves no demand behind; every dispatch (each hint, each minute's tick)
 * rewrites its environment's entry.
 */

/** One kind of one environment that waited for room. */
export interface WaitingKind {
  readonly environment: Environment;
  readonly kind: JobKind;
}

export class UnmetDemandBoard {
  readonly #redis: Redis;
  readonly #keyPrefix: string;
  readonly #ttlMs: number;

  /**
   * @param options.keyPrefix @default "dispatch:unmet"
   * @param options.ttlMs how long a record counts. @default 90_000: the next one-minute tick rewrites it, with a margin
   */
  constructor(redis: Redis, options: { keyPrefix?: string; ttlMs?: number } = {}) {
    this.#redis = redis;
    this.#keyPrefix = options.keyPrefix ?? "dispatch:unmet";
    this.#ttlMs = options.ttlMs ?? 90_000;
  }

  /** Replaces `environment`'s record; no kinds clears it. */
  async record(environment: Environment, kinds: readonly JobKind[]): Promise<void> {
    const key = `${this.#keyPrefix}:${environment}`;
    if (kinds.length === 0) await this.#redis.del(key);
    else await this.#redis.set(key, JSON.stringify([...new Set(kinds)]), { px: this.#ttlMs });
  }

  /** Every environment's kinds waiting for room. */
  async waiting(): Promise<WaitingKind[]> {
    const values = await this.#redis.mget<unknown[]>(...ENVIRONMENTS.map((environment) => `${this.#keyPrefix}:${environment}`));
    const result: WaitingKind[] = [];
    ENVIRONMENTS.forEach((environment, index) => {
      const raw = values[index];
      const kinds: unknown = typeof raw === "string" ? JSON.parse(raw) : raw;
      if (!Array.isArray(kinds)) return;
      for (const kind of kinds) if (typeof kind === "string" && isJobKind(kind)) result.push({ environment, kind });
    });
    return result;
  }

  /** What waits for room other than `self`'s own kind in its own environment (its own rows it would have claimed). */
  async waitingOtherThan(self: WaitingKind): Promise<WaitingKind[]> {
    return (await this.waiting()).filter((entry) => entry.environment !== self.environment || entry.kind !== self.kind);
  }
}
