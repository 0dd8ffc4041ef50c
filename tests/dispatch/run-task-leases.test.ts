import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import { startEcsTaskServer, type EcsTaskServer } from "../../infra/local/ecs-task-server.ts";
import { freePort } from "../../infra/local/free-port.ts";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger, type Lease } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { EcsClient, parseEcsConfig, type EcsConfig } from "../../supabase/functions/_shared/ecs-client.ts";
import { startRunnerTask } from "../../supabase/functions/_shared/start-runner-task.ts";
import { returnLeasesOfStoppedTasks } from "../../supabase/functions/_shared/stopped-task-leases.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

// RunTask and the capacity ledger on real parts (the local ECS endpoint with
// its failure injection, Redis behind the Upstash endpoint): a lease is
// released only when ECS certainly started nothing, a retried RunTask never
// starts a second task, and a task stopped before its runner registered
// hands its lease back on the next dispatch.

const sleepyTask = fileURLToPath(new URL("../fixtures/sleepy-task.mjs", import.meta.url));

let server: EcsTaskServer;
let ecsConfig: EcsConfig;
/** What the started process does: wait (holds its lease, never renews) or exit at once (stops while "provisioning"). */
let sleepyMode: "wait" | "exit" = "wait";

beforeAll(async () => {
  server = await startEcsTaskServer({
    port: await freePort(),
    commandFor: () => ({ command: "/bin/sh", args: ["-c", `SLEEPY_MODE=${sleepyMode} SLEEPY_EXIT_CODE=1 exec "${process.execPath}" "${sleepyTask}"`] }),
    stopTimeoutMs: 500,
  });
  ecsConfig = parseEcsConfig({
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
});

afterAll(async () => {
  await server?.close();
});

let startedBefore = 0;
beforeEach(() => {
  sleepyMode = "wait";
  startedBefore = server.tasks().length;
});
const startedHere = () => server.tasks().slice(startedBefore);

function harness(options: { timeoutMs?: number } = {}) {
  const ledger = new CapacityLedger(upstashClient(), parseCapacityConfig({}), { keyPrefix: randomKeyPrefix("run-task") });
  // No client-level retries: the attempts counted are dispatch's own, each with the same clientToken.
  const ecs = new EcsClient(ecsConfig, { retries: 0, timeoutMs: options.timeoutMs ?? 5_000 });
  const logs: Record<string, unknown>[] = [];
  const deps = { config: { ecs: ecsConfig, environment: "dev" as const }, ledger, ecs, log: (entry: Record<string, unknown>) => void logs.push(entry), retryDelayMs: () => 50 };
  return { ledger, ecs, logs, deps };
}

async function lease(ledger: CapacityLedger): Promise<Lease> {
  const grant = await ledger.acquire("registre", { environment: "dev", holder: "dispatch@dev" }, { mode: "unchecked" });
  if (!grant.granted) throw new Error(grant.reason);
  return grant.lease;
}

describe("RunTask and its lease", () => {
  it("RunTask timing out once then succeeding starts one task and holds one lease", async () => {
    const { ledger, deps, logs } = harness({ timeoutMs: 1_500 });
    const held = await lease(ledger);
    // ECS carries out the first call but its answer comes after the client gave up.
    server.delayNextRunTaskReplies(1, 4_000);
    const start = await startRunnerTask(deps, held);

    expect(start).toMatchObject({ status: "started" });
    expect(startedHere()).toHaveLength(1);
    expect(startedHere()[0]?.clientToken).toBe(held.id);
    expect(logs.some((entry) => String(entry.msg).includes("outcome unknown; retrying with the same clientToken"))).toBe(true);
    const snapshot = await ledger.snapshot();
    expect(snapshot.leases).toHaveLength(1);
    expect(snapshot.leases[0]).toMatchObject({ id: held.id, taskArn: startedHere()[0]?.arn, registered: false });
  });

  it("keeps the lease when the outcome stays unknown (5xx on every attempt)", async () => {
    const { ledger, deps } = harness();
    const held = await lease(ledger);
    server.failNextRunTaskRequests(3, { status: 500, awsType: "ServerException" });
    const start = await startRunnerTask(deps, held);
    expect(start).toMatchObject({ status: "unknown", error: expect.stringMatching(/HTTP 500 ServerException/) });
    expect((await ledger.snapshot()).leases.map((live) => live.id)).toEqual([held.id]);
    expect(startedHere()).toHaveLength(0);
  });

  it("keeps the lease when a retry is refused after an unknown outcome (the first call may have started the task)", async () => {
    const { ledger, deps, logs } = harness();
    const held = await lease(ledger);
    server.failNextRunTaskRequests(1, { status: 500, awsType: "ServerException" });
    // Between the attempts: ECS throttles the retry, a definite refusal of that call only.
    const start = await startRunnerTask(
      {
        ...deps,
        retryDelayMs: (retry) => {
          if (retry === 1) server.failNextRunTaskRequests(1, { status: 400, awsType: "ThrottlingException", message: "Rate exceeded" });
          return 50;
        },
      },
      held,
    );
    expect(start).toMatchObject({ status: "unknown", error: expect.stringMatching(/ThrottlingException/) });
    expect((await ledger.snapshot()).leases.map((live) => live.id)).toEqual([held.id]);
    expect(logs.some((entry) => String(entry["msg"]).startsWith("RunTask retry refused after an unknown outcome; lease kept"))).toBe(true);
    server.failNextRunTaskRequests(0, { status: 500, awsType: "ServerException" });
  });

  it.each([
    { refusal: "failures[]", inject: () => server.failNextRunTasks(1, "RESOURCE:MEMORY"), error: /RESOURCE:MEMORY/ },
    { refusal: "a 4xx", inject: () => server.failNextRunTaskRequests(1, { status: 400, awsType: "ClientException" }), error: /HTTP 400 ClientException/ },
  ])("releases the lease on a definite refusal ($refusal), without retrying", async ({ inject, error }) => {
    const { ledger, deps } = harness();
    const held = await lease(ledger);
    inject();
    const start = await startRunnerTask(deps, held);
    expect(start).toMatchObject({ status: "refused", error: expect.stringMatching(error) });
    expect((await ledger.snapshot()).leases).toEqual([]);
    expect(startedHere()).toHaveLength(0);
    server.failNextRunTasks(0, "");
  });
});

describe("a task stopped before its runner registered", () => {
  it("returns its lease on the next dispatch; a registered runner's lease stays", async () => {
    const { ledger, ecs, deps } = harness();
    sleepyMode = "exit";
    const doomed = await lease(ledger);
    expect(await startRunnerTask(deps, doomed)).toMatchObject({ status: "started" });
    sleepyMode = "wait";
    const booting = await lease(ledger);
    expect(await startRunnerTask(deps, booting)).toMatchObject({ status: "started" });
    await waitFor("the doomed task to stop", async () => startedHere()[0]?.lastStatus === "STOPPED", 10_000);
    await waitFor("the booting task to run", async () => startedHere()[1]?.lastStatus === "RUNNING", 10_000);

    // Without the check, the stopped task's lease would hold 3 vCPU for a whole TTL.
    expect((await ledger.snapshot()).leases).toHaveLength(2);
    const returned = await returnLeasesOfStoppedTasks({ ledger, ecs, environment: "dev", log: deps.log });
    expect(returned).toEqual([{ leaseId: doomed.id, taskArn: startedHere()[0]?.arn, reason: expect.stringMatching(/EssentialContainerExited/) }]);
    expect((await ledger.snapshot()).leases.map((live) => live.id)).toEqual([booting.id]);

    // Once its runner renewed (registered), even a stopped task is left to its runner's own release.
    expect(await ledger.renew(booting.id)).toBe(true);
    const arn = startedHere()[1]?.arn ?? "";
    await ecs.stopTask(arn, "test");
    await waitFor("the task to stop", async () => startedHere()[1]?.lastStatus === "STOPPED", 10_000);
    expect(await returnLeasesOfStoppedTasks({ ledger, ecs, environment: "dev", log: deps.log })).toEqual([]);
    // A killed runner (SIGKILL, OOM) never releases: once it has missed its renewals for half a TTL, its stopped task's lease is returned.
    const ttlMs = parseCapacityConfig({}).leaseTtlMs;
    expect(await returnLeasesOfStoppedTasks({ ledger, ecs, environment: "dev", leaseTtlMs: ttlMs, log: deps.log })).toEqual([]);
    const silentFor = (ms: number) => returnLeasesOfStoppedTasks({ ledger, ecs, environment: "dev", leaseTtlMs: ms, log: deps.log });
    // As if the TTL were short enough that half of it has passed since the renewal.
    expect(await silentFor(ttlMs * 3)).toEqual([{ leaseId: booting.id, taskArn: arn, reason: expect.any(String) }]);
    expect((await ledger.snapshot()).leases).toEqual([]);
    // A stopped task's lease can no longer be re-registered once returned.
    expect(await ledger.renewOrReregister(doomed.id, "registre", { environment: "dev", holder: "runner:late" })).toMatchObject({ held: false });
  });
});
