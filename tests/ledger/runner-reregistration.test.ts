import { Redis as IoRedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import { runRunner, RUNNER_EXIT_CODES } from "../../runners/lifecycle/run-runner.ts";
import { parseRunnerConfig } from "../../runners/lifecycle/runner-config.ts";
import { createLogger } from "../../runners/lifecycle/structured-log.ts";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger, type CapacitySnapshot, type Lease } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { redisKeyPrefixes } from "../../supabase/functions/_shared/redis-keys.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";
import { createLoginFor, type RoleLogin } from "../sql/queue-fixtures.ts";

// Redis loses the ledger while two real runners (runRunner, the lifecycle
// every runner shares) hold the whole budget: dispatch admits nothing new,
// the runners re-register their own leases at their next renewal, and the
// budget is never over-committed.

// TTL 6 s: runners renew every 2 s, and the recovery wait (one TTL) outlasts their re-registration even on a busy machine.
const BUDGET = { SERVER_MAX_CPU: "8", SERVER_MAX_RAM: "16", LEDGER_LEASE_TTL_SECONDS: "6" };

let database: FreshDatabase;
let login: RoleLogin;

beforeAll(async () => {
  database = await createFreshDatabase();
  login = await createLoginFor(database, "runner", { max: 4 });
});

afterAll(async () => {
  await login?.drop();
  await database?.drop();
});

describe("a runner whose lease vanished", () => {
  it("re-registers it after Redis lost its data, while dispatch admits nothing new", async () => {
    const keyPrefix = `${randomKeyPrefix("reregister")}:`;
    const ledgerKeys = redisKeyPrefixes(keyPrefix).ledger;
    const config = parseCapacityConfig(BUDGET);
    const dispatch = new CapacityLedger(upstashClient(), config, { keyPrefix: ledgerKeys });
    await dispatch.setLimits("if-missing");
    const leases: Lease[] = [];
    for (let i = 0; i < 2; i += 1) {
      const grant = await dispatch.acquire("registre", { environment: "dev", holder: "dispatch@dev" }, { mode: "start-task" });
      if (!grant.granted) throw new Error(grant.reason);
      leases.push(grant.lease);
    }

    const lines: string[] = [];
    const runners = leases.map((lease, i) =>
      runRunner({
        config: parseRunnerConfig({
          ...BUDGET,
          JOB_KIND: "registre",
          ENVIRONMENT: "dev",
          LEDGER_LEASE_ID: lease.id,
          DATABASE_URL: login.url,
          UPSTASH_REDIS_REST_URL: inject("upstashUrl"),
          UPSTASH_REDIS_REST_TOKEN: inject("upstashToken"),
          REDIS_KEY_PREFIX: keyPrefix,
          RUNNER_IDLE_EXIT_SECONDS: "14",
          RUNNER_POLL_SECONDS: "0.5",
          WORKER_ID: `reregister-${i}`,
        }),
        handle: async () => {
          throw new Error("no job is queued in this test");
        },
        log: createLogger({ base: { runner: i }, write: (line) => void lines.push(line) }),
        handleSignals: false,
      }),
    );

    const snapshots: CapacitySnapshot[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        snapshots.push(await dispatch.snapshot());
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    try {
      await waitFor("both runners to register", async () => (await dispatch.snapshot()).leases.filter((lease) => lease.registered).length === 2, 10_000);

      const redis = new IoRedis(inject("redisUrl"));
      try {
        await redis.del(...(await redis.keys(`${ledgerKeys}:*`)));
      } finally {
        redis.disconnect();
      }
      expect(await dispatch.acquire("acte-ocr", { environment: "dev", holder: "dispatch@dev" }, { mode: "start-task" })).toMatchObject({
        granted: false,
        resource: "recovering",
      });

      await waitFor(
        "both runners to re-register their own leases",
        async () => {
          const ids = (await dispatch.snapshot()).leases.map((lease) => lease.id).sort();
          return JSON.stringify(ids) === JSON.stringify(leases.map((lease) => lease.id).sort());
        },
        10_000,
      );
      expect(lines.filter((line) => line.includes("re-registered it"))).toHaveLength(2);
      // Still waiting for any other task to re-register: no new task.
      expect(await dispatch.acquire("acte-ocr", { environment: "dev", holder: "dispatch@dev" }, { mode: "start-task" })).toMatchObject({
        granted: false,
        resource: "recovering",
      });
    } finally {
      const codes = await Promise.all(runners);
      watching = false;
      await watcher;
      expect(codes).toEqual([RUNNER_EXIT_CODES.ok, RUNNER_EXIT_CODES.ok]);
    }
    expect(snapshots.length).toBeGreaterThan(20);
    for (const snapshot of snapshots) expect(snapshot.allocated.vcpu).toBeLessThanOrEqual(snapshot.capacity.vcpu);
  }, 45_000);
});
