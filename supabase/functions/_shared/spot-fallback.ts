/**
 * Fargate Spot, then on demand: a family configured for FARGATE_SPOT (OCR,
 * infra/runner-placement.ts) starts on FARGATE once Spot has refused it for
 * ECS_SPOT_FALLBACK_SECONDS, and tries Spot again after as long again.
 *
 * Why dispatch decides and not the capacity provider strategy: a strategy
 * only splits placements by base and weight; ECS does not move a task to
 * FARGATE when FARGATE_SPOT has no capacity (aws/containers-roadmap#773,
 * "Capacity Strategy to Fall back to OD only When No More Spot Capacity
 * Available", open), and a Spot-only RunTask then fails with "Capacity is
 * unavailable at this time. Please try again later or in a different
 * availability zone" (https://repost.aws/knowledge-center/ecs-fargate-runtask-capacity).
 * So each RunTask sends a one-provider capacityProviderStrategy, Spot or
 * FARGATE, chosen here.
 *
 * The first Spot refusal is stored in Redis (shared by every environment's
 * dispatcher: Spot capacity is the region's, not one project's) with an
 * expiry given as a duration (twice the wait): after the wait, dispatchers
 * choose FARGATE; when the key expires, Spot is tried again; a Spot start
 * clears it.
 */
import type { Redis } from "@upstash/redis";
import type { EcsFailure } from "./ecs-errors.ts";
import type { EcsPlacement } from "./ecs-placement.ts";
import type { RunnerFamily } from "./runner-families.ts";

export const SPOT_PROVIDER = "FARGATE_SPOT";
export const ON_DEMAND_PROVIDER = "FARGATE";

/** ECS's words for "no Spot capacity" (RunTask failures[] reason or error message); tolerant, as AWS rewords. */
const NO_CAPACITY = /capacity is unavailable|insufficient capacity|no (spot )?capacity|capacity.*not available|SPOT_CAPACITY/i;

export function isSpotCapacityRefusal(placement: EcsPlacement, failures: readonly EcsFailure[], message: string): boolean {
  if (!("capacityProvider" in placement) || placement.capacityProvider !== SPOT_PROVIDER) return false;
  return NO_CAPACITY.test(message) || failures.some((failure) => NO_CAPACITY.test(`${failure.reason ?? ""} ${failure.detail ?? ""}`));
}

export interface SpotFallbackOptions {
  /** `<prefix>dispatch:spot-refused` (redis-keys.ts). */
  readonly keyPrefix: string;
  /** How long Spot may refuse before FARGATE is used (ECS_SPOT_FALLBACK_SECONDS). */
  readonly waitMs: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** What EcsClient asks before and tells after each RunTask of a Spot family. */
export interface SpotFallbackBoard {
  placementFor(family: RunnerFamily, configured: EcsPlacement): Promise<EcsPlacement>;
  noteRefused(family: RunnerFamily): Promise<void>;
  noteStarted(family: RunnerFamily): Promise<void>;
}

export class SpotFallback implements SpotFallbackBoard {
  readonly #redis: Redis;
  readonly #options: SpotFallbackOptions;

  constructor(redis: Redis, options: SpotFallbackOptions) {
    if (!(options.waitMs > 0)) throw new RangeError(`the Spot fallback wait must be positive, got ${options.waitMs} ms`);
    this.#redis = redis;
    this.#options = options;
  }

  #key(family: RunnerFamily): string {
    return `${this.#options.keyPrefix}:${family}`;
  }

  #now(): number {
    return (this.#options.now ?? Date.now)();
  }

  /** FARGATE when Spot has refused this family for the wait; else the configured placement. */
  async placementFor(family: RunnerFamily, configured: EcsPlacement): Promise<EcsPlacement> {
    if (!("capacityProvider" in configured) || configured.capacityProvider !== SPOT_PROVIDER) return configured;
    const since = Number(await this.#redis.get<string | number>(this.#key(family)));
    return Number.isFinite(since) && since > 0 && this.#now() - since >= this.#options.waitMs ? { capacityProvider: ON_DEMAND_PROVIDER } : configured;
  }

  /** The first refusal of a streak is kept (NX); it expires after twice the wait, a duration. */
  async noteRefused(family: RunnerFamily): Promise<void> {
    await this.#redis.set(this.#key(family), String(this.#now()), { nx: true, px: 2 * this.#options.waitMs });
  }

  async noteStarted(family: RunnerFamily): Promise<void> {
    await this.#redis.del(this.#key(family));
  }
}

/**
 * EcsClient's side: one placement per clientToken (a retry with other
 * parameters would be a ConflictException, taken for a refusal), and the
 * board told of Spot refusals and starts. The board is advisory: an Upstash
 * failure keeps the configured placement and never fails a RunTask.
 */
export class SpotPlacements {
  readonly #board: SpotFallbackBoard | undefined;
  readonly #chosen = new Map<string, EcsPlacement>();

  constructor(board: SpotFallbackBoard | undefined) {
    this.#board = board;
  }

  async choose(clientToken: string, family: RunnerFamily, configured: EcsPlacement): Promise<EcsPlacement> {
    const known = this.#chosen.get(clientToken);
    if (known !== undefined) return known;
    const chosen = this.#board === undefined ? configured : await this.#board.placementFor(family, configured).catch(() => configured);
    if (this.#chosen.size >= 1000) this.#chosen.clear();
    this.#chosen.set(clientToken, chosen);
    return chosen;
  }

  async refused(family: RunnerFamily, placement: EcsPlacement, failures: readonly EcsFailure[], message: string): Promise<void> {
    if (isSpotCapacityRefusal(placement, failures, message)) await this.#board?.noteRefused(family).catch(() => {});
  }

  async started(family: RunnerFamily, placement: EcsPlacement): Promise<void> {
    if ("capacityProvider" in placement && placement.capacityProvider === SPOT_PROVIDER) await this.#board?.noteStarted(family).catch(() => {});
  }
}
