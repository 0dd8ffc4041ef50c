// The capacity ledger: leases of one compute budget shared by every environment, dispatcher and runner (Redis layout and scripts: capacity-ledger-scripts.ts).
import type { Redis } from "@upstash/redis";
import { z } from "zod";
import { budgetLimitsOf, describeLimitsDifference, type BudgetLimits } from "./capacity-budget-limits.ts";
import { fromMilli, toMilli, KIND_VARIABLES } from "./capacity-config.ts";
import {
  acquireLeaseScript,
  attachTaskScript,
  releaseLeaseScript,
  renewLeaseScript,
  setBudgetLimitsScript,
  snapshotLeasesScript,
} from "./capacity-ledger-scripts.ts";
import type {
  AcquireOptions,
  AcquireResult,
  CapacityLedgerOptions,
  CapacitySnapshot,
  Lease,
  LeaseHolder,
  LedgerConfig,
  ResourceUse,
} from "./capacity-ledger-types.ts";
import { ENVIRONMENTS } from "./environments.ts";
import { JOB_KINDS, type JobKind } from "./job-kinds.ts";

// The class's own vocabulary, so its callers import it from one place.
export type {
  AcquireMode,
  AcquireOptions,
  AcquireResult,
  CapacityLedgerOptions,
  CapacitySnapshot,
  Lease,
  LeaseHolder,
  LeaseResource,
  LedgerConfig,
  ResourceUse,
} from "./capacity-ledger-types.ts";

/** What `redis.createScript` returns (the class itself is not exported): EVALSHA, then EVAL on NOSCRIPT. */
interface LedgerScript {
  exec(keys: string[], args: string[]): Promise<unknown>;
}

const MAX_HOLDER_LENGTH = 200;

const leaseRecordSchema = z.object({
  kind: z.enum(JOB_KINDS),
  environment: z.enum(ENVIRONMENTS),
  holder: z.string(),
  vcpu: z.number().int(),
  ram: z.number().int(),
  task: z.string().optional(),
  registered: z.boolean().optional(),
});

export class CapacityLedger {
  readonly #config: LedgerConfig;
  readonly #now: () => number;
  readonly #keys: [leases: string, records: string];
  readonly #budgetKey: string;
  readonly #releasedKey: string;
  readonly #limits: BudgetLimits;
  readonly #limitsJson: string;
  readonly #acquire: LedgerScript;
  readonly #renew: LedgerScript;
  readonly #release: LedgerScript;
  readonly #attach: LedgerScript;
  readonly #setLimits: LedgerScript;
  readonly #snapshot: LedgerScript;

  constructor(redis: Redis, config: LedgerConfig, options: CapacityLedgerOptions = {}) {
    const { keyPrefix = "ledger", now = Date.now } = options;
    this.#config = config;
    this.#now = now;
    this.#keys = [`${keyPrefix}:leases`, `${keyPrefix}:lease-records`];
    this.#budgetKey = `${keyPrefix}:budget`;
    this.#releasedKey = `${keyPrefix}:released`;
    this.#limits = budgetLimitsOf(config);
    this.#limitsJson = JSON.stringify(this.#limits);
    // Script.exec sends EVALSHA and falls back to EVAL on NOSCRIPT, so the
    // script body crosses the network only once per Redis.
    this.#acquire = redis.createScript(acquireLeaseScript);
    this.#renew = redis.createScript(renewLeaseScript);
    this.#release = redis.createScript(releaseLeaseScript);
    this.#attach = redis.createScript(attachTaskScript);
    this.#setLimits = redis.createScript(setBudgetLimitsScript);
    this.#snapshot = redis.createScript(snapshotLeasesScript);
  }

  /**
   * Reserves one task's worth of capacity for `kind`, or says why not (which
   * resource is short and by how much, differing limits, recovery). Retrying
   * with the same `leaseId` returns the lease the first call granted.
   */
  async acquire(kind: JobKind, holder: LeaseHolder, options: AcquireOptions = {}): Promise<AcquireResult> {
    if (holder.holder.length === 0 || holder.holder.length > MAX_HOLDER_LENGTH) {
      throw new RangeError(`lease holder must be 1 to ${MAX_HOLDER_LENGTH} characters, got ${holder.holder.length}`);
    }
    const id = options.leaseId ?? crypto.randomUUID();
    if (id.length === 0 || id.length > 64) throw new RangeError(`lease id must be 1 to 64 characters, got ${id.length}`);
    const profile = this.#config.profiles[kind];
    const vcpu = toMilli(profile.vcpu);
    const ram = toMilli(profile.ramGb);
    const reply = await this.#acquire.exec([...this.#keys, this.#budgetKey, this.#releasedKey], [
      String(this.#now()),
      id,
      kind,
      holder.environment,
      holder.holder,
      String(vcpu),
      String(ram),
      String(toMilli(this.#config.capacity.vcpu)),
      String(toMilli(this.#config.capacity.ramGb)),
      String(profile.maxTasks ?? -1),
      String(this.#config.leaseTtlMs),
      this.#limitsJson,
      options.mode ?? "unchecked",
    ]);
    const [granted, ...rest] = scriptArray(reply, "acquire");
    if (Number(granted) === 1) {
      const expiresAt = Number(rest[0]);
      return {
        granted: true,
        lease: { id, kind, environment: holder.environment, holder: holder.holder, vcpu: fromMilli(vcpu), ramGb: fromMilli(ram), expiresAt },
      };
    }
    const resource = String(rest[0]);
    if (resource === "limits") return { granted: false, resource, reason: describeLimitsDifference(this.#limits, rest[1]) };
    const [a, b, c] = rest.slice(1).map(Number);
    if (a === undefined || b === undefined || c === undefined) throw new Error(`unexpected acquire reply: ${JSON.stringify(reply)}`);
    switch (resource) {
      case "vcpu":
        return { granted: false, resource, reason: `${kind} needs ${fromMilli(a)} vCPU, ${fromMilli(b)} free of ${fromMilli(c)}` };
      case "ram":
        return { granted: false, resource, reason: `${kind} needs ${fromMilli(a)} GB RAM, ${fromMilli(b)} free of ${fromMilli(c)}` };
      case "kind_cap":
        return {
          granted: false,
          resource,
          reason: `${kind} already holds ${a} of ${b} leases allowed (${KIND_VARIABLES[kind].maxTasks})`,
        };
      case "recovering":
        return {
          granted: false,
          resource,
          reason: `the ledger lost its data (Redis flushed or restarted empty): no new task until running tasks have re-registered, at ${new Date(a).toISOString()}`,
        };
      case "released":
        return { granted: false, resource, reason: `lease ${id} was released; it cannot be re-registered` };
      default:
        throw new Error(`unexpected acquire reply: ${JSON.stringify(reply)}`);
    }
  }

  /**
   * Keeps a runner's lease: renews it, or, when the ledger no longer has it
   * (Redis lost its data, or it expired), re-registers it under the same id
   * if capacity allows. Refused means the runner must drain.
   */
  async renewOrReregister(leaseId: string, kind: JobKind, holder: LeaseHolder): Promise<{ held: true; reregistered: boolean } | { held: false; reason: string }> {
    if (await this.renew(leaseId)) return { held: true, reregistered: false };
    const result = await this.acquire(kind, holder, { leaseId, mode: "re-register" });
    if (result.granted) return { held: true, reregistered: true };
    return { held: false, reason: `the ledger no longer has this lease and re-registering it was refused: ${result.reason}` };
  }

  /** Extends the lease by the TTL and marks it registered; false when it already expired or was released. */
  async renew(leaseId: string): Promise<boolean> {
    const reply = await this.#renew.exec(this.#keys, [String(this.#now()), leaseId, String(this.#config.leaseTtlMs)]);
    return Number(reply) > 0;
  }

  /** Frees the lease's capacity. Idempotent: true only for the call that actually freed live capacity. */
  async release(leaseId: string): Promise<boolean> {
    const reply = await this.#release.exec([...this.#keys, this.#releasedKey], [String(this.#now()), leaseId, String(this.#config.leaseTtlMs)]);
    return Number(reply) === 1;
  }

  /** Notes the ECS task started for a lease; false when the lease is gone. */
  async attachTask(leaseId: string, taskArn: string): Promise<boolean> {
    const reply = await this.#attach.exec([this.#keys[1]], [leaseId, taskArn]);
    return Number(reply) === 1;
  }

  /**
   * Writes this configuration's limits as the budget's. "if-missing" (the
   * caller knows no task runs, e.g. a stack just started) skips the recovery
   * wait a missing budget otherwise starts; "replace" changes the limits on
   * purpose. True when written.
   */
  async setLimits(mode: "if-missing" | "replace"): Promise<boolean> {
    return Number(await this.#setLimits.exec([this.#budgetKey], [this.#limitsJson, mode])) === 1;
  }

  /** Allocated vs available capacity and the live leases, after dropping expired ones. */
  async snapshot(): Promise<CapacitySnapshot> {
    const takenAt = this.#now();
    const flat = scriptArray(await this.#snapshot.exec(this.#keys, [String(takenAt)]), "snapshot");
    const leases: Lease[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      // @upstash/redis may already have parsed the JSON record (automatic deserialization is on by default).
      const raw = flat[i + 2];
      const record = leaseRecordSchema.parse(typeof raw === "string" ? JSON.parse(raw) : raw);
      leases.push({
        id: String(flat[i]),
        kind: record.kind,
        environment: record.environment,
        holder: String(record.holder),
        vcpu: fromMilli(record.vcpu),
        ramGb: fromMilli(record.ram),
        expiresAt: Number(flat[i + 1]),
        ...(record.task === undefined ? {} : { taskArn: record.task }),
        registered: record.registered === true,
      });
    }

    const capacityVcpu = toMilli(this.#config.capacity.vcpu);
    const capacityRam = toMilli(this.#config.capacity.ramGb);
    const total = sumOf(leases);
    return {
      takenAt,
      capacity: { vcpu: fromMilli(capacityVcpu), ramGb: fromMilli(capacityRam) },
      allocated: { vcpu: fromMilli(total.vcpu), ramGb: fromMilli(total.ram) },
      available: { vcpu: fromMilli(capacityVcpu - total.vcpu), ramGb: fromMilli(capacityRam - total.ram) },
      byKind: groupBy(JOB_KINDS, leases, (lease) => lease.kind),
      byEnvironment: groupBy(ENVIRONMENTS, leases, (lease) => lease.environment),
      leases,
    };
  }
}

function scriptArray(reply: unknown, script: string): unknown[] {
  if (!Array.isArray(reply)) throw new Error(`unexpected ${script} reply: ${JSON.stringify(reply)}`);
  return reply;
}

/** Sums in thousandths so many small leases add up exactly. */
function sumOf(leases: readonly Lease[]): { vcpu: number; ram: number } {
  let vcpu = 0;
  let ram = 0;
  for (const lease of leases) {
    vcpu += toMilli(lease.vcpu);
    ram += toMilli(lease.ramGb);
  }
  return { vcpu, ram };
}

function groupBy<K extends string>(keys: readonly K[], leases: readonly Lease[], keyOf: (lease: Lease) => K): Record<K, ResourceUse> {
  const groups = {} as Record<K, ResourceUse>;
  for (const key of keys) {
    const members = leases.filter((lease) => keyOf(lease) === key);
    const sum = sumOf(members);
    groups[key] = { leases: members.length, vcpu: fromMilli(sum.vcpu), ramGb: fromMilli(sum.ram) };
  }
  return groups;
}
