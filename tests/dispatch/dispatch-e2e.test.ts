import { signHint } from "../../supabase/functions/_shared/hint-signature.ts";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { Redis as IoRedis } from "ioredis";
import postgres from "postgres";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { LocalTaskSnapshot } from "../../infra/local/ecs-task-server.ts";
import { waitFor } from "../../infra/local/child-process.ts";
import { EDGE_FUNCTION_CALLS_CHANNEL } from "../../infra/local/function-hint-bridge.ts";
import { PROJECT_ROOT } from "../../infra/local/paths.ts";
import { startRedisServer, type RedisServer } from "../../infra/local/redis-server.ts";
import type { LocalStack } from "../../infra/local/stack.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";

// The whole dispatch path on the local stack: a row change in Postgres →
// NOTIFY → bridge → the Deno dispatch function → Upstash ledger → the local
// ECS endpoint. Tasks run a process that only waits, so they hold their
// ledger lease and claim nothing: what is measured is what dispatch starts.
// 32 vCPU less the 20 % reserve is 25.6: room for 8 registre tasks of 3.
// One document per registre task: these tests count tasks per row (the sleepy tasks claim nothing);
// the plan's slots arithmetic has its own tests (dispatch-plan.test.ts).
const BUDGET = { SERVER_MAX_CPU: "32", SERVER_MAX_RAM: "64", REGISTRE_CONTEXTS: "1" };
const REGISTRE_TASKS_THAT_FIT = 8;

describe("dispatch on the local stack", () => {
  let stack: LocalStack;
  let sql: postgres.Sql;
  let restartedRedis: RedisServer | undefined;

  // Hints: every edge function call the database sends (heard on the same
  // channel as the bridge), and how many the bridge has finished forwarding.
  const heard: string[] = [];
  let bridgeAnswered = 0;
  let bridgeAnsweredBeforeListening = 0;

  beforeAll(async () => {
    stack = await startThrowawayStack("dispatch-e2e", {
      budgetEnv: BUDGET,
      taskCommand: () => ({ command: process.execPath, args: [join(PROJECT_ROOT, "tests", "fixtures", "sleepy-task.mjs")] }),
      log: (entry) => {
        if (BRIDGE_ANSWERS.has(entry.msg)) bridgeAnswered += 1;
      },
    });
    sql = postgres(stack.urls.database, { max: 4, onnotice: () => {} });
    await sql.listen(EDGE_FUNCTION_CALLS_CHANNEL, (payload) => heard.push(payload));
    // (A hint the bridge got before this listener existed would count as answered early; the fresh stack has sent none.)
    bridgeAnsweredBeforeListening = bridgeAnswered;
  }, 120_000);

  /**
   * Waits until every hint the database has sent so far has been forwarded
   * and answered, so dispatch has finished whatever they started (the
   * condition a fixed sleep used to guess at). A marker notification sent
   * now arrives after every earlier one (Postgres delivers them in commit
   * order, to the bridge as to us); once the bridge has answered as many
   * calls as were heard up to the marker, none is left in flight.
   */
  async function hintsSettled(): Promise<void> {
    const marker = `quiescence-marker-${randomUUID()}`;
    await sql`select pg_notify(${EDGE_FUNCTION_CALLS_CHANNEL}, ${JSON.stringify({ function: marker, body: {} })})`;
    await waitFor(
      "every hint sent so far to be answered",
      async () => {
        const upToMarker = heard.findIndex((payload) => payload.includes(marker)) + 1;
        return upToMarker > 0 && bridgeAnswered - bridgeAnsweredBeforeListening >= upToMarker;
      },
      20_000,
    );
  }

  afterAll(async () => {
    await sql?.end();
    await stack?.stop();
    await restartedRedis?.stop();
  });

  beforeEach(async () => {
    // Quiet first: hints of the previous test may still be in flight.
    await hintsSettled();
    for (const task of running()) if (task.pid) process.kill(task.pid, "SIGTERM");
    await waitFor("every task stopped", async () => running().length === 0, 20_000);
    await sql`delete from extraction_queue`;
    const redis = new IoRedis(stack.urls.redis);
    await redis.flushall();
    redis.disconnect();
    // Every task is stopped, so the emptied ledger may admit at once (as the stack does at start).
    await ledger().setLimits("if-missing");
    startedBefore = stack.ecs.tasks().length;
  });

  let startedBefore = 0;
  const started = (): LocalTaskSnapshot[] => stack.ecs.tasks().slice(startedBefore);
  const running = (): LocalTaskSnapshot[] => stack.ecs.tasks().filter((task) => task.lastStatus !== "STOPPED");

  /** Signed with `secret` as the database signs a hint (hint-signature.ts); `null` sends no signature at all. */
  const callDispatch = async (secret: string | null = stack.secrets.dispatchSecret, signedAtSeconds = Date.now() / 1000) => {
    const body = JSON.stringify({ reason: "test" });
    return fetch(`${stack.urls.functions}/functions/v1/dispatch`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(secret === null ? {} : await signHint(secret, signedAtSeconds, body)) },
      body,
    });
  };

  const insertActes = (count: number) =>
    sql`insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type)
        select 'acte', (1000000 + n)::text, 'Montréal', 'Acte' from generate_series(1, ${count}) as n`;

  it("starts exactly one registre task for one inserted row, in the right environment", async () => {
    await insertActes(1);
    await waitFor("a task to start", async () => started().length >= 1, 20_000);
    // A second dispatch sees the booting task and starts nothing more.
    expect((await callDispatch()).status).toBe(200);
    await hintsSettled();
    expect(started()).toHaveLength(1);
    const [task] = started();
    expect(task?.taskDefinition).toBe("registre-runner");
    expect(task?.environment).toMatchObject({ JOB_KIND: "registre", ENVIRONMENT: "dev" });
    expect(task?.clientToken).toBe(task?.environment["LEDGER_LEASE_ID"]);
  });

  it("a row inserted soon after another hint is dispatched at once, not left to the tick", async () => {
    // The tick off, and a throttle gap far longer than the test: only a hint that is not suppressed can start the second task.
    await sql`update cron.job set active = false where jobname = 'dispatch-tick'`;
    await sql`update private.dispatch_hint_throttle set min_insert_interval = interval '1 hour', min_interval = interval '1 hour'`;
    try {
      const insertOne = (n: number) =>
        sql`insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type)
            values ('acte', ${String(2000000 + n)}, 'Montréal', 'Acte')`;
      await insertOne(1);
      await waitFor("the first row's task", async () => started().length >= 1, 15_000);
      // That hint's dispatch has read the backlog: nothing is in flight for this row to fold into.
      await insertOne(2);
      await waitFor("the second row's task", async () => started().length >= 2, 15_000);
      // Several rows while one hint is in flight fold into it and are all seen by its dispatch.
      await Promise.all([3, 4, 5].map(insertOne));
      await waitFor("a task for every row", async () => started().length >= 5, 15_000);
      await hintsSettled();
      expect(started()).toHaveLength(5);
    } finally {
      await sql`update private.dispatch_hint_throttle set min_insert_interval = interval '250 milliseconds', min_interval = interval '1 second'`;
      await sql`update cron.job set active = true where jobname = 'dispatch-tick'`;
    }
  });

  it("100 rows inserted at once start no more tasks than the budget allows", async () => {
    await insertActes(100);
    await waitFor("the budget to fill", async () => started().length >= REGISTRE_TASKS_THAT_FIT, 20_000);
    await hintsSettled();
    const response = await callDispatch();
    const body = (await response.json()) as { started: unknown[]; plan: { held: string[] } };
    expect(body.started).toEqual([]);
    expect(body.plan.held.join("\n")).toMatch(/registre: \d+ more wanted, no room/);
    await hintsSettled();
    expect(started()).toHaveLength(REGISTRE_TASKS_THAT_FIT);
  });

  it("concurrent dispatch calls start no extra task", async () => {
    await insertActes(3);
    const responses = await Promise.all(Array.from({ length: 5 }, () => callDispatch()));
    expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
    await hintsSettled();
    expect(started()).toHaveLength(3);
  });

  it("releases the lease when RunTask fails", async () => {
    stack.ecs.failNextRunTasks(1_000, "RESOURCE:MEMORY");
    await insertActes(1);
    // The insert's hint dispatches first; a call that finds its lock taken only leaves a mark, so ask once it is done.
    await hintsSettled();
    const response = await callDispatch();
    const body = (await response.json()) as { started: unknown[]; failed: { kind: string; error: string }[] };
    expect(body.started).toEqual([]);
    expect(body.failed).toEqual([{ kind: "registre", error: expect.stringMatching(/RESOURCE:MEMORY/) }]);
    await hintsSettled();
    expect(await ledgerLeases()).toBe(0);
    expect(started()).toHaveLength(0);

    stack.ecs.failNextRunTasks(0, "");
    await callDispatch();
    await waitFor("the task to start once RunTask works", async () => started().length === 1, 20_000);
    expect(await ledgerLeases()).toBe(1);
  });

  it("answers 503 and starts nothing while Redis is down, then the next tick dispatches the waiting rows", async () => {
    await stack.redis.stop();
    await insertActes(2);
    const response = await callDispatch();
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: string }).error).toMatch(/upstash unreachable/);
    await hintsSettled();
    expect(started()).toHaveLength(0);
    const [waiting] = await sql<{ count: number }[]>`select count(*)::int as count from extraction_queue where status_id = 1`;
    expect(waiting?.count).toBe(2);

    restartedRedis = await startRedisServer({ port: stack.redis.port });
    const upstash = new Redis({ url: stack.urls.upstash, token: stack.secrets.upstashToken, retry: false });
    await waitFor("the Upstash endpoint to reconnect", async () => upstash.ping().then(() => true, () => false), 20_000);
    // The restarted Redis is empty; no task runs, so the ledger need not wait out a lease TTL for runners to re-register.
    await ledger().setLimits("if-missing");
    const [tick] = await sql<{ command: string }[]>`select command from cron.job where jobname = 'dispatch-tick'`;
    await sql.unsafe(tick?.command ?? "select 'no dispatch-tick job'::int");
    await waitFor("the tick to start both tasks", async () => started().length === 2, 20_000);
  });

  it("rejects a missing, wrong or stale signature, and the secret itself as a bearer token, and starts nothing", async () => {
    const cases: [Promise<Response>, string][] = [
      [callDispatch(null), "missing or malformed dispatch signature"],
      [callDispatch("wrong-secret-of-the-right-shape-0123456789"), "wrong dispatch signature"],
      [callDispatch(`${stack.secrets.dispatchSecret}x`), "wrong dispatch signature"],
      // A signed request read from pg_net's queue, replayed ten minutes later.
      [callDispatch(stack.secrets.dispatchSecret, Date.now() / 1000 - 600), "dispatch signature expired"],
      [
        fetch(`${stack.urls.functions}/functions/v1/dispatch`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${stack.secrets.dispatchSecret}` },
          body: "{}",
        }),
        "missing or malformed dispatch signature",
      ],
    ];
    for (const [call, error] of cases) {
      const response = await call;
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error });
    }
    expect(await ledgerLeases()).toBe(0);
  });

  // Last: it stops the cluster for good.
  it("answers 503 and starts nothing while Postgres is down", async () => {
    await sql.end();
    await stack.postgres.stop();
    const response = await callDispatch();
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: string }).error).toMatch(/postgres unreachable/);
    // No hint can be in flight: beforeEach waited for the last one, and a stopped database sends none.
    expect(started()).toHaveLength(0);
    expect(await ledgerLeases()).toBe(0);
  });

  /** The ledger dispatch uses (same budget, same keys). */
  function ledger(): CapacityLedger {
    return new CapacityLedger(new Redis({ url: stack.urls.upstash, token: stack.secrets.upstashToken }), parseCapacityConfig(BUDGET));
  }

  async function ledgerLeases(): Promise<number> {
    return (await ledger().snapshot()).leases.length;
  }
});

/** What the local pg_net stand-in logs once it is done with one call (see function-hint-bridge.ts). */
const BRIDGE_ANSWERS: ReadonlySet<string> = new Set(["forwarded edge function call", "edge function call failed", "ignored a malformed edge function call"]);
