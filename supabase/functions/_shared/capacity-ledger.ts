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
 * Redis holds two keys and nothing else:
 * - `<prefix>:leases`, a sorted set of lease ids scored by expiry (ms);
 * - `<prefix>:lease-records`, a hash of lease id → JSON {kind, environment,
 *   holder, vcpu, ram} in thousandths (milli-vCPU, MB).
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
 * Drops expired leases, then grants a new one only if the kind's vCPU, RAM and
 * per-kind cap all fit, in one atomic step: no check-then-write from a client,
 * so concurrent dispatchers cannot over-allocate.
 * Returns `{1, expiresAt}` when granted, or `{0, resource, a, b, c}` when
 * refused: for "vcpu"/"ram" the amount needed, free and capacity (thousandths);
 * for "kind_cap" the leases the kind holds and its cap.
 */
export const acquireLeaseScript = `
local leases        = KEYS[1]            -- sorted set: lease id → expiry (ms since epoch)
local records       = KEYS[2]            -- hash: lease id → JSON {kind, environment, holder, vcpu, ram}
local now           = tonumber(ARGV[1])  -- caller's clock, ms since epoch
local id            = ARGV[2]            -- the new lease's id (a uuid)
local kind          = ARGV[3]            -- job kind the lease is for
local environment   = ARGV[4]            -- dev | staging | prod
local holder        = ARGV[5]            -- who asks (dispatcher or runner name), for status output
local vcpu          = tonumber(ARGV[6])  -- milli-vCPU the lease reserves
local ram           = tonumber(ARGV[7])  -- MB (milli-GB) the lease reserves
local vcpuCapacity  = tonumber(ARGV[8])  -- milli-vCPU all leases may hold together
local ramCapacity   = tonumber(ARGV[9])  -- MB all leases may hold together
local kindCap       = tonumber(ARGV[10]) -- most leases of this kind at once; -1 for no cap
local ttl           = tonumber(ARGV[11]) -- lease lifetime without renewal, ms

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
redis.call("HSET", records, id, cjson.encode({kind = kind, environment = environment, holder = holder, vcpu = vcpu, ram = ram}))
return {1, expiresAt}
`;

/**
 * Extends a live lease by the TTL. Returns the new expiry, or 0 when the lease
 * is gone or already expired: an expired lease's capacity may have been
 * granted to someone else, so it must not come back to life.
 */
export const renewLeaseScript = `
local leases  = KEYS[1]           -- sorted set: lease id → expiry (ms since epoch)
local records = KEYS[2]           -- hash: lease id → JSON record
local now     = tonumber(ARGV[1]) -- caller's clock, ms since epoch
local id      = ARGV[2]           -- lease to renew
local ttl     = tonumber(ARGV[3]) -- new lifetime from now, ms

local expiresAt = redis.call("ZSCORE", leases, id)
if not expiresAt then return 0 end
if tonumber(expiresAt) <= now then
  redis.call("ZREM", leases, id)
  redis.call("HDEL", records, id)
  return 0
end
redis.call("ZADD", leases, "XX", now + ttl, id)
return now + ttl
`;

/**
 * Removes a lease. Returns 1 only when this call freed live capacity, so
 * releasing twice (or releasing an expired lease) frees once.
 */
export const releaseLeaseScript = `
local leases  = KEYS[1]           -- sorted set: lease id → expiry (ms since epoch)
local records = KEYS[2]           -- hash: lease id → JSON record
local now     = tonumber(ARGV[1]) -- caller's clock, ms since epoch
local id      = ARGV[2]           -- lease to release

local expiresAt = redis.call("ZSCORE", leases, id)
redis.call("ZREM", leases, id)
redis.call("HDEL", records, id)
if expiresAt and tonumber(expiresAt) > now then return 1 end
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
}

export type LeaseResource = "vcpu" | "ram" | "kind_cap";

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
});

export class CapacityLedger {
  readonly #config: LedgerConfig;
  readonly #now: () => number;
  readonly #keys: [leases: string, records: string];
  readonly #acquire: LedgerScript;
  readonly #renew: LedgerScript;
  readonly #release: LedgerScript;
  readonly #snapshot: LedgerScript;

  constructor(redis: Redis, config: LedgerConfig, options: CapacityLedgerOptions = {}) {
    const { keyPrefix = "ledger", now = Date.now } = options;
    this.#config = config;
    this.#now = now;
    this.#keys = [`${keyPrefix}:leases`, `${keyPrefix}:lease-records`];
    // Script.exec sends EVALSHA and falls back to EVAL on NOSCRIPT, so the
    // script body crosses the network only once per Redis.
    this.#acquire = redis.createScript(acquireLeaseScript);
    this.#renew = redis.createScript(renewLeaseScript);
    this.#release = redis.createScript(releaseLeaseScript);
    this.#snapshot = redis.createScript(snapshotLeasesScript);
  }

  /** Reserves one task's worth of capacity for `kind`, or says which resource is short and by how much. */
  async acquire(kind: JobKind, holder: LeaseHolder): Promise<AcquireResult> {
    if (holder.holder.length === 0 || holder.holder.length > MAX_HOLDER_LENGTH) {
      throw new RangeError(`lease holder must be 1 to ${MAX_HOLDER_LENGTH} characters, got ${holder.holder.length}`);
    }
    const profile = this.#config.profiles[kind];
    const id = crypto.randomUUID();
    const vcpu = toMilli(profile.vcpu);
    const ram = toMilli(profile.ramGb);
    const reply = await this.#acquire.exec(this.#keys, [
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
      default:
        throw new Error(`unexpected acquire reply: ${JSON.stringify(reply)}`);
    }
  }

  /** Extends the lease by the TTL; false when it already expired or was released (the holder must stop). */
  async renew(leaseId: string): Promise<boolean> {
    const reply = await this.#renew.exec(this.#keys, [String(this.#now()), leaseId, String(this.#config.leaseTtlMs)]);
    return Number(reply) > 0;
  }

  /** Frees the lease's capacity. Idempotent: true only for the call that actually freed live capacity. */
  async release(leaseId: string): Promise<boolean> {
    const reply = await this.#release.exec(this.#keys, [String(this.#now()), leaseId]);
    return Number(reply) === 1;
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
