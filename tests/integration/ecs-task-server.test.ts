import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { AwsClient } from "aws4fetch";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import { startEcsTaskServer, type EcsTaskServer, type EcsTaskServerEvent } from "../../infra/local/ecs-task-server.ts";
import { freePort } from "../../infra/local/free-port.ts";
import {
  EcsClient,
  EcsConfigError,
  EcsError,
  parseEcsConfig,
  RUNNER_TASK_ENV,
  runnerTaskEnvironment,
  runnerTaskFor,
  type EcsConfig,
  type EcsTaskStatus,
} from "../../supabase/functions/_shared/ecs-client.ts";

/** The ECS client against the local task server, with real signed requests and real processes. */

const sleepyTask = fileURLToPath(new URL("../fixtures/sleepy-task.mjs", import.meta.url));
const STOP_TIMEOUT_MS = 600;

function ecsEnv(endpoint: string): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: "AKIDLOCALTEST",
    AWS_SECRET_ACCESS_KEY: "local-secret",
    AWS_REGION: "ca-central-1",
    AWS_ENDPOINT_URL_ECS: endpoint,
    ECS_CLUSTER: "local-runners",
    ECS_TASK_DEFINITION_REGISTRE: "sleepy-registre",
    ECS_TASK_DEFINITION_OCR: "sleepy-ocr",
    ECS_CONTAINER_NAME_REGISTRE: "registre",
    ECS_CONTAINER_NAME_OCR: "ocr",
    ECS_SUBNETS: "subnet-local-a, subnet-local-b",
  };
}

interface Harness {
  server: EcsTaskServer;
  client: EcsClient;
  config: EcsConfig;
  events: EcsTaskServerEvent[];
}

async function startHarness(): Promise<Harness> {
  const events: EcsTaskServerEvent[] = [];
  const server = await startEcsTaskServer({
    port: await freePort(),
    commandFor: (taskDefinition) =>
      taskDefinition.startsWith("sleepy-") ? { command: process.execPath, args: [sleepyTask] } : undefined,
    stopTimeoutMs: STOP_TIMEOUT_MS,
    onEvent: (event) => events.push(event),
  });
  const config = parseEcsConfig(ecsEnv(server.url));
  // No client retries: each test counts exactly the requests it makes.
  return { server, client: new EcsClient(config, { retries: 0 }), config, events };
}

/** Waits for the fixture's first line (printed once its signal handlers are set) and returns it. */
async function readyLine(harness: Harness, arn: string): Promise<{ pid: number; env: Record<string, string> }> {
  let ready: { pid: number; env: Record<string, string> } | undefined;
  await waitFor(`task ${arn} to print its ready line`, async () => {
    for (const event of harness.events) {
      if (event.type === "task-output" && event.arn === arn && event.line.startsWith("{")) {
        ready = JSON.parse(event.line) as { pid: number; env: Record<string, string> };
      }
    }
    return ready !== undefined;
  });
  if (ready === undefined) throw new Error("unreachable: waitFor returned without a ready line");
  return ready;
}

function outputOf(harness: Harness, arn: string): string[] {
  return harness.events.flatMap((event) => (event.type === "task-output" && event.arn === arn ? [event.line] : []));
}

async function statusOf(client: EcsClient, arn: string): Promise<EcsTaskStatus> {
  const { tasks } = await client.describeTasks([arn]);
  const task = tasks[0];
  if (task === undefined) throw new Error(`DescribeTasks did not return ${arn}`);
  return task;
}

async function waitUntilStopped(client: EcsClient, arn: string): Promise<EcsTaskStatus> {
  let last: EcsTaskStatus | undefined;
  await waitFor(`task ${arn} to stop`, async () => {
    last = await statusOf(client, arn);
    return last.lastStatus === "STOPPED";
  }, 10_000);
  if (last === undefined) throw new Error("unreachable: waitFor returned without a status");
  return last;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

function sleepyRun(harness: Harness, environment: Record<string, string>, clientToken: string = randomUUID()) {
  return harness.client.runTask({
    ...runnerTaskFor(harness.config, "index-ocr"),
    clientToken,
    environment: { ...runnerTaskEnvironment({ kind: "index-ocr", environment: "dev", ledgerLeaseId: clientToken }), ...environment },
    startedBy: "ecs-task-server-test",
  });
}

describe("ECS client ↔ local ECS task server", () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness();
  });

  afterAll(async () => {
    await harness.server.close();
  });

  it("RunTask starts a process of the kind's task definition with the requested environment, and only that", async () => {
    const leaseId = randomUUID();
    const arn = await sleepyRun(harness, { SLEEPY_MODE: "wait" }, leaseId);

    expect(arn).toMatch(/^arn:aws:ecs:ca-central-1:\d{12}:task\/local-runners\/[0-9a-f]{32}$/);
    const { env, pid } = await readyLine(harness, arn);
    expect(env[RUNNER_TASK_ENV.jobKind]).toBe("index-ocr");
    expect(env[RUNNER_TASK_ENV.environment]).toBe("dev");
    expect(env[RUNNER_TASK_ENV.ledgerLeaseId]).toBe(leaseId);
    // A container does not inherit its host's environment: nothing of the test process leaks in.
    expect(env.VITEST).toBeUndefined();
    expect(harness.server.tasks().find((task) => task.arn === arn)).toMatchObject({ taskDefinition: "sleepy-ocr", clientToken: leaseId, pid });

    await harness.client.stopTask(arn, "test finished");
    await waitUntilStopped(harness.client, arn);
  });

  it("the same clientToken twice starts one process and returns the same task", async () => {
    const leaseId = randomUUID();
    const first = await sleepyRun(harness, { SLEEPY_MODE: "wait" }, leaseId);
    const second = await sleepyRun(harness, { SLEEPY_MODE: "wait" }, leaseId);

    expect(second).toBe(first);
    await readyLine(harness, first);
    expect(harness.server.tasks().filter((task) => task.clientToken === leaseId)).toHaveLength(1);
    const started = harness.events.filter((event) => event.type === "task-started" && event.task.clientToken === leaseId);
    expect(started).toHaveLength(1);

    // ECS refuses a token reused for a different request rather than guessing which one was meant.
    const conflict = await sleepyRun(harness, { SLEEPY_MODE: "exit" }, leaseId).catch((error: unknown) => error);
    expect(conflict).toBeInstanceOf(EcsError);
    expect((conflict as EcsError).details.awsType).toBe("ConflictException");
    expect((conflict as EcsError).message).toContain("ConflictException");

    await harness.client.stopTask(first, "test finished");
    await waitUntilStopped(harness.client, first);
  });

  it("DescribeTasks reports RUNNING, then STOPPED with the container's exit code", async () => {
    const arn = await sleepyRun(harness, { SLEEPY_MODE: "wait", SLEEPY_EXIT_CODE: "3" });
    const { pid } = await readyLine(harness, arn);

    const running = await statusOf(harness.client, arn);
    expect(running.lastStatus).toBe("RUNNING");
    expect(running.containers[0]?.exitCode).toBeUndefined();

    process.kill(pid, "SIGUSR2"); // the fixture exits with SLEEPY_EXIT_CODE
    const stopped = await waitUntilStopped(harness.client, arn);
    expect(stopped.containers[0]?.exitCode).toBe(3);
    expect(stopped.stopCode).toBe("EssentialContainerExited");
    expect(processExists(pid)).toBe(false);

    const unknown = `arn:aws:ecs:ca-central-1:000000000000:task/local-runners/${"0".repeat(32)}`;
    const { tasks, failures } = await harness.client.describeTasks([arn, unknown]);
    expect(tasks.map((task) => task.taskArn)).toEqual([arn]);
    expect(failures).toEqual([{ arn: unknown, reason: "MISSING" }]);
  });

  it("StopTask sends SIGTERM: a runner that drains on it exits 0", async () => {
    const arn = await sleepyRun(harness, { SLEEPY_MODE: "wait", SLEEPY_EXIT_CODE: "9" });
    await readyLine(harness, arn);

    const stopping = await harness.client.stopTask(arn, "scale in");
    expect(stopping.desiredStatus).toBe("STOPPED");
    const stopped = await waitUntilStopped(harness.client, arn);

    expect(stopped.containers[0]?.exitCode).toBe(0);
    expect(stopped.stopCode).toBe("UserInitiated");
    expect(stopped.stoppedReason).toBe("scale in");
    expect(outputOf(harness, arn)).toContain("SIGTERM received, exiting");
  });

  it("StopTask sends SIGKILL after the stop timeout to a runner that ignores SIGTERM", async () => {
    const arn = await sleepyRun(harness, { SLEEPY_MODE: "ignore-sigterm" });
    const { pid } = await readyLine(harness, arn);

    const stopRequestedAt = Date.now();
    await harness.client.stopTask(arn, "too slow");
    const stopped = await waitUntilStopped(harness.client, arn);

    expect(outputOf(harness, arn)).toContain("SIGTERM received, ignoring it");
    expect(stopped.containers[0]?.exitCode).toBe(137); // 128 + SIGKILL, as Docker reports it
    const stoppedAt = harness.server.tasks().find((task) => task.arn === arn)?.stoppedAt ?? 0;
    // Timer granularity allows a few milliseconds early; the SIGKILL must not come at once.
    expect(stoppedAt - stopRequestedAt).toBeGreaterThanOrEqual(STOP_TIMEOUT_MS - 20);
    expect(processExists(pid)).toBe(false);
  });

  it("refuses a request without an AWS signature, and an unknown operation", async () => {
    const before = harness.server.tasks().length;
    const unsigned = await fetch(harness.server.url, {
      method: "POST",
      headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.RunTask" },
      body: JSON.stringify({ taskDefinition: "sleepy-ocr", clientToken: randomUUID() }),
    });
    expect(unsigned.status).toBe(403);
    expect(await unsigned.json()).toMatchObject({ __type: "MissingAuthenticationTokenException" });
    expect(harness.server.tasks()).toHaveLength(before);

    const aws = new AwsClient({ accessKeyId: "AKIDLOCALTEST", secretAccessKey: "local-secret", service: "ecs", region: "ca-central-1", retries: 0 });
    const unknown = await aws.fetch(harness.server.url, {
      method: "POST",
      headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.DeleteCluster" },
      body: "{}",
    });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ __type: "UnknownOperationException", message: expect.stringContaining("DeleteCluster") });
  });

  it("a refused RunTask surfaces as a typed error carrying ECS's reason, and starts nothing", async () => {
    const before = harness.server.tasks().length;
    harness.server.failNextRunTasks(1, "RESOURCE:FARGATE");

    const refused = await sleepyRun(harness, { SLEEPY_MODE: "exit" }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(EcsError);
    expect((refused as EcsError).failures).toEqual([{ reason: "RESOURCE:FARGATE" }]);
    expect((refused as EcsError).message).toContain("RESOURCE:FARGATE");
    expect(harness.server.tasks()).toHaveLength(before);

    const unknownDefinition = await harness.client
      .runTask({ taskDefinition: "no-such-family", clientToken: randomUUID(), containerName: "x", environment: {} })
      .catch((error: unknown) => error);
    expect(unknownDefinition).toBeInstanceOf(EcsError);
    expect((unknownDefinition as EcsError).details).toMatchObject({ httpStatus: 400, awsType: "ClientException" });
    expect((unknownDefinition as EcsError).message).toMatch(/ClientException: Unable to describe task definition/);

    // Only the one call failed: the next starts a task.
    const arn = await sleepyRun(harness, { SLEEPY_MODE: "exit", SLEEPY_EXIT_CODE: "0" });
    expect((await waitUntilStopped(harness.client, arn)).containers[0]?.exitCode).toBe(0);
  });
});

describe("local ECS task server close()", () => {
  it("stops every running task, even one that ignores SIGTERM, and the endpoint", async () => {
    const harness = await startHarness();
    const draining = await sleepyRun(harness, { SLEEPY_MODE: "wait" });
    const stubborn = await sleepyRun(harness, { SLEEPY_MODE: "ignore-sigterm" });
    const pids = [(await readyLine(harness, draining)).pid, (await readyLine(harness, stubborn)).pid];
    expect(pids.map(processExists)).toEqual([true, true]);

    await harness.server.close();

    expect(pids.map(processExists)).toEqual([false, false]);
    expect(harness.server.tasks().map((task) => [task.lastStatus, task.exitCode])).toEqual([
      ["STOPPED", 0],
      ["STOPPED", 137],
    ]);
    await expect(fetch(harness.server.url, { method: "POST" })).rejects.toThrow();
  });
});

describe("parseEcsConfig", () => {
  it("names every missing variable", () => {
    const env: Record<string, string | undefined> = { ...ecsEnv("http://127.0.0.1:1"), ECS_CLUSTER: undefined, AWS_REGION: undefined };
    const error = (() => {
      try {
        parseEcsConfig(env);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(EcsConfigError);
    expect((error as EcsConfigError).message).toContain("AWS_REGION is missing");
    expect((error as EcsConfigError).message).toContain("ECS_CLUSTER is missing");
  });

  it("defaults to the regional ECS endpoint, FARGATE, and maps both OCR kinds to the OCR task definition", () => {
    const { AWS_ENDPOINT_URL_ECS: _local, ...env } = ecsEnv("unused");
    const config = parseEcsConfig(env);
    expect(config.endpoint).toBe("https://ecs.ca-central-1.amazonaws.com");
    expect(config.placement).toEqual({ launchType: "FARGATE" });
    expect(config.subnets).toEqual(["subnet-local-a", "subnet-local-b"]);
    expect(runnerTaskFor(config, "registre")).toEqual({ taskDefinition: "sleepy-registre", containerName: "registre" });
    expect(runnerTaskFor(config, "index-ocr")).toEqual(runnerTaskFor(config, "acte-ocr"));
    expect(runnerTaskFor(config, "acte-ocr")).toEqual({ taskDefinition: "sleepy-ocr", containerName: "ocr" });
  });
});
