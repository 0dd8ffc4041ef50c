import type { Redis } from "@upstash/redis";
import { z } from "zod";
import { fromMilli, toMilli, type CapacityConfig, KIND_VARIABLES } from "./capacity-config.ts";
import { ENVIRONMENTS, type Environment } from "./environments.ts";
import { JOB_KINDS, type JobKind } from "./job-kinds.ts";

/**
 * The capacity ledger: one compute budget shared by every environment, every
 * dispatcher and every runner. A task may start only while it holds a lease;
 * a lease reserves its kind's vCPU and RAM until it is released or stops
 * being renewed.
 *
 * Redis holds four keys and nothing else:
 * - `<prefix>:leases`, a sorted set of lease ids scored by expiry (ms);
 * - `<prefix>:lease-records`, a hash of lease id → JSON {kind, environment,
 *   holder, vcpu, ram, task?, registered?} in thousandths (milli-vCPU, MB);
 * - `<prefix>:budget`, a hash holding the budget's limits (written once from
 *   configuration; every acquirer must agree with them) and, after Redis
 *   lost its data, the time before which no new task is admitted;
 * - `<prefix>:released`, tombstones of released leases (one TTL long), so a
 *   runner cannot re-register a lease someone released on purpose.
 * Allocation is always summed from the live leases, never kept in a counter,
 * so a crashed holder cannot leak capacity: its lease expires and the next
 * acquire or snapshot drops it. No cleanup process is needed.
 *
 * Time: every script takes "now" from the caller rather than calling TIME.
 * Upstash asks scripts to stay deterministic (no clock or random source inside,
 * https://upstash.com/docs/redis/commands/scripting/eval), and
 * `@upstash/ratelimit` passes the client's clock the same way. Holders run on
 * NTP-synced hosts whose skew (well under a second) is small against a lease
 * TTL of minutes.
 */

/**
 * Grants a lease only if the kind's vCPU, RAM and per-kind cap all fit, in
 * one atomic step: no check-then-write from a client, so concurrent
 * dispatchers cannot over-allocate. Around that core:
 * - Idempotent by lease id: a caller whose reply was lost retries with the
 *   same id and gets its own live lease back instead of a refusal (the
 *   client's own retry would otherwise count its first grant against itself).
 * - The budget's limits live once, in the budget hash. The first acquirer
 *   writes them from its configuration; an acquirer configured differently is
 *   refused with the stored limits so it can name the difference.
 * - A missing budget hash means Redis lost its data (or the budget is new):
 *   live tasks' leases are gone too. In mode "start-task" (dispatch) no new
 *   task is admitted until one lease TTL has passed, the longest a running or
 *   booting task takes to renew and so re-register. Mode "re-register" (a
 *   runner whose lease vanished) is admitted if capacity allows, but never
 *   for a lease that was released on purpose (the tombstones).
 * Returns `{1, expiresAt, "granted" | "existing"}`, or `{0, resource, …}`:
 * "vcpu"/"ram" with the amount needed, free and capacity (thousandths);
 * "kind_cap" with the leases the kind holds and its cap; "limits" with the
 * stored limits; "recovering" with the time new tasks are admitted again;
 * "released" when re-registering a lease that was released.
 */
export const acquireLeaseScript = `
local leases        = KEYS[1]            -- sorted set: lease id → expiry (ms since epoch)
local records       = KEYS[2]            -- hash: lease id → JSON {kind, environment, holder, vcpu, ram, task?, registered?}
local budget        = KEYS[3]            -- hash: limits → canonical JSON of the limits, admit_after → ms before which no new task starts
local released      = KEYS[4]            -- sorted set: released lease id → when its tombstone may go (ms)
local now           = tonumber(ARGV[1])  -- caller's clock, ms since epoch
local id            = ARGV[2]            -- the lease's id (a uuid), chosen by the caller so a retry finds it
local kind          = ARGV[3]            -- job kind the lease is for
local environment   = ARGV[4]            -- dev | staging | prod
local holder        = ARGV[5]            -- who asks (dispatcher or runner name), for status output
local vcpu          = tonumber(ARGV[6])  -- milli-vCPU the lease reserves
local ram           = tonumber(ARGV[7])  -- MB (milli-GB) the lease reserves
local vcpuCapacity  = tonumber(ARGV[8])  -- milli-vCPU all leases may hold together
local ramCapacity   = tonumber(ARGV[9])  -- MB all leases may hold together
local kindCap       = tonumber(ARGV[10]) -- most leases of this kind at once; -1 for no cap
local ttl           = tonumber(ARGV[11]) -- lease lifetime without renewal, ms
local limits        = ARGV[12]           -- canonical JSON of the caller's limits (capacity, per-kind sizes and caps)
local mode          = ARGV[13]           -- start-task | re-register | unchecked (tests and tools: no recovery wait)

local stored = redis.call("HGET", budget, "limits")
if not stored then
  local admitAfter = 0
  if mode ~= "unchecked" then admitAfter = now + ttl end
  redis.call("HSET", budget, "limits", limits, "admit_after", admitAfter)
  stored = limits
end
if stored ~= limits then
  return {0, "limits", stored}
end

local existing = redis.call("ZSCORE", leases, id)
if existing and tonumber(existing) > now and redis.call("HEXISTS", records, id) == 1 then
  return {1, tonumber(existing), "existing"}
end

redis.call("ZREMRANGEBYSCORE", released, "-inf", now)
if mode == "re-register" and redis.call("ZSCORE", released, id) then
  return {0, "released", 0, 0, 0}
end
if mode == "start-task" then
  local admitAfter = tonumber(redis.call("HGET", budget, "admit_after") or "0")
  if now < admitAfter then return {0, "recovering", admitAfter, 0, 0} end
end

local expired = redis.call("ZRANGEBYSCORE", leases, "-inf", now)
for _, expiredId in ipairs(expired) do
  redis.call("HDEL", records, expiredId)
end
redis.call("ZREMRANGEBYSCORE", leases, "-inf", now)

local usedVcpu, usedRam, sameKind = 0, 0, 0
local ids = redis.call("ZRANGE", leases, 0, -1)
for _, leaseId in ipairs(ids) do
  local encoded = redis.call("HGET", records, leaseId)
  if encoded then
    local record = cjson.decode(encoded)
    usedVcpu = usedVcpu + record.vcpu
    usedRam = usedRam + record.ram
    if record.kind == kind then sameKind = sameKind + 1 end
  end
end

if kindCap >= 0 and sameKind + 1 > kindCap then
  return {0, "kind_cap", sameKind, kindCap, 0}
end
if usedVcpu + vcpu > vcpuCapacity then
  return {0, "vcpu", vcpu, vcpuCapacity - usedVcpu, vcpuCapacity}
end
if usedRam + ram > ramCapacity then
  return {0, "ram", ram, ramCapacity - usedRam, ramCapacity}
end

local expiresAt = now + ttl
redis.call("ZADD", leases, expiresAt, id)
redis.call("HSET", records, id, cjson.encode({kind = kind, environment = environment, holder = holder, vcpu = vcpu, ram = ram, registered = (mode == "re-register")}))
return {1, expiresAt, "granted"}
`;

/**
 * Extends a live lease by the TTL and marks it registered (its runner is up,
 * so dispatch no longer watches its task for a stop before start). Returns
 * the new expiry, or 0 when the lease is gone or already expired: the
 * runner then re-registers through acquire, which checks capacity again.
 */
export const renewLeaseScript = `
local leases  = KEYS[1]           -- sorted set: lease id → expiry (ms since epoch)
local records = KEYS[2]           -- hash: lease id → JSON record
local now     = tonumber(ARGV[1]) -- caller's clock, ms since epoch
local id      = ARGV[2]           -- lease to renew
local ttl     = tonumber(ARGV[3]) -- new lifetime from now, ms

local expiresAt = redis.call("ZSCORE", leases, id)
local encoded = redis.call("HGET", records, id)
if not expiresAt or not encoded then return 0 end
if tonumber(expiresAt) <= now then
  redis.call("ZREM", leases, id)
  redis.call("HDEL", records, id)
  return 0
end
local record = cjson.decode(encoded)
if not record.registered then
  record.registered = true
  redis.call("HSET", records, id, cjson.encode(record))
end
redis.call("ZADD", leases, "XX", now + ttl, id)
return now + ttl
`;

/**
 * Removes a lease and leaves a tombstone for one TTL, so its runner (if one
 * still lives) cannot re-register it. Returns 1 only when this call freed
 * live capacity, so releasing twice (or an expired lease) frees once.
 */
export const releaseLeaseScript = `
local leases   = KEYS[1]           -- sorted set: lease id → expiry (ms since epoch)
local records  = KEYS[2]           -- hash: lease id → JSON record
local released = KEYS[3]           -- sorted set: released lease id → when its tombstone may go (ms)
local now      = tonumber(ARGV[1]) -- caller's clock, ms since epoch
local id       = ARGV[2]           -- lease to release
local ttl      = tonumber(ARGV[3]) -- lease lifetime, ms: how long the tombstone stays

local expiresAt = redis.call("ZSCORE", leases, id)
redis.call("ZREM", leases, id)
redis.call("HDEL", records, id)
redis.call("ZADD", released, now + ttl, id)
if expiresAt and tonumber(expiresAt) > now then return 1 end
return 0
`;

/**
 * Records which ECS task a lease was granted for, so a later dispatch can
 * return the lease of a task that stopped before its runner registered.
 * Returns 1, or 0 when the lease is gone.
 */
export const attachTaskScript = `
local records = KEYS[1]  -- hash: lease id → JSON record
local id      = ARGV[1]  -- the lease
local task    = ARGV[2]  -- the ECS task ARN RunTask returned

local encoded = redis.call("HGET", records, id)
if not encoded then return 0 end
local record = cjson.decode(encoded)
record.task = task
redis.call("HSET", records, id, cjson.encode(record))
return 1
`;

/**
 * Writes the budget's limits from configuration. Mode "if-missing" writes
 * them only where none are stored, declaring that no task runs (no recovery
 * wait): the local stack at start, a fresh deployment. Mode "replace"
 * changes them on purpose (an operator changed the budget everywhere) and
 * keeps any recovery wait. Returns 1 when written.
 */
export const setBudgetLimitsScript = `
local budget = KEYS[1]  -- hash: limits → canonical JSON, admit_after → ms
local limits = ARGV[1]  -- canonical JSON of the limits
local mode   = ARGV[2]  -- if-missing | replace

if mode == "replace" then
  redis.call("HSET", budget, "limits", limits)
  return 1
end
if redis.call("HSETNX", budget, "limits", limits) == 1 then
  redis.call("HSET", budget, "admit_after", 0)
  return 1
end
return 0
`;

/**
 * Drops expired leases and returns the live ones as a flat list:
 * id, expiry (ms), JSON record, id, expiry, record, …
 */
export const snapshotLeasesScript = `
local leases  = KEYS[1]           -- sorted set: lease id → expiry (ms since epoch)
local records = KEYS[2]           -- hash: lease id → JSON record
local now     = tonumber(ARGV[1]) -- caller's clock, ms since epoch

local expired = redis.call("ZRANGEBYSCORE", leases, "-inf", now)
for _, expiredId in ipairs(expired) do
  redis.call("HDEL", records, expiredId)
end
redis.call("ZREMRANGEBYSCORE", leases, "-inf", now)

local out = {}
local live = redis.call("ZRANGE", leases, 0, -1, "WITHSCORES")
for i = 1, #live, 2 do
  local encoded = redis.call("HGET", records, live[i])
  if encoded then
    out[#out + 1] = live[i]
    out[#out + 1] = live[i + 1]
    out[#out + 1] = encoded
  end
end
return out
`;

/** A grant of capacity. Its id is unique and at most 64 characters, so it doubles as the ECS RunTask `clientToken`. */
export interface Lease {
  readonly id: string;
  readonly kind: JobKind;
  readonly environment: Environment;
  readonly holder: string;
  readonly vcpu: number;
  readonly ramGb: number;
  /** ms since epoch; the lease must be renewed before then. */
  readonly expiresAt: number;
  /** The ECS task started for it, once RunTask answered (snapshot only). */
  readonly taskArn?: string;
  /** True once its runner renewed it: the task is up (snapshot only). */
  readonly registered?: boolean;
}

/**
 * Why an acquire was refused: a resource short, the caller's limits differ
 * from the budget's, the ledger is waiting for tasks to re-register after a
 * data loss, or the lease was released on purpose.
 */
export type LeaseResource = "vcpu" | "ram" | "kind_cap" | "limits" | "recovering" | "released";

/**
 * - "start-task": dispatch, before RunTask; waits out the recovery after a data loss.
 * - "re-register": a runner whose lease vanished (Redis lost its data, or it expired) takes it back if capacity allows.
 * - "unchecked": tests and tools that know nothing runs; a missing budget is written without a recovery wait.
 */
export type AcquireMode = "start-task" | "re-register" | "unchecked";

export interface AcquireOptions {
  /** The lease's id; pass the same id when retrying so a lost reply finds its own lease. @default a new uuid */
  leaseId?: string;
  /** @default "unchecked" */
  mode?: AcquireMode;
}

export type AcquireResult =
  | { readonly granted: true; readonly lease: Lease }
  | { readonly granted: false; readonly resource: LeaseResource; readonly reason: string };

export interface LeaseHolder {
  readonly environment: Environment;
  /** Who holds the lease, shown in status output (e.g. `dispatch@prod`, a task ARN). */
  readonly holder: string;
}

export interface ResourceUse {
  readonly leases: number;
  readonly vcpu: number;
  readonly ramGb: number;
}

export interface CapacitySnapshot {
  /** The clock reading the snapshot was taken at (ms since epoch). */
  readonly takenAt: number;
  readonly capacity: { readonly vcpu: number; readonly ramGb: number };
  readonly allocated: { readonly vcpu: number; readonly ramGb: number };
  readonly available: { readonly vcpu: number; readonly ramGb: number };
  readonly byKind: Readonly<Record<JobKind, ResourceUse>>;
  readonly byEnvironment: Readonly<Record<Environment, ResourceUse>>;
  /** Live leases, soonest expiry first. */
  readonly leases: readonly Lease[];
}

export interface CapacityLedgerOptions {
  /** Prefix of the ledger's keys; one budget per prefix. @default "ledger" */
  keyPrefix?: string;
  /** Clock in ms since epoch (see the module comment on time). @default Date.now */
  now?: () => number;
}

/** What the ledger needs from the configuration. */
export type LedgerConfig = Pick<CapacityConfig, "capacity" | "profiles" | "leaseTtlMs">;

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

/** The limits every acquirer must agree on, in thousandths; built in a fixed key order so equal limits give equal JSON. */
interface BudgetLimits {
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
