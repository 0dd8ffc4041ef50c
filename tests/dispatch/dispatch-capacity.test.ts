import { fileURLToPath } from "node:url";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import { startEcsTaskServer, type EcsTaskServer } from "../../infra/local/ecs-task-server.ts";
import { freePort } from "../../infra/local/free-port.ts";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { RegistryCooldown } from "../../supabase/functions/_shared/registry-cooldown.ts";
import { dispatch, type DispatchOutcome } from "../../supabase/functions/_shared/dispatch.ts";
import { parseDispatchConfig } from "../../supabase/functions/_shared/dispatch-config.ts";
import { EcsClient } from "../../supabase/functions/_shared/ecs-client.ts";
import { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { redisKeyPrefixes } from "../../supabase/functions/_shared/redis-keys.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { randomKeyPrefix } from "../helpers/upstash-client.ts";

// The whole dispatch function (the code the edge function runs) in this
// process, on real Postgres, Redis behind the Upstash endpoint and the local
// ECS endpoint: a RunTask that times out once starts one task and holds one
// lease, and two environments configured with different limits cannot both
// commit the shared budget.

const sleepyTask = fileURLToPath(new URL("../fixtures/sleepy-task.mjs", import.meta.url));

let database: FreshDatabase;
let server: EcsTaskServer;
let redisKeyPrefix: string;
/** What a started task does: wait (a booting runner), or exit at once (ECS stopped it before its runner registered). */
let taskMode: "wait" | "exit" = "wait";

beforeAll(async () => {
  database = await createFreshDatabase();
  server = await startEcsTaskServer({
    port: await freePort(),
    commandFor: () => ({ command: "/bin/sh", args: ["-c", `SLEEPY_MODE=${taskMode} SLEEPY_EXIT_CODE=1 exec "${process.execPath}" "${sleepyTask}"`] }),
    stopTimeoutMs: 500,
  });
});

afterAll(async () => {
  await server?.close();
  await database?.drop();
});

beforeEach(async () => {
  redisKeyPrefix = `${randomKeyPrefix("dispatch-capacity")}:`;
  taskMode = "wait";
  await database.sql`delete from extraction_queue`;
});

function dispatcherFor(environment: "dev" | "prod", budget: Record<string, string>, ecsTimeoutMs = 5_000) {
  const config = parseDispatchConfig({
    ...budget,
    DISPATCH_SECRET: "s".repeat(32),
    SUPABASE_DB_URL: database.url,
    UPSTASH_REDIS_REST_URL: inject("upstashUrl"),
    UPSTASH_REDIS_REST_TOKEN: inject("upstashToken"),
    REDIS_KEY_PREFIX: redisKeyPrefix,
    ENVIRONMENT: environment,
    AWS_ACCESS_KEY_ID: "AKIDLOCALTEST",
    AWS_SECRET_ACCESS_KEY: "local-secret",
    AWS_REGION: "ca-central-1",
    AWS_ENDPOINT_URL_ECS: server.url,
    ECS_CLUSTER: "local-runners",
    ECS_TASK_DEFINITION_REGISTRE: "registre-runner",
    ECS_TASK_DEFINITION_OCR: "ocr-runner",
    ECS_CONTAINER_NAME_REGISTRE: "registre",
    ECS_CONTAINER_NAME_OCR: "ocr",
    ECS_SUBNETS: "subnet-local",
  });
  const redis = new Redis({ url: config.upstash.url, token: config.upstash.token, enableTelemetry: false });
  const keys = redisKeyPrefixes(config.redisKeyPrefix);
  const ledger = new CapacityLedger(redis, config.capacity, { keyPrefix: keys.ledger });
  const deps = {
    config,
    sql: database.sql,
    redis,
    ledger,
    gemini: new GeminiRateBudget(redis, config.capacity.gemini, { keyPrefix: keys.gemini }),
    ecs: new EcsClient(config.ecs, { retries: 0, timeoutMs: ecsTimeoutMs }),
    log: () => {},
  };
  return { ledger, run: async () => (await dispatch(deps, "test")) as DispatchOutcome };
}

const insertActes = (count: number) =>
  database.sql`insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type)
      select 'acte', (2000000 + n)::text, 'Montréal', 'Acte' from generate_series(1, ${count}) as n`;

describe("dispatch and the shared budget", () => {
  it("RunTask timing out once then succeeding starts one task and holds one lease", async () => {
    const before = server.tasks().length;
    const prod = dispatcherFor("prod", {}, 1_500);
    await prod.ledger.setLimits("if-missing");
    await insertActes(1);
    server.delayNextRunTaskReplies(1, 4_000);
    const outcome = await prod.run();
    expect(outcome.started).toHaveLength(1);
    expect(outcome.unknown).toEqual([]);
    expect(server.tasks().slice(before)).toHaveLength(1);
    const leases = (await prod.ledger.snapshot()).leases;
    expect(leases.map((lease) => lease.id)).toEqual([outcome.started[0]?.leaseId]);
  });

  it("one environment's registry cooldown pauses its own registre dispatch only", async () => {
    const before = server.tasks().length;
    const prod = dispatcherFor("prod", {});
    const dev = dispatcherFor("dev", {});
    await prod.ledger.setLimits("if-missing");
    await insertActes(1);
    // dev's runners could not reach the registry (its NAT, its route): dev pauses.
    await new RegistryCooldown(new Redis({ url: inject("upstashUrl"), token: inject("upstashToken"), enableTelemetry: false }), redisKeyPrefix, "dev").pause(60_000, "registry unreachable from dev");
    expect((await dev.run()).started).toEqual([]);
    const prodOutcome = await prod.run();
    expect(prodOutcome.started.map((start) => start.kind)).toEqual(["registre"]);
    expect(server.tasks().slice(before)).toHaveLength(1);
  });

  it("an environment whose lease TTL and weights differ from the stored shared settings starts nothing, naming each", async () => {
    const before = server.tasks().length;
    const prod = dispatcherFor("prod", {});
    const dev = dispatcherFor("dev", { LEDGER_LEASE_TTL_SECONDS: "900", DISPATCH_WEIGHTS: "prod=1,staging=1,dev=5" });
    await prod.ledger.setLimits("if-missing");
    expect((await prod.run()).refused).toEqual([]);
    await insertActes(1);
    const outcome = await dev.run();
    expect(outcome.started).toEqual([]);
    expect(outcome.refused).toHaveLength(1);
    expect(outcome.refused[0]?.reason).toMatch(/shared settings differ/);
    expect(outcome.refused[0]?.reason).toMatch(/DISPATCH_WEIGHTS: dev=5,staging=1,prod=1 here, dev=1,staging=2,prod=3 stored/);
    expect(outcome.refused[0]?.reason).toMatch(/LEDGER_LEASE_TTL_SECONDS: 900 here, 300 stored/);
    expect(server.tasks().slice(before)).toHaveLength(0);
    // The same settings as stored: it starts.
    expect((await prod.run()).started.map((start) => start.kind)).toEqual(["registre"]);
  });

  it("two environments with different limits: the second is refused, naming the difference, and starts nothing", async () => {
    const before = server.tasks().length;
    // prod's budget: 6.4 vCPU, room for 2 registre. dev believes in 12.8.
    const prod = dispatcherFor("prod", { SERVER_MAX_CPU: "8" });
    const dev = dispatcherFor("dev", { SERVER_MAX_CPU: "16" });
    await prod.ledger.setLimits("if-missing");
    await insertActes(6);

    const first = await prod.run();
    expect(first.started).toHaveLength(2);
    const second = await dev.run();
    expect(second.started).toEqual([]);
    expect(second.refused).toEqual([
      { kind: "registre", reason: expect.stringContaining("vCPU after the reserve (SERVER_MAX_CPU, SERVER_RESERVE_CPU_PERCENT): 12.8 here, 6.4 in Upstash") },
    ]);
    const snapshot = await prod.ledger.snapshot();
    expect(snapshot.allocated.vcpu).toBeLessThanOrEqual(snapshot.capacity.vcpu);
    expect(snapshot.leases).toHaveLength(2);
    expect(server.tasks().slice(before)).toHaveLength(2);
  });

  it("a task stopped before its runner registered frees its lease on the next dispatch, which starts another", async () => {
    const before = server.tasks().length;
    // 4 vCPU after the reserve: room for one registre only.
    const prod = dispatcherFor("prod", { SERVER_MAX_CPU: "5", SERVER_RESERVE_CPU_PERCENT: "20" });
    await prod.ledger.setLimits("if-missing");
    await insertActes(2);
    taskMode = "exit";
    const first = await prod.run();
    expect(first.started).toHaveLength(1);
    await waitFor("the task to stop", async () => server.tasks()[before]?.lastStatus === "STOPPED", 10_000);
    taskMode = "wait";

    const second = await prod.run();
    expect(second.returned).toEqual([{ leaseId: first.started[0]?.leaseId, taskArn: first.started[0]?.taskArn, reason: expect.stringMatching(/EssentialContainerExited/) }]);
    // The room came back at once (not after a lease TTL): the same dispatch filled it.
    expect(second.started).toHaveLength(1);
    expect((await prod.ledger.snapshot()).leases.map((lease) => lease.id)).toEqual([second.started[0]?.leaseId]);
  });

  it("after the ledger lost its data, dispatch starts nothing until a lease TTL has passed", async () => {
    const before = server.tasks().length;
    const prod = dispatcherFor("prod", { LEDGER_LEASE_TTL_SECONDS: "2" });
    await insertActes(1);
    // No limits stored: a fresh or flushed ledger.
    const waiting = await prod.run();
    expect(waiting.started).toEqual([]);
    expect(waiting.refused).toEqual([{ kind: "registre", reason: expect.stringMatching(/lost its data/) }]);
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    const after = await prod.run();
    expect(after.started).toHaveLength(1);
    expect(server.tasks().slice(before)).toHaveLength(1);
  });
});
