import type { Redis } from "@upstash/redis";
import type { EnvironmentDemand } from "./dispatch-plan.ts";
import { ENVIRONMENTS, type Environment } from "./environments.ts";

/**
 * Each environment's dispatcher publishes what its waiting work could use,
 * so the others can leave it its fair share. An entry expires on its own: an
 * environment whose dispatcher stopped ticking stops claiming a share.
 */
export class EnvironmentDemandBoard {
  readonly #redis: Redis;
  readonly #keyPrefix: string;
  readonly #ttlMs: number;

  /**
   * @param options.keyPrefix @default "dispatch:demand"
   * @param options.ttlMs how long a published demand counts. @default 150_000: two missed one-minute ticks and a margin
   */
  constructor(redis: Redis, options: { keyPrefix?: string; ttlMs?: number } = {}) {
    this.#redis = redis;
    this.#keyPrefix = options.keyPrefix ?? "dispatch:demand";
    this.#ttlMs = options.ttlMs ?? 150_000;
  }

  async publish(demand: EnvironmentDemand): Promise<void> {
    await this.#redis.set(`${this.#keyPrefix}:${demand.environment}`, JSON.stringify(demand), { px: this.#ttlMs });
  }

  /** Fresh demands of every environment but `self`. */
  async others(self: Environment, weights: Readonly<Record<Environment, number>>): Promise<EnvironmentDemand[]> {
    const names = ENVIRONMENTS.filter((environment) => environment !== self);
    const values = await this.#redis.mget<(EnvironmentDemand | string | null)[]>(...names.map((name) => `${this.#keyPrefix}:${name}`));
    const result: EnvironmentDemand[] = [];
    names.forEach((environment, index) => {
      const raw = values[index];
      const value = typeof raw === "string" ? (JSON.parse(raw) as EnvironmentDemand) : raw;
      if (!value) return;
      // Weights come from this dispatcher's configuration, not from what
      // another environment claims for itself.
      result.push({ environment, weight: weights[environment], allocatedVcpu: Number(value.allocatedVcpu) || 0, wantedVcpu: Number(value.wantedVcpu) || 0 });
    });
    return result;
  }
}
