import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EcsClient, parseEcsConfig, runnerTaskEnvironment } from "../../supabase/functions/_shared/ecs-client.ts";
import { freePort } from "../../infra/local/free-port.ts";
import { startEcsTaskServer } from "../../infra/local/ecs-task-server.ts";

/** The recorded Request Syntax of the ECS API reference (see its `source`). */
const reference = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "ecs-run-task-request-syntax.json"), "utf8")) as {
  headers: Record<string, string>;
  required: string[];
  mutuallyExclusive: string[][];
  enums: Record<string, string[]>;
  syntax: Record<string, unknown>;
};

const CREDENTIALS = { AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE", AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
/** What `sst deploy` outputs for a stage (infra/dispatch-access.ts), as deploy:secrets hands it to the function. */
const OUTPUTS = {
  AWS_REGION: "ca-central-1",
  ECS_CLUSTER: "arn:aws:ecs:ca-central-1:123456789012:cluster/registre-extraction-prod-Cluster",
  ECS_TASK_DEFINITION_REGISTRE: "registre-extraction-prod-RegistreRunner",
  ECS_TASK_DEFINITION_OCR: "registre-extraction-prod-OcrRunner",
  ECS_CONTAINER_NAME_REGISTRE: "registre-runner",
  ECS_CONTAINER_NAME_OCR: "ocr-runner",
  ECS_SUBNETS: "subnet-0a1b2c3d4e5f60718,subnet-0a1b2c3d4e5f60719",
  ECS_SECURITY_GROUPS: "sg-0a1b2c3d4e5f60718",
  ECS_ASSIGN_PUBLIC_IP: "ENABLED",
};

interface Captured {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Every place where `value` departs from the reference's syntax: unknown keys or other JSON types. */
function departures(value: unknown, syntax: unknown, path: string): string[] {
  const kind = (item: unknown) => (Array.isArray(item) ? "array" : item === null ? "null" : typeof item);
  if (kind(value) !== kind(syntax)) return [`${path || "body"} is ${kind(value)}, the reference has ${kind(syntax)}`];
  if (Array.isArray(value)) return value.flatMap((item, index) => departures(item, (syntax as unknown[])[0], `${path}[${index}]`));
  if (kind(value) !== "object") return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([key, item]) => {
    const expected = (syntax as Record<string, unknown>)[key];
    const where = path ? `${path}.${key}` : key;
    return expected === undefined ? [`${where} is not in the RunTask request syntax`] : departures(item, expected, where);
  });
}

function lookup(body: Record<string, unknown>, path: string): unknown {
  return path.split(".").reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], body);
}

function hmac(key: Buffer | string, text: string): Buffer {
  return createHmac("sha256", key).update(text, "utf8").digest();
}

/** Signature Version 4, computed here from the captured request alone, to compare with what the client sent. */
function expectedSignature(request: Captured, secret: string): { signature: string; scope: string; signedHeaders: string } {
  const authorization = String(request.headers.authorization);
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(authorization);
  if (match === null) throw new Error(`not a SigV4 Authorization header: ${authorization}`);
  const [, , date, region, service, signedHeaders] = match as unknown as [string, string, string, string, string, string];
  const canonicalHeaders = signedHeaders
    .split(";")
    .map((name) => `${name}:${String(request.headers[name] ?? "").trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const payloadHash = createHash("sha256").update(request.body, "utf8").digest("hex");
  const canonicalRequest = [request.method, request.url, "", canonicalHeaders, signedHeaders, payloadHash].join("\n");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", String(request.headers["x-amz-date"]), scope, createHash("sha256").update(canonicalRequest).digest("hex")].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), "aws4_request");
  return { signature: hmac(key, stringToSign).toString("hex"), scope, signedHeaders };
}

let recorder: ReturnType<typeof createServer>;
let recorderUrl: string;
const captured: Captured[] = [];

beforeAll(async () => {
  recorder = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      captured.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, body });
      response.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
      response.end(JSON.stringify({ tasks: [{ taskArn: "arn:aws:ecs:ca-central-1:123456789012:task/registre-extraction-prod-Cluster/0123456789abcdef", lastStatus: "PROVISIONING", containers: [] }], failures: [] }));
    });
  });
  await new Promise<void>((resolve) => recorder.listen(0, "127.0.0.1", resolve));
  recorderUrl = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => recorder.close(() => resolve()));
});

async function runTaskThrough(extraEnv: Record<string, string>, family: "registre" | "ocr" = "ocr"): Promise<Captured> {
  const config = parseEcsConfig({ ...OUTPUTS, ...CREDENTIALS, AWS_ENDPOINT_URL_ECS: recorderUrl, ...extraEnv });
  const client = new EcsClient(config, { retries: 0 });
  const before = captured.length;
  await client.runTask({
    taskDefinition: config.taskDefinitions[family],
    containerName: config.containerNames[family],
    clientToken: "lease-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    environment: runnerTaskEnvironment({ kind: "acte-ocr", environment: "prod", ledgerLeaseId: "lease-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" }),
    startedBy: "dispatch/prod",
  });
  const request = captured[before];
  if (request === undefined) throw new Error("the client sent no request");
  return request;
}

describe("the dispatch function's RunTask request", () => {
  it("is a signed POST with the ECS JSON 1.1 protocol headers of the API reference", async () => {
    const request = await runTaskThrough({});
    expect(request.method).toBe("POST");
    expect(request.url).toBe("/");
    for (const [name, value] of Object.entries(reference.headers)) expect(request.headers[name]).toBe(value);
    expect(request.headers["x-amz-date"]).toMatch(/^\d{8}T\d{6}Z$/);
    const expected = expectedSignature(request, CREDENTIALS.AWS_SECRET_ACCESS_KEY);
    expect(expected.scope).toMatch(/^\d{8}\/ca-central-1\/ecs\/aws4_request$/);
    expect(expected.signedHeaders.split(";")).toEqual(expect.arrayContaining(["host", "x-amz-date", "x-amz-target"]));
    expect(String(request.headers.authorization)).toBe(
      `AWS4-HMAC-SHA256 Credential=${CREDENTIALS.AWS_ACCESS_KEY_ID}/${expected.scope}, SignedHeaders=${expected.signedHeaders}, Signature=${expected.signature}`,
    );
  });

  it.each([
    ["on demand (launchType FARGATE)", {}, { launchType: "FARGATE" }],
    ["on Fargate Spot (a capacity provider strategy, no launchType)", { ECS_CAPACITY_PROVIDER: "FARGATE_SPOT" }, { capacityProviderStrategy: [{ capacityProvider: "FARGATE_SPOT", weight: 1 }] }],
  ])("has a body within the reference's request syntax %s", async (_name, extraEnv, placement) => {
    const body = JSON.parse((await runTaskThrough(extraEnv)).body) as Record<string, unknown>;
    expect(departures(body, reference.syntax, "")).toEqual([]);
    for (const key of reference.required) expect(body).toHaveProperty(key);
    for (const group of reference.mutuallyExclusive) expect(group.filter((key) => key in body).length).toBeLessThanOrEqual(1);
    for (const [path, allowed] of Object.entries(reference.enums)) {
      const value = lookup(body, path);
      if (value !== undefined) expect(allowed).toContain(value);
    }
    expect(body).toMatchObject({
      ...placement,
      cluster: OUTPUTS.ECS_CLUSTER,
      taskDefinition: OUTPUTS.ECS_TASK_DEFINITION_OCR,
      count: 1,
      clientToken: "lease-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
      startedBy: "dispatch/prod",
      networkConfiguration: { awsvpcConfiguration: { subnets: OUTPUTS.ECS_SUBNETS.split(","), securityGroups: [OUTPUTS.ECS_SECURITY_GROUPS], assignPublicIp: "ENABLED" } },
      overrides: {
        containerOverrides: [
          {
            name: "ocr-runner",
            environment: [
              { name: "JOB_KIND", value: "acte-ocr" },
              { name: "ENVIRONMENT", value: "prod" },
              { name: "LEDGER_LEASE_ID", value: "lease-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" },
            ],
          },
        ],
      },
    });
    expect(String(body.clientToken)).toMatch(/^[\x21-\x7e]{1,64}$/);
  });

  it("runs OCR on Fargate Spot while registre stays on demand when only ECS_CAPACITY_PROVIDER_OCR is set", async () => {
    const spot = { ECS_CAPACITY_PROVIDER_OCR: "FARGATE_SPOT" };
    const ocr = JSON.parse((await runTaskThrough(spot, "ocr")).body) as Record<string, unknown>;
    const registre = JSON.parse((await runTaskThrough(spot, "registre")).body) as Record<string, unknown>;
    expect(ocr.capacityProviderStrategy).toEqual([{ capacityProvider: "FARGATE_SPOT", weight: 1 }]);
    expect(ocr).not.toHaveProperty("launchType");
    expect(registre).toMatchObject({ launchType: "FARGATE", taskDefinition: OUTPUTS.ECS_TASK_DEFINITION_REGISTRE });
    expect(registre).not.toHaveProperty("capacityProviderStrategy");
    for (const body of [ocr, registre]) expect(departures(body, reference.syntax, "")).toEqual([]);
  });

  it("is accepted by the local task runner, which starts the task with the overrides", async () => {
    const server = await startEcsTaskServer({
      port: await freePort(),
      commandFor: (taskDefinition) => (taskDefinition === OUTPUTS.ECS_TASK_DEFINITION_OCR ? { command: process.execPath, args: ["-e", ""] } : undefined),
    });
    try {
      const client = new EcsClient(parseEcsConfig({ ...OUTPUTS, ...CREDENTIALS, AWS_ENDPOINT_URL_ECS: server.url }), { retries: 0 });
      const environment = runnerTaskEnvironment({ kind: "index-ocr", environment: "staging", ledgerLeaseId: "lease-local-1" });
      const arn = await client.runTask({ taskDefinition: OUTPUTS.ECS_TASK_DEFINITION_OCR, containerName: "ocr-runner", clientToken: "lease-local-1", environment });
      expect(arn).toMatch(/^arn:aws:ecs:ca-central-1:\d{12}:task\//);
      const [task] = server.tasks();
      expect(task).toMatchObject({ arn, taskDefinition: OUTPUTS.ECS_TASK_DEFINITION_OCR, clientToken: "lease-local-1", environment });
      // The same token again is a replay: the first task, nothing new started.
      expect(await client.runTask({ taskDefinition: OUTPUTS.ECS_TASK_DEFINITION_OCR, containerName: "ocr-runner", clientToken: "lease-local-1", environment })).toBe(arn);
      expect(server.tasks()).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
