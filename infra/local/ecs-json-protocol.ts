// The ECS JSON 1.1 protocol as the local task server speaks it: the request's operation and body, ECS's error answers, a task in ECS's response shape.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { LocalTask } from "./local-task-processes.ts";

const TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113.";
/** The account in every ARN the local server makes up. */
export const ACCOUNT_ID = "000000000000";

export type EcsOperation = "RunTask" | "DescribeTasks" | "StopTask";

/** An ECS-style error answer: `{ "__type": "...", "message": "..." }`. */
export class EcsFault extends Error {
  constructor(readonly status: number, readonly awsType: string, message: string) {
    super(message);
  }
}

/** The operation a request asks for, after the checks ECS makes first (method, a signature header, a known X-Amz-Target). */
export function ecsOperation(request: IncomingMessage): { operation: EcsOperation; authorization: string } {
  if (request.method !== "POST") throw new EcsFault(405, "UnknownOperationException", `${request.method} is not supported; ECS takes POST.`);
  // Signatures are not verified: the endpoint listens on loopback for a
  // private stack, and checking them would need the secret key shared
  // with the server while proving only what aws4fetch already tests.
  // Requiring the header still catches a client that forgot to sign.
  const authorization = request.headers.authorization;
  if (authorization === undefined || !authorization.startsWith("AWS4-HMAC-SHA256 ")) {
    throw new EcsFault(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
  }
  const target = header(request, "x-amz-target");
  const operation = target?.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined;
  if (operation !== "RunTask" && operation !== "DescribeTasks" && operation !== "StopTask") {
    throw new EcsFault(400, "UnknownOperationException", `Unknown operation ${target ?? "(no X-Amz-Target)"}.`);
  }
  return { operation, authorization };
}

/** The task in ECS's response shape (timestamps in epoch seconds, as the JSON protocol sends them). */
export function describeTask(task: LocalTask): Record<string, unknown> {
    const seconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);
    return {
      taskArn: task.arn,
      clusterArn: task.clusterArn,
      taskDefinitionArn: task.taskDefinitionArn,
      lastStatus: task.lastStatus,
      desiredStatus: task.desiredStatus,
      launchType: task.launchType,
      startedBy: task.startedBy,
      group: task.group,
      overrides: task.overrides,
      createdAt: seconds(task.runTaskReceivedAt),
      startedAt: seconds(task.startedAt),
      stoppingAt: seconds(task.stoppingAt),
      stoppedAt: seconds(task.stoppedAt),
      stopCode: task.stopCode,
      stoppedReason: task.stoppedReason,
      containers: [
        {
          containerArn: `${task.arn.replace(":task/", ":container/")}/${task.containerName}`,
          taskArn: task.arn,
          name: task.containerName,
          lastStatus: task.lastStatus,
          exitCode: task.exitCode,
          ...(task.stopCode === "TaskFailedToStart" ? { reason: task.stoppedReason } : {}),
        },
      ],
    };
  }

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new EcsFault(400, "SerializationException", `${key} must be a string.`);
  return value;
}

export async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  let parsed: unknown;
  try {
    parsed = text.length === 0 ? {} : JSON.parse(text);
  } catch {
    throw new EcsFault(400, "SerializationException", "The request body is not valid JSON.");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new EcsFault(400, "SerializationException", "The request body must be a JSON object.");
  }
  return parsed as Record<string, unknown>;
}

/** The one container override a runner task carries: its name and environment. */
export function containerOverride(overrides: unknown, taskDefinition: string): { containerName: string; environment: Record<string, string> } {
  const list = isRecord(overrides) ? overrides.containerOverrides : undefined;
  if (list === undefined) return { containerName: taskDefinition, environment: {} };
  if (!Array.isArray(list) || list.length > 1) {
    throw new EcsFault(400, "InvalidParameterException", "The local task server runs one container per task: give at most one container override.");
  }
  const override: unknown = list[0];
  if (override === undefined) return { containerName: taskDefinition, environment: {} };
  if (!isRecord(override) || typeof override.name !== "string" || override.name.length === 0) {
    throw new EcsFault(400, "InvalidParameterException", "Container.name should not be null or empty.");
  }
  const environment: Record<string, string> = {};
  const pairs = override.environment ?? [];
  if (!Array.isArray(pairs)) throw new EcsFault(400, "SerializationException", "environment must be a list of {name, value}.");
  for (const pair of pairs) {
    if (!isRecord(pair) || typeof pair.name !== "string" || typeof pair.value !== "string") {
      throw new EcsFault(400, "SerializationException", "environment must be a list of {name, value} strings.");
    }
    environment[pair.name] = pair.value;
  }
  return { containerName: override.name, environment };
}

/** The region of the credential scope (`Credential=AKID/20240101/ca-central-1/ecs/aws4_request`), for realistic ARNs. */
export function credentialRegion(authorization: string): string {
  return /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(authorization)?.[1] ?? "local";
}

/** JSON with object keys sorted, so two equal requests compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    isRecord(inner) && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

export function sendEcsJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "Content-Type": "application/x-amz-json-1.1", "Content-Length": Buffer.byteLength(text) });
  response.end(text);
}
