/**
 * Idle capacity comes back at once: a runner with nothing to claim reads the
 * kinds dispatch recorded as waiting for room and, when another kind waits,
 * hands its lease back within RUNNER_HAND_BACK_SECONDS instead of holding it
 * for the whole idle period; then it hints dispatch through
 * `queue.request_dispatch()` (the runner role may call it). With nothing else
 * waiting the idle period stays as configured. Real runner process, real
 * Postgres (as the runner role), real ledger behind the local Upstash endpoint.
 */
import { afterAll, afterEach, beforeAll, describe, expect, inject, test } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger, type Lease } from "../../supabase/functions/_shared/capacity-ledger.ts";
import type { JobKind } from "../../supabase/functions/_shared/job-kinds.ts";
import { UnmetDemandBoard } from "../../supabase/functions/_shared/unmet-demand.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";
import { indexJob, insertJob } from "../sql/queue-fixtures.ts";
import { createRunnerLogin, startLifecycleTestRunner, type LifecycleTestRunner, type RunnerLogin } from "./lifecycle-test-runner.ts";

const CAPACITY_ENV = { SERVER_MAX_CPU: "100", SERVER_MAX_RAM: "100" } as const;
const IDLE_EXIT_SECONDS = 4;

let database: FreshDatabase;
let login: RunnerLogin;
let redisKeyPrefix: string;
const started: LifecycleTestRunner[] = [];

beforeAll(async () => {
  database = await createFreshDatabase();
  login = await createRunnerLogin(database);
  redisKeyPrefix = `${randomKeyPrefix("runner-hand-back")}:`;
});

afterEach(async () => {
  for (const runner of started.splice(0)) await runner.process.stop(1_000);
  await database.sql`delete from extraction_queue`;
  await unmetBoard().record("dev", []);
});

afterAll(async () => {
  await login?.drop();
  await database?.drop();
});

const ledger = () => new CapacityLedger(upstashClient(), parseCapacityConfig(CAPACITY_ENV), { keyPrefix: `${redisKeyPrefix}ledger` });
const unmetBoard = () => new UnmetDemandBoard(upstashClient(), { keyPrefix: `${redisKeyPrefix}dispatch:unmet` });

async function acquireLease(kind: JobKind): Promise<Lease> {
  const grant = await ledger().acquire(kind, { environment: "dev", holder: "dispatch@dev" });
  if (!grant.granted) throw new Error(`test lease refused: ${grant.reason}`);
  return grant.lease;
}

function startRunner(kind: JobKind, lease: Lease): LifecycleTestRunner {
  const runner = startLifecycleTestRunner(`hand-back-${kind}`, {
    JOB_KIND: kind,
    ENVIRONMENT: "dev",
    LEDGER_LEASE_ID: lease.id,
    DATABASE_URL: login.url,
    UPSTASH_REDIS_REST_URL: inject("upstashUrl"),
    UPSTASH_REDIS_REST_TOKEN: inject("upstashToken"),
    REDIS_KEY_PREFIX: redisKeyPrefix,
    RUNNER_IDLE_EXIT_SECONDS: String(IDLE_EXIT_SECONDS),
    RUNNER_HAND_BACK_SECONDS: "0.5",
    RUNNER_POLL_SECONDS: "0.2",
    ...CAPACITY_ENV,
  });
  started.push(runner);
  return runner;
}

const lines = (runner: LifecycleTestRunner, msg: string) => runner.logs().filter((line) => line.msg === msg);

describe("idle capacity back at once", () => {
  test("an idle acte runner hands its lease back within a second while registre waits for room, then hints dispatch", async () => {
    // A registre row is claimable, so the hint has something to plan; the acte runner cannot claim it.
    await insertJob(database.sql, indexJob("1 234 567"));
    await unmetBoard().record("dev", ["registre"]);
    const hints: string[] = [];
    const listening = await database.sql.listen("edge_function_calls", (payload) => hints.push(payload));
    try {
      const lease = await acquireLease("acte-ocr");
      const runner = startRunner("acte-ocr", lease);
      expect(await runner.exited).toBe(0);

      const [handBack] = lines(runner, "nothing to claim while other work waits for room; handing the capacity back");
      expect(handBack, runner.output.join("\n")).toBeDefined();
      expect(Number(handBack?.["idle_ms"])).toBeLessThan(IDLE_EXIT_SECONDS * 1000);
      expect(handBack?.["waiting_for_room"]).toEqual(["dev/registre"]);
      expect((await ledger().snapshot()).leases.map((live) => live.id)).not.toContain(lease.id);

      expect(lines(runner, "capacity handed back; dispatch hinted")).toMatchObject([{ hint_sent: true }]);
      await expect.poll(() => hints.length, { timeout: 5_000 }).toBeGreaterThan(0);
      expect(JSON.parse(hints[0] ?? "{}")).toEqual({ function: "dispatch", body: { reason: "capacity-returned", source: "runner", jobs: 1 } });
    } finally {
      await listening.unlisten();
    }
  });

  test("with only its own kind recorded, or nothing, the idle period stays as configured", async () => {
    // Its own kind waiting for room is stale news: had rows been claimable, it would have claimed them.
    await unmetBoard().record("dev", ["acte-ocr"]);
    const lease = await acquireLease("acte-ocr");
    const runner = startRunner("acte-ocr", lease);
    expect(await runner.exited).toBe(0);

    expect(lines(runner, "nothing to claim while other work waits for room; handing the capacity back")).toEqual([]);
    const [idle] = lines(runner, "nothing to claim; exiting idle");
    expect(Number(idle?.["idle_ms"])).toBeGreaterThanOrEqual(IDLE_EXIT_SECONDS * 1000);
    // Nothing claimable: no hint is sent.
    expect(lines(runner, "capacity handed back; dispatch hinted")).toMatchObject([{ hint_sent: false }]);
  });

  test("another environment's kind waiting for room counts too: capacity is one budget", async () => {
    await unmetBoard().record("prod", ["acte-ocr"]);
    try {
      const lease = await acquireLease("acte-ocr");
      const runner = startRunner("acte-ocr", lease);
      expect(await runner.exited).toBe(0);
      expect(lines(runner, "nothing to claim while other work waits for room; handing the capacity back")).toMatchObject([{ waiting_for_room: ["prod/acte-ocr"] }]);
    } finally {
      await unmetBoard().record("prod", []);
    }
  });
});
