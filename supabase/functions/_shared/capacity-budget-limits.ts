// The budget's limits every acquirer must agree on (capacity, per-kind sizes and caps), and how a differing configuration is named.
import { z } from "zod";
import { fromMilli, toMilli, KIND_VARIABLES } from "./capacity-config.ts";
import type { LedgerConfig } from "./capacity-ledger-types.ts";
import { JOB_KINDS, type JobKind } from "./job-kinds.ts";

/** The limits every acquirer must agree on, in thousandths; built in a fixed key order so equal limits give equal JSON. */
export interface BudgetLimits {
  capacity: { vcpu: number; ram: number };
  kinds: Record<JobKind, { vcpu: number; ram: number; max: number }>;
}

const budgetLimitsSchema = z.object({
  capacity: z.object({ vcpu: z.number(), ram: z.number() }),
  kinds: z.record(z.string(), z.object({ vcpu: z.number(), ram: z.number(), max: z.number() })),
});

export function budgetLimitsOf(config: LedgerConfig): BudgetLimits {
  const kinds = {} as Record<JobKind, { vcpu: number; ram: number; max: number }>;
  for (const kind of JOB_KINDS) {
    const profile = config.profiles[kind];
    kinds[kind] = { vcpu: toMilli(profile.vcpu), ram: toMilli(profile.ramGb), max: profile.maxTasks ?? -1 };
  }
  return { capacity: { vcpu: toMilli(config.capacity.vcpu), ram: toMilli(config.capacity.ramGb) }, kinds };
}

/**
 * Says, by variable, how the stored limits differ from ours: the refusal an
 * environment configured differently gets instead of a silent over-commit.
 */
export function describeLimitsDifference(ours: BudgetLimits, storedReply: unknown): string {
  let stored: z.infer<typeof budgetLimitsSchema>;
  try {
    stored = budgetLimitsSchema.parse(typeof storedReply === "string" ? JSON.parse(storedReply) : storedReply);
  } catch {
    return "this configuration's budget limits differ from the ones stored in Upstash (which could not be read)";
  }
  const differences: string[] = [];
  const compare = (what: string, mine: number, theirs: number | undefined, unit: (n: number) => string) => {
    if (theirs !== mine) differences.push(`${what}: ${unit(mine)} here, ${theirs === undefined ? "unset" : unit(theirs)} in Upstash`);
  };
  const amount = (n: number) => String(fromMilli(n));
  const cap = (n: number) => (n < 0 ? "no cap" : String(n));
  compare("vCPU after the reserve (SERVER_MAX_CPU, SERVER_RESERVE_CPU_PERCENT)", ours.capacity.vcpu, stored.capacity.vcpu, amount);
  compare("RAM GB after the reserve (SERVER_MAX_RAM, SERVER_RESERVE_RAM_PERCENT)", ours.capacity.ram, stored.capacity.ram, amount);
  for (const kind of JOB_KINDS) {
    const names = KIND_VARIABLES[kind];
    const theirs = stored.kinds[kind];
    compare(names.vcpu, ours.kinds[kind].vcpu, theirs?.vcpu, amount);
    compare(names.ramGb, ours.kinds[kind].ram, theirs?.ram, amount);
    compare(names.maxTasks, ours.kinds[kind].max, theirs?.max, cap);
  }
  return `this environment's budget configuration differs from the one every environment shares in Upstash; set the same values everywhere (or replace the stored limits on purpose): ${
    differences.length > 0 ? differences.join("; ") : "the stored limits have another shape"
  }`;
}
