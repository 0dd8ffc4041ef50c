import { Redis as IoRedis } from "ioredis";
import { describe, expect, inject, it } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger, type CapacitySnapshot, type Lease } from "../../supabase/functions/_shared/capacity-ledger.ts";
import type { Environment } from "../../supabase/functions/_shared/environments.ts";
import type { JobKind } from "../../supabase/functions/_shared/job-kinds.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

// Capacity is never counted twice: a retried acquire finds its own lease,
// environments configured differently are refused instead of over-committing,
// and after Redis loses its data nothing new starts until running tasks have
// re-registered (or a lease TTL has passed).

const dispatcher = (environment: Environment = "prod") => ({ environment, holder: `dispatch@${environment}` });

async function mustAcquire(ledger: CapacityLedger, kind: JobKind, options: Parameters<CapacityLedger["acquire"]>[2] = {}): Promise<Lease> {
  const result = await ledger.acquire(kind, dispatcher(), options);
  if (!result.granted) throw new Error(`expected a lease for ${kind}, got: ${result.reason}`);
  return result.lease;
}

describe("idempotent acquire", () => {
  it("a retry with the same lease id finds its own lease instead of being refused, and counts it once", async () => {
    // 6.4 vCPU: two registre fit, a third does not.
    const ledger = new CapacityLedger(upstashClient(), parseCapacityConfig({}), { keyPrefix: randomKeyPrefix("idempotent") });
    await mustAcquire(ledger, "registre");
    const leaseId = crypto.randomUUID();
    const first = await mustAcquire(ledger, "registre", { leaseId });
    // The reply to `first` was lost; the caller asks again with the same id.
    const retried = await ledger.acquire("registre", dispatcher(), { leaseId });
    expect(retried).toMatchObject({ granted: true, lease: { id: leaseId, expiresAt: first.expiresAt } });
    const snapshot = await ledger.snapshot();
    expect(snapshot.leases).toHaveLength(2);
    expect(snapshot.allocated.vcpu).toBe(6);
    // A fresh id is still refused: the retry did not take a second share.
    expect(await ledger.acquire("registre", dispatcher())).toMatchObject({ granted: false, resource: "vcpu" });
  });
});

describe("one budget for every environment", () => {
  it("an environment configured with different limits gets a refusal naming the difference; the first one's limits stay", async () => {
    const keyPrefix = randomKeyPrefix("limits");
    const prod = new CapacityLedger(upstashClient(), parseCapacityConfig({ SERVER_MAX_CPU: "8" }), { keyPrefix });
    const dev = new CapacityLedger(upstashClient(), parseCapacityConfig({ SERVER_MAX_CPU: "16", REGISTRE_VCPU: "2", MAX_ACTE_OCR_TASKS: "4" }), { keyPrefix });
    await mustAcquire(prod, "registre");

    const refused = await dev.acquire("registre", dispatcher("dev"), { mode: "start-task" });
    expect(refused).toMatchObject({ granted: false, resource: "limits" });
    const reason = refused.granted ? "" : refused.reason;
    expect(reason).toContain("vCPU after the reserve (SERVER_MAX_CPU, SERVER_RESERVE_CPU_PERCENT): 12.8 here, 6.4 in Upstash");
    expect(reason).toContain("REGISTRE_VCPU: 2 here, 3 in Upstash");
    expect(reason).toContain("MAX_ACTE_OCR_TASKS: 4 here, no cap in Upstash");
    expect(reason).not.toContain("RAM");

    // Had dev's 12.8 vCPU been used, it would now fit 4 more registre of 2; it got none.
    const snapshot = await prod.snapshot();
    expect(snapshot.leases).toHaveLength(1);
    // Same limits in another environment: admitted.
    const staging = new CapacityLedger(upstashClient(), parseCapacityConfig({ SERVER_MAX_CPU: "8" }), { keyPrefix });
    expect(await staging.acquire("registre", dispatcher("staging"), { mode: "start-task" })).toMatchObject({ granted: true });

    // Replacing the limits on purpose lets the new configuration in.
    expect(await dev.setLimits("replace")).toBe(true);
    expect(await dev.acquire("registre", dispatcher("dev"))).toMatchObject({ granted: true });
    expect(await prod.acquire("acte-ocr", dispatcher())).toMatchObject({ granted: false, resource: "limits" });
  });
});

describe("after Redis loses its data", () => {
  it("a flush mid-run over-commits nothing: new tasks wait, running tasks re-register, and the budget holds", async () => {
    // 6.4 vCPU: two registre of 3. TTL 3 s so the recovery wait is short.
    const env = { LEDGER_LEASE_TTL_SECONDS: "3" };
    const config = parseCapacityConfig(env);
    const keyPrefix = randomKeyPrefix("flush");
    const dispatch = new CapacityLedger(upstashClient(), config, { keyPrefix });
    expect(await dispatch.setLimits("if-missing")).toBe(true);
    const a = await mustAcquire(dispatch, "registre", { mode: "start-task" });
    const b = await mustAcquire(dispatch, "registre", { mode: "start-task" });

    // Observers watch allocation for the whole test.
    const snapshots: CapacitySnapshot[] = [];
    let watching = true;
    const observer = (async () => {
      const watcher = new CapacityLedger(upstashClient(), config, { keyPrefix });
      while (watching) {
        snapshots.push(await watcher.snapshot());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();

    const redis = new IoRedis(inject("redisUrl"));
    try {
      // The data loss: every key of this ledger goes (FLUSHALL would also wipe other test files' keys on the shared Redis).
      const lost = await redis.keys(`${keyPrefix}:*`);
      expect(lost.length).toBeGreaterThanOrEqual(3);
      await redis.del(...lost);

      // Dispatch runs before any runner noticed: nothing is admitted.
      const early = await dispatch.acquire("registre", dispatcher(), { mode: "start-task" });
      expect(early).toMatchObject({ granted: false, resource: "recovering" });
      // Without the wait, the empty ledger would have admitted it (the test can fail).
      const unguardedProbe = new CapacityLedger(upstashClient(), config, { keyPrefix: randomKeyPrefix("flush-probe") });
      expect(await unguardedProbe.acquire("registre", dispatcher())).toMatchObject({ granted: true });

      // The two running runners renew, find their leases gone, and re-register them.
      const runner = new CapacityLedger(upstashClient(), config, { keyPrefix });
      const holder = { environment: "prod" as const, holder: "runner:test" };
      expect(await runner.renewOrReregister(a.id, "registre", holder)).toEqual({ held: true, reregistered: true });
      expect(await runner.renewOrReregister(b.id, "registre", holder)).toEqual({ held: true, reregistered: true });
      // The next renewal is an ordinary one.
      expect(await runner.renewOrReregister(a.id, "registre", holder)).toEqual({ held: true, reregistered: false });

      // Still inside the wait: refused. After one TTL: admitted only if room (there is none).
      expect(await dispatch.acquire("acte-ocr", dispatcher(), { mode: "start-task" })).toMatchObject({ granted: false, resource: "recovering" });
      const renewing = setInterval(() => {
        for (const lease of [a, b]) void runner.renewOrReregister(lease.id, "registre", holder);
      }, 500);
      let afterWait;
      try {
        afterWait = await waitUntilNotRecovering(dispatch, 15_000);
      } finally {
        clearInterval(renewing);
      }
      expect(afterWait).toMatchObject({ granted: false, resource: "vcpu" });

      // A third runner (a task whose lease was lost, with no room left) cannot re-register: it must drain.
      const third = await runner.renewOrReregister(crypto.randomUUID(), "registre", holder);
      expect(third).toMatchObject({ held: false });
    } finally {
      watching = false;
      await observer;
      redis.disconnect();
    }
    expect(snapshots.length).toBeGreaterThan(10);
    for (const snapshot of snapshots) expect(snapshot.allocated.vcpu).toBeLessThanOrEqual(snapshot.capacity.vcpu);
    const final = await dispatch.snapshot();
    expect(final.leases.map((lease) => lease.id).sort()).toEqual([a.id, b.id].sort());
  });

  it("a lease released on purpose is never re-registered; an expired one is, when there is room", async () => {
    let clock = Date.now();
    const ledger = new CapacityLedger(upstashClient(), parseCapacityConfig({ LEDGER_LEASE_TTL_SECONDS: "60" }), {
      keyPrefix: randomKeyPrefix("reregister"),
      now: () => clock,
    });
    const holder = { environment: "dev" as const, holder: "runner:test" };
    const released = await mustAcquire(ledger, "acte-ocr");
    expect(await ledger.release(released.id)).toBe(true);
    expect(await ledger.renewOrReregister(released.id, "acte-ocr", holder)).toMatchObject({ held: false, reason: expect.stringMatching(/was released/) });

    const expired = await mustAcquire(ledger, "acte-ocr");
    clock += 61_000;
    expect(await ledger.renewOrReregister(expired.id, "acte-ocr", holder)).toEqual({ held: true, reregistered: true });
    expect((await ledger.snapshot()).leases.map((lease) => lease.id)).toEqual([expired.id]);
  });

  it("notes a lease's task and whether its runner registered", async () => {
    const ledger = new CapacityLedger(upstashClient(), parseCapacityConfig({}), { keyPrefix: randomKeyPrefix("attach") });
    const lease = await mustAcquire(ledger, "index-ocr");
    expect(await ledger.attachTask(lease.id, "arn:aws:ecs:local:000000000000:task/c/1")).toBe(true);
    expect((await ledger.snapshot()).leases[0]).toMatchObject({ taskArn: "arn:aws:ecs:local:000000000000:task/c/1", registered: false });
    expect(await ledger.renew(lease.id)).toBe(true);
    expect((await ledger.snapshot()).leases[0]).toMatchObject({ taskArn: "arn:aws:ecs:local:000000000000:task/c/1", registered: true });
    expect(await ledger.attachTask("no-such-lease", "arn")).toBe(false);
  });
});

async function waitUntilNotRecovering(ledger: CapacityLedger, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await ledger.acquire("acte-ocr", dispatcher(), { mode: "start-task" });
    if (result.granted || result.resource !== "recovering") return result;
    if (Date.now() > deadline) throw new Error(`still recovering after ${timeoutMs} ms: ${result.reason}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
