import { createHash } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import {
  acquireLeaseScript,
  attachTaskScript,
  releaseLeaseScript,
  renewLeaseScript,
  setBudgetLimitsScript,
  snapshotLeasesScript,
} from "../../supabase/functions/_shared/capacity-ledger-scripts.ts";
import { CapacityLedger, type CapacitySnapshot, type Lease } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { ENVIRONMENTS, type Environment } from "../../supabase/functions/_shared/environments.ts";
import type { JobKind } from "../../supabase/functions/_shared/job-kinds.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

function ledgerFor(env: Record<string, string | undefined>, name: string, options: { now?: () => number } = {}) {
  const config = parseCapacityConfig(env);
  const keyPrefix = randomKeyPrefix(name);
  return { config, keyPrefix, ledger: new CapacityLedger(upstashClient(), config, { keyPrefix, ...options }) };
}

const dispatcher = (environment: Environment = "prod") => ({ environment, holder: `dispatch@${environment}` });

async function mustAcquire(ledger: CapacityLedger, kind: JobKind, environment: Environment = "prod"): Promise<Lease> {
  const result = await ledger.acquire(kind, dispatcher(environment));
  if (!result.granted) throw new Error(`expected a lease for ${kind}, got: ${result.reason}`);
  return result.lease;
}

describe("scripts", () => {
  // A changed script must change its pinned SHA on purpose: EVALSHA callers
  // and anyone reading Redis's script cache rely on it.
  it.each([
    ["acquireLeaseScript", acquireLeaseScript, "2e919b1f6bbde413a09458f18b9ffb341919ff19"],
    ["renewLeaseScript", renewLeaseScript, "f019285168b1840b442b3db8429ee74f20c4fe82"],
    ["releaseLeaseScript", releaseLeaseScript, "1bd82d9434788c4017436dd6c5a9e2bff75c8d08"],
    ["attachTaskScript", attachTaskScript, "4395f25e057b34ab944653c66dace474b479532f"],
    ["setBudgetLimitsScript", setBudgetLimitsScript, "cedac15735356c844de2e54d42e6ed301e74ccc1"],
    ["snapshotLeasesScript", snapshotLeasesScript, "ac72f069a4ce90f9c7b8ae56989f77e42c849773"],
  ])("%s has the pinned SHA1, and Redis computes the same", async (_name, script, sha) => {
    expect(createHash("sha1").update(script).digest("hex")).toBe(sha);
    expect(await upstashClient().scriptLoad(script)).toBe(sha);
  });
});

describe("seed sizing scenarios", () => {
  // Seed 000's tables, recomputed. Its "adjusted" extra-large mix (4 registre,
  // 5 index, 10 acte) claims 24.5 vCPU; it is 29.5, so the ledger admits only
  // 6 of the 10 acte tasks.
  it.each([
    {
      server: "4 vCPU / 8 GB",
      env: { SERVER_MAX_CPU: "4", SERVER_MAX_RAM: "8" },
      capacity: { vcpu: 3.2, ramGb: 6.4 },
      admits: ["registre"],
      allocated: { vcpu: 3, ramGb: 1 },
      refuses: { kind: "index-ocr", reason: "index-ocr needs 1.5 vCPU, 0.2 free of 3.2" },
    },
    {
      server: "8 vCPU / 16 GB",
      env: { SERVER_MAX_CPU: "8", SERVER_MAX_RAM: "16" },
      capacity: { vcpu: 6.4, ramGb: 12.8 },
      admits: ["registre", "index-ocr", "acte-ocr"],
      allocated: { vcpu: 5.5, ramGb: 2.25 },
      refuses: { kind: "acte-ocr", reason: "acte-ocr needs 1 vCPU, 0.9 free of 6.4" },
    },
    {
      server: "16 vCPU / 32 GB",
      env: { SERVER_MAX_CPU: "16", SERVER_MAX_RAM: "32" },
      capacity: { vcpu: 12.8, ramGb: 25.6 },
      admits: ["registre", "registre", "index-ocr", "index-ocr", "acte-ocr", "acte-ocr", "acte-ocr"],
      allocated: { vcpu: 12, ramGb: 5 },
      refuses: { kind: "acte-ocr", reason: "acte-ocr needs 1 vCPU, 0.8 free of 12.8" },
    },
    {
      server: "32 vCPU / 64 GB",
      env: { SERVER_MAX_CPU: "32", SERVER_MAX_RAM: "64" },
      capacity: { vcpu: 25.6, ramGb: 51.2 },
      admits: [...Array<JobKind>(4).fill("registre"), ...Array<JobKind>(5).fill("index-ocr"), ...Array<JobKind>(6).fill("acte-ocr")],
      allocated: { vcpu: 25.5, ramGb: 10.75 },
      refuses: { kind: "acte-ocr", reason: "acte-ocr needs 1 vCPU, 0.1 free of 25.6" },
    },
  ] satisfies Array<{
    server: string;
    env: Record<string, string>;
    capacity: { vcpu: number; ramGb: number };
    admits: JobKind[];
    allocated: { vcpu: number; ramGb: number };
    refuses: { kind: JobKind; reason: string };
  }>)("$server with 20 % reserve admits $admits.length tasks, then refuses $refuses.kind", async (scenario) => {
    const { ledger } = ledgerFor(scenario.env, "sizing");
    for (const kind of scenario.admits) await mustAcquire(ledger, kind);

    const snapshot = await ledger.snapshot();
    expect(snapshot.capacity).toEqual(scenario.capacity);
    expect(snapshot.allocated).toEqual(scenario.allocated);

    const refused = await ledger.acquire(scenario.refuses.kind, dispatcher());
    expect(refused).toEqual({ granted: false, resource: "vcpu", reason: scenario.refuses.reason });
    expect((await ledger.snapshot()).leases).toHaveLength(scenario.admits.length);
  });
});

describe("concurrent acquirers", () => {
  it.each([
    // 7.5 vCPU, plenty of RAM: vCPU binds (7 × 1 vCPU).
    { binding: "vcpu", kind: "acte-ocr", env: { SERVER_MAX_CPU: "7.5", SERVER_RESERVE_CPU_PERCENT: "0", SERVER_MAX_RAM: "64" } },
    // 5.5 GB, plenty of vCPU: RAM binds (7 × 0.75 GB = 5.25).
    { binding: "ram", kind: "index-ocr", env: { SERVER_MAX_CPU: "64", SERVER_MAX_RAM: "5.5", SERVER_RESERVE_RAM_PERCENT: "0" } },
  ] satisfies Array<{ binding: string; kind: JobKind; env: Record<string, string> }>)(
    "50 at once against a budget that fits 7 ($binding binds): exactly 7 leases, never over capacity",
    async ({ binding, kind, env }) => {
      const { config, keyPrefix } = ledgerFor(env, "race");
      // Fifty independent dispatchers, each with its own client, as in production.
      const acquirers = Array.from({ length: 50 }, () => new CapacityLedger(upstashClient(), config, { keyPrefix }));
      const holderOf = (i: number) => dispatcher(ENVIRONMENTS[i % ENVIRONMENTS.length]);

      // Observers snapshot the ledger for as long as the race lasts.
      const snapshots: CapacitySnapshot[] = [];
      let racing = true;
      const observers = Array.from({ length: 4 }, async () => {
        const observer = new CapacityLedger(upstashClient(), config, { keyPrefix });
        while (racing) snapshots.push(await observer.snapshot());
      });

      // First a churn, long enough for many snapshots to land mid-race: every
      // client grabs a lease whenever one fits and gives it straight back.
      // At least 1.5 s, and on a busy machine until enough happened to judge (at most 15 s).
      const churnUntil = Date.now() + 1_500;
      const churnStop = Date.now() + 15_000;
      let churnGrants = 0;
      const churning = () => Date.now() < churnUntil || ((churnGrants <= 7 || snapshots.length < 5) && Date.now() < churnStop);
      await Promise.all(
        acquirers.map(async (ledger, i) => {
          while (churning()) {
            const result = await ledger.acquire(kind, holderOf(i));
            if (result.granted) {
              churnGrants += 1;
              await ledger.release(result.lease.id);
            }
          }
        }),
      );
      // Then all fifty ask at the same moment and keep what they get.
      const results = await Promise.all(acquirers.map((ledger, i) => ledger.acquire(kind, holderOf(i))));
      racing = false;
      await Promise.all(observers);
      const final = await acquirers[0]?.snapshot();

      const granted = results.filter((result) => result.granted);
      const refused = results.flatMap((result) => (result.granted ? [] : [result]));
      expect(granted).toHaveLength(7);
      expect(new Set(refused.map((result) => result.resource))).toEqual(new Set([binding]));
      expect(final?.byKind[kind].leases).toBe(7);
      const perEnvironment = ENVIRONMENTS.map((environment) => final?.byEnvironment[environment].leases ?? 0);
      expect(perEnvironment.reduce((a, b) => a + b, 0)).toBe(7);

      // The snapshots really were taken during the race: many of them, seeing different states.
      expect(churnGrants).toBeGreaterThan(7);
      expect(snapshots.length).toBeGreaterThanOrEqual(5);
      expect(new Set(snapshots.map((snapshot) => snapshot.leases.length)).size).toBeGreaterThan(1);
      for (const snapshot of snapshots) {
        expect(snapshot.allocated.vcpu).toBeLessThanOrEqual(snapshot.capacity.vcpu);
        expect(snapshot.allocated.ramGb).toBeLessThanOrEqual(snapshot.capacity.ramGb);
        expect(snapshot.leases.length).toBeLessThanOrEqual(7);
      }
    },
  );
});

describe("lease lifetime", () => {
  it("a holder that stops renewing gives its capacity back after the TTL, a renewing one keeps it", async () => {
    const { ledger } = ledgerFor({ LEDGER_LEASE_TTL_SECONDS: "1" }, "ttl");
    const silent = await mustAcquire(ledger, "registre", "dev");
    const renewing = await mustAcquire(ledger, "registre", "prod");
    expect(silent.expiresAt - Date.now()).toBeLessThanOrEqual(1000);

    const heartbeat = setInterval(() => void ledger.renew(renewing.id), 200);
    try {
      // 6.4 vCPU, 6 held: a third registre waits until the silent lease expires.
      const refusedAt = Date.now();
      expect(await ledger.acquire("registre", dispatcher())).toMatchObject({ granted: false, resource: "vcpu" });
      const third = await vi.waitFor(
        async () => {
          const result = await ledger.acquire("registre", dispatcher());
          if (!result.granted) throw new Error(result.reason);
          return result.lease;
        },
        { timeout: 5_000, interval: 100 },
      );
      const grantedAt = Date.now();
      expect(grantedAt).toBeGreaterThanOrEqual(silent.expiresAt);
      expect(grantedAt - refusedAt).toBeLessThan(3_000);

      const snapshot = await ledger.snapshot();
      expect(snapshot.leases.map((lease) => lease.id).sort()).toEqual([renewing.id, third.id].sort());
      expect(await ledger.renew(silent.id)).toBe(false);
    } finally {
      clearInterval(heartbeat);
    }
  });

  it("renewing a live lease extends it; renewing an expired one fails and does not revive it", async () => {
    let clock = Date.now();
    const { ledger } = ledgerFor({ LEDGER_LEASE_TTL_SECONDS: "60" }, "renew", { now: () => clock });
    const lease = await mustAcquire(ledger, "acte-ocr");

    clock += 30_000;
    expect(await ledger.renew(lease.id)).toBe(true);
    expect((await ledger.snapshot()).leases[0]?.expiresAt).toBe(clock + 60_000);

    clock += 60_001;
    expect(await ledger.renew(lease.id)).toBe(false);
    const snapshot = await ledger.snapshot();
    expect(snapshot.leases).toEqual([]);
    expect(snapshot.allocated).toEqual({ vcpu: 0, ramGb: 0 });
  });

  it("releasing twice frees once", async () => {
    const { ledger } = ledgerFor({}, "release");
    const first = await mustAcquire(ledger, "registre");
    await mustAcquire(ledger, "registre");

    expect(await ledger.release(first.id)).toBe(true);
    expect(await ledger.release(first.id)).toBe(false);

    // Had the second release freed another 3 vCPU, two more registre would fit.
    await mustAcquire(ledger, "registre");
    expect(await ledger.acquire("registre", dispatcher())).toMatchObject({ granted: false, resource: "vcpu" });
    expect((await ledger.snapshot()).allocated).toEqual({ vcpu: 6, ramGb: 2 });
  });

  it("lease ids are unique and fit an ECS clientToken (≤ 64 characters)", async () => {
    const { ledger } = ledgerFor({ SERVER_MAX_CPU: "100" }, "ids");
    const leases = await Promise.all(Array.from({ length: 20 }, () => mustAcquire(ledger, "acte-ocr")));
    expect(new Set(leases.map((lease) => lease.id)).size).toBe(20);
    for (const lease of leases) expect(lease.id.length).toBeLessThanOrEqual(64);
  });
});

describe("refusals", () => {
  it.each([
    {
      resource: "vcpu",
      env: {},
      hold: ["registre", "registre"],
      ask: "index-ocr",
      reason: "index-ocr needs 1.5 vCPU, 0.4 free of 6.4",
    },
    {
      resource: "ram",
      env: { SERVER_MAX_RAM: "2" },
      hold: ["registre"],
      ask: "index-ocr",
      reason: "index-ocr needs 0.75 GB RAM, 0.6 free of 1.6",
    },
    {
      resource: "kind_cap",
      env: { MAX_REGISTRE_TASKS: "1" },
      hold: ["registre"],
      ask: "registre",
      reason: "registre already holds 1 of 1 leases allowed (MAX_REGISTRE_TASKS)",
    },
  ] satisfies Array<{ resource: string; env: Record<string, string>; hold: JobKind[]; ask: JobKind; reason: string }>)(
    "a $resource refusal names the resource and the numbers",
    async ({ resource, env, hold, ask, reason }) => {
      const { ledger } = ledgerFor(env, "refusal");
      for (const kind of hold) await mustAcquire(ledger, kind);
      expect(await ledger.acquire(ask, dispatcher())).toEqual({ granted: false, resource, reason });
    },
  );

  it("the per-kind cap holds across environments, and other kinds still fit", async () => {
    const { ledger } = ledgerFor({ MAX_ACTE_OCR_TASKS: "2" }, "cap");
    await mustAcquire(ledger, "acte-ocr", "dev");
    await mustAcquire(ledger, "acte-ocr", "staging");
    expect(await ledger.acquire("acte-ocr", dispatcher("prod"))).toMatchObject({ granted: false, resource: "kind_cap" });
    await mustAcquire(ledger, "index-ocr", "prod");
    const snapshot = await ledger.snapshot();
    expect(snapshot.byKind).toEqual({
      registre: { leases: 0, vcpu: 0, ramGb: 0 },
      "index-ocr": { leases: 1, vcpu: 1.5, ramGb: 0.75 },
      "acte-ocr": { leases: 2, vcpu: 2, ramGb: 1 },
    });
    expect(snapshot.byEnvironment).toEqual({
      dev: { leases: 1, vcpu: 1, ramGb: 0.5 },
      staging: { leases: 1, vcpu: 1, ramGb: 0.5 },
      prod: { leases: 1, vcpu: 1.5, ramGb: 0.75 },
    });
    expect(snapshot.available).toEqual({ vcpu: 2.9, ramGb: 11.05 });
  });
});
