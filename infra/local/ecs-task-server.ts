/**
 * The local stand-in for Amazon ECS: an HTTP endpoint speaking the ECS JSON
 * 1.1 protocol (RunTask, DescribeTasks, StopTask) that runs each task as a
 * local process instead of a Fargate container. Dispatch talks to it through
 * the same signed client it uses in production (`AWS_ENDPOINT_URL_ECS`).
 *
 * Semantics kept from ECS because dispatch and the runners rely on them:
 * - a RunTask retried with the same clientToken and the same parameters
 *   returns the first task and starts nothing; the same token with other
 *   parameters is a ConflictException (ECS keeps tokens 24 h; this server keeps
 *   them for its lifetime, which is shorter);
 * - RunTask answers PENDING; the task turns RUNNING once the process exists
 *   and STOPPED when it exits, with the container's exit code (128 + signal
 *   number when a signal ended it, as Docker reports);
 * - StopTask sends SIGTERM, then SIGKILL after the stop timeout;
 * - stopped tasks stay queryable.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import {
  ACCOUNT_ID,
  canonicalJson,
  containerOverride,
  credentialRegion,
  describeTask,
  EcsFault,
  ecsOperation,
  optionalString,
  readJson,
  sendEcsJson,
} from "./ecs-json-protocol.ts";
import {
  eventTime,
  inheritedBaseEnv,
  LocalTaskSupervisor,
  type LocalTask,
  type LocalTaskCommand,
  type LocalTaskEvent,
  type LocalTaskSnapshot,
} from "./local-task-processes.ts";
import { errorMessage } from "../../supabase/functions/_shared/error-message.ts";

// The tasks' vocabulary, so the server's callers import it from one place.
export type { LocalTaskCommand, LocalTaskSnapshot, LocalTaskStatus } from "./local-task-processes.ts";

export type EcsTaskServerEvent =
  /** Emitted as soon as a RunTask request is authenticated, before anything else (for latency measurements). */
  | { type: "run-task-received"; at: number; clientToken: string | undefined; taskDefinition: string | undefined }
  /** RunTask answered with failures[] (failNextRunTasks) or an error; nothing started. */
  | { type: "run-task-refused"; at: number; clientToken: string | undefined; reason: string }
  /** RunTask repeated with a known clientToken; the existing task was returned. */
  | { type: "run-task-replayed"; at: number; task: LocalTaskSnapshot }
  | LocalTaskEvent;

export interface EcsTaskServerOptions {
  port: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** The process to start for a task definition; undefined makes RunTask fail as ECS does for an unknown definition. */
  commandFor(taskDefinition: string): LocalTaskCommand | undefined;
  /**
   * Environment every task starts with, under the request's overrides. A
   * container does not inherit its host's environment, so neither do tasks.
   * @default PATH and HOME of this process
   */
  baseEnv?: Record<string, string>;
  /**
   * Milliseconds between SIGTERM and SIGKILL on StopTask and close().
   * @default 30000 (ECS's default container stopTimeout)
   */
  stopTimeoutMs?: number;
  /** Called synchronously for each event; must not throw. */
  onEvent?(event: EcsTaskServerEvent): void;
}

export interface EcsTaskServer {
  /** Base URL to use as AWS_ENDPOINT_URL_ECS. */
  readonly url: string;
  /** Every task started since the server began, oldest first, stopped ones included. */
  tasks(): LocalTaskSnapshot[];
  /** The next `count` RunTask calls answer with `failures: [{ reason }]` and start nothing. */
  failNextRunTasks(count: number, reason: string): void;
  /** The next `count` RunTask calls answer with this HTTP error (e.g. 500 ServerException) and start nothing. */
  failNextRunTaskRequests(count: number, error: { status: number; awsType: string; message?: string }): void;
  /**
   * The next `count` RunTask calls are carried out (the task starts) but
   * answered only after `delayMs`: what a client that times out sees when
   * ECS did its work and the reply was slow or lost.
   */
  delayNextRunTaskReplies(count: number, delayMs: number): void;
  /** Stops every running task (SIGTERM, then SIGKILL after the stop timeout), then the server. */
  close(): Promise<void>;
}

export async function startEcsTaskServer(options: EcsTaskServerOptions): Promise<EcsTaskServer> {
  const host = options.host ?? "127.0.0.1";
  const stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
  const baseEnv = options.baseEnv ?? inheritedBaseEnv();
  const emit = options.onEvent ?? (() => {});
  const tasks = new Map<string, LocalTask>();
  /** `${cluster}\n${clientToken}` → task: ECS scopes tokens to a cluster. */
  const tasksByToken = new Map<string, LocalTask>();
  let pendingFailures: { remaining: number; reason: string } | undefined;
  let pendingHttpErrors: { remaining: number; status: number; awsType: string; message: string } | undefined;
  let pendingDelays: { remaining: number; delayMs: number } | undefined;
  let closing = false;

  const supervisor = new LocalTaskSupervisor({ baseEnv, stopTimeoutMs, emit });

  function runTask(body: Record<string, unknown>, authorization: string, receivedAt: number): unknown {
    const clientToken = optionalString(body, "clientToken");
    const taskDefinition = optionalString(body, "taskDefinition");
    emit({ type: "run-task-received", at: receivedAt, clientToken, taskDefinition });
    if (taskDefinition === undefined) throw new EcsFault(400, "InvalidParameterException", "taskDefinition can not be blank.");
    const count = body.count ?? 1;
    if (count !== 1) throw new EcsFault(400, "InvalidParameterException", "The local task server starts one task per RunTask call (count must be 1).");
    if (clientToken !== undefined && !/^[\x21-\x7e]{1,64}$/.test(clientToken)) {
      throw new EcsFault(400, "InvalidParameterException", "clientToken must be 1 to 64 ASCII characters in the range 33-126.");
    }
    if (body.launchType !== undefined && body.capacityProviderStrategy !== undefined) {
      throw new EcsFault(400, "InvalidParameterException", "Specifying both a launch type and capacity provider strategy is not supported.");
    }
    const cluster = optionalString(body, "cluster") ?? "default";
    const fingerprint = canonicalJson({ ...body, clientToken: undefined });
    const tokenKey = `${cluster}\n${clientToken}`;

    if (clientToken !== undefined) {
      const earlier = tasksByToken.get(tokenKey);
      if (earlier !== undefined) {
        if (earlier.fingerprint !== fingerprint) {
          throw new EcsFault(400, "ConflictException", `The clientToken ${clientToken} was already used with different parameters.`);
        }
        emit({ type: "run-task-replayed", at: eventTime(), task: supervisor.snapshot(earlier) });
        return { tasks: [describeTask(earlier)], failures: [] };
      }
    }

    if (pendingHttpErrors !== undefined && pendingHttpErrors.remaining > 0) {
      pendingHttpErrors.remaining -= 1;
      emit({ type: "run-task-refused", at: eventTime(), clientToken, reason: `HTTP ${pendingHttpErrors.status} ${pendingHttpErrors.awsType}` });
      throw new EcsFault(pendingHttpErrors.status, pendingHttpErrors.awsType, pendingHttpErrors.message);
    }

    if (pendingFailures !== undefined && pendingFailures.remaining > 0) {
      const { reason } = pendingFailures;
      pendingFailures.remaining -= 1;
      emit({ type: "run-task-refused", at: eventTime(), clientToken, reason });
      return { tasks: [], failures: [{ reason }] };
    }

    const command = options.commandFor(taskDefinition);
    if (command === undefined) {
      emit({ type: "run-task-refused", at: eventTime(), clientToken, reason: `no command for ${taskDefinition}` });
      throw new EcsFault(400, "ClientException", `Unable to describe task definition: ${taskDefinition}.`);
    }
    const { containerName, environment } = containerOverride(body.overrides, taskDefinition);
    const region = credentialRegion(authorization);
    const family = taskDefinition.startsWith("arn:") ? taskDefinition.split("/").pop() ?? taskDefinition : taskDefinition;
    const id = randomUUID().replaceAll("-", "");
    const clusterName = cluster.startsWith("arn:") ? cluster.split("/").pop() ?? cluster : cluster;
    const task: LocalTask = {
      id,
      arn: `arn:aws:ecs:${region}:${ACCOUNT_ID}:task/${clusterName}/${id}`,
      clusterArn: `arn:aws:ecs:${region}:${ACCOUNT_ID}:cluster/${clusterName}`,
      taskDefinition,
      taskDefinitionArn: taskDefinition.startsWith("arn:")
        ? taskDefinition
        : `arn:aws:ecs:${region}:${ACCOUNT_ID}:task-definition/${family.includes(":") ? family : `${family}:1`}`,
      containerName,
      clientToken,
      fingerprint,
      environment,
      startedBy: optionalString(body, "startedBy"),
      group: optionalString(body, "group") ?? `family:${family.split(":")[0]}`,
      launchType: optionalString(body, "launchType"),
      overrides: body.overrides ?? {},
      runTaskReceivedAt: receivedAt,
      lastStatus: "PENDING",
      desiredStatus: "RUNNING",
      process: undefined,
      pid: undefined,
      exitCode: undefined,
      stopCode: undefined,
      stoppedReason: undefined,
      startedAt: undefined,
      stoppingAt: undefined,
      stoppedAt: undefined,
    };
    tasks.set(task.arn, task);
    if (clientToken !== undefined) tasksByToken.set(tokenKey, task);
    supervisor.launch(task, command);
    return { tasks: [describeTask(task)], failures: [] };
  }

  function find(reference: string): LocalTask | undefined {
    // ECS accepts a task id as well as its ARN.
    return tasks.get(reference) ?? [...tasks.values()].find((task) => task.id === reference);
  }

  function describeTasks(body: Record<string, unknown>): unknown {
    const references = body.tasks;
    if (!Array.isArray(references) || references.some((r) => typeof r !== "string")) {
      throw new EcsFault(400, "InvalidParameterException", "tasks must be a list of task ids or ARNs.");
    }
    if (references.length > 100) throw new EcsFault(400, "InvalidParameterException", "Tasks cannot be longer than 100.");
    const found: unknown[] = [];
    const failures: unknown[] = [];
    for (const reference of references as string[]) {
      const task = find(reference);
      if (task === undefined) failures.push({ arn: reference, reason: "MISSING" });
      else found.push(describeTask(task));
    }
    return { tasks: found, failures };
  }

  function stopTask(body: Record<string, unknown>): unknown {
    const reference = optionalString(body, "task");
    const task = reference === undefined ? undefined : find(reference);
    if (task === undefined) throw new EcsFault(400, "InvalidParameterException", "The referenced task was not found.");
    void supervisor.stop(task, "UserInitiated", optionalString(body, "reason") ?? "Task stopped by user");
    return { task: describeTask(task) };
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const arrivedAt = eventTime();
    try {
      const { operation, authorization } = ecsOperation(request);
      if (closing) throw new EcsFault(503, "ServerException", "The local task server is shutting down.");
      const body = await readJson(request);
      const result =
        operation === "RunTask" ? runTask(body, authorization, arrivedAt) : operation === "DescribeTasks" ? describeTasks(body) : stopTask(body);
      if (operation === "RunTask" && pendingDelays !== undefined && pendingDelays.remaining > 0) {
        pendingDelays.remaining -= 1;
        await new Promise((resolve) => setTimeout(resolve, pendingDelays?.delayMs ?? 0));
      }
      sendEcsJson(response, 200, result);
    } catch (error) {
      if (error instanceof EcsFault) sendEcsJson(response, error.status, { __type: error.awsType, message: error.message });
      else sendEcsJson(response, 500, { __type: "ServerException", message: errorMessage(error) });
    }
  }

  const server = createServer((request, response) => void handle(request, response));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  let closed: Promise<void> | undefined;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${options.port}`,
    tasks: () => [...tasks.values()].map((task) => supervisor.snapshot(task)),
    failNextRunTasks(count, reason) {
      pendingFailures = { remaining: count, reason };
    },
    failNextRunTaskRequests(count, error) {
      pendingHttpErrors = { remaining: count, status: error.status, awsType: error.awsType, message: error.message ?? "injected failure" };
    },
    delayNextRunTaskReplies(count, delayMs) {
      pendingDelays = { remaining: count, delayMs };
    },
    close() {
      closed ??= (async () => {
        closing = true;
        await Promise.all([...tasks.values()].map((task) => supervisor.stop(task, "UserInitiated", "The local task server was closed")));
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closed;
    },
  };
}
