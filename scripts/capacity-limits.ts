/**
 * The ledger's stored limits against a configuration's: what `npm run
 * capacity -- show|set` reads and writes, and what `npm run doctor` checks.
 *
 * The ledger stores its limits once (the first process that takes a lease)
 * and refuses every caller whose limits differ (capacity-budget-limits.ts,
 * describeLimitsDifference), so a changed budget stops all dispatch until
 * the stored limits are replaced on purpose. The hosted configuration is
 * the deploying shell's, billed as the deploy bills it (infra/runner-sizes.ts:
 * each kind counted at its family's Fargate size), exactly what
 * deploy:secrets hands the dispatch function; the local stack's is its own,
 * unbilled, as `npm start` writes it.
 */
import type { Redis } from "@upstash/redis";
import { parseCapacityConfig, type CapacityConfig } from "../supabase/functions/_shared/capacity-config.ts";
import { budgetLimitsOf, describeLimitsDifference } from "../supabase/functions/_shared/capacity-budget-limits.ts";
import { CapacityLedger } from "../supabase/functions/_shared/capacity-ledger.ts";
import { redisKeyPrefixes } from "../supabase/functions/_shared/redis-keys.ts";
import { JOB_KINDS } from "../supabase/functions/_shared/job-kinds.ts";
import { billedCapacity } from "../infra/runner-sizes.ts";

/** The limits in the units an operator sets them (vCPU, GB, task caps), not the ledger's thousandths. */
export interface ReadableLimits {
  readonly capacity: { readonly vcpu: number; readonly ramGb: number };
  readonly kinds: Record<string, { readonly vcpu: number; readonly ramGb: number; readonly maxTasks: number | null }>;
}

export interface LimitsReport {
  readonly keyPrefix: string;
  /** The stored limits, or undefined when none are stored yet (a new Upstash database). */
  readonly stored: ReadableLimits | undefined;
  /** This configuration's limits. */
  readonly configured: ReadableLimits;
  readonly same: boolean;
  /** The ledger's own words for the difference, naming each variable. */
  readonly difference: string | undefined;
  /** Live leases and what they hold, so a smaller budget's effect is visible before it is set. */
  readonly live: { readonly leases: number; readonly vcpu: number; readonly ramGb: number };
}

/** The ledger's budget hash, where `limits` lives (CapacityLedger's constructor: `${keyPrefix}:budget`). */
function budgetKey(ledgerPrefix: string): string {
  return `${ledgerPrefix}:budget`;
}

function readable(raw: unknown): ReadableLimits | undefined {
  if (raw === null || raw === undefined) return undefined;
  const value: unknown = typeof raw === "string" ? JSON.parse(raw) : raw;
  if (typeof value !== "object" || value === null || !("capacity" in value) || !("kinds" in value)) return undefined;
  const limits = value as { capacity: { vcpu: number; ram: number }; kinds: Record<string, { vcpu: number; ram: number; max: number }> };
  const kinds: ReadableLimits["kinds"] = {};
  for (const [kind, entry] of Object.entries(limits.kinds)) kinds[kind] = { vcpu: entry.vcpu / 1000, ramGb: entry.ram / 1000, maxTasks: entry.max < 0 ? null : entry.max };
  return { capacity: { vcpu: limits.capacity.vcpu / 1000, ramGb: limits.capacity.ram / 1000 }, kinds };
}

/** The configuration the ledger is compared with: the shell's, billed as deployed, or the local stack's own. */
export function ledgerConfigOf(env: Readonly<Record<string, string | undefined>>, billed: boolean): CapacityConfig {
  const config = parseCapacityConfig(env);
  return billed ? billedCapacity(config) : config;
}

export async function readLimits(redis: Redis, config: CapacityConfig, redisKeyPrefix: string): Promise<LimitsReport> {
  const ledgerPrefix = redisKeyPrefixes(redisKeyPrefix).ledger;
  const ours = budgetLimitsOf(config);
  const [raw, snapshot] = await Promise.all([redis.hget(budgetKey(ledgerPrefix), "limits"), new CapacityLedger(redis, config, { keyPrefix: ledgerPrefix }).snapshot()]);
  const stored = readable(raw);
  const configured = readable(ours);
  if (configured === undefined) throw new Error("could not express this configuration's limits");
  const same = raw !== null && raw !== undefined && JSON.stringify(typeof raw === "string" ? JSON.parse(raw) : raw) === JSON.stringify(ours);
  return {
    keyPrefix: ledgerPrefix,
    stored,
    configured,
    same,
    difference: same || stored === undefined ? undefined : describeLimitsDifference(ours, raw),
    live: { leases: snapshot.leases.length, vcpu: snapshot.allocated.vcpu, ramGb: snapshot.allocated.ramGb },
  };
}

/** Replaces the stored limits with this configuration's (the ledger's own "replace"). */
export async function replaceLimits(redis: Redis, config: CapacityConfig, redisKeyPrefix: string): Promise<void> {
  const written = await new CapacityLedger(redis, config, { keyPrefix: redisKeyPrefixes(redisKeyPrefix).ledger }).setLimits("replace");
  if (!written) throw new Error("the ledger did not write the limits");
}

/** One line per limit, for the terminal. */
export function describeLimits(limits: ReadableLimits | undefined): string[] {
  if (limits === undefined) return ["  (none stored: the first dispatcher or runner to take a lease stores its own)"];
  const lines = [`  capacity: ${limits.capacity.vcpu} vCPU, ${limits.capacity.ramGb} GB (after the reserve)`];
  for (const kind of JOB_KINDS) {
    const entry = limits.kinds[kind];
    if (entry !== undefined) lines.push(`  ${kind}: ${entry.vcpu} vCPU, ${entry.ramGb} GB per task, ${entry.maxTasks === null ? "no task cap" : `at most ${entry.maxTasks} tasks`}`);
  }
  return lines;
}
