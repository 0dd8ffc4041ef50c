import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EcsClient, EcsError, parseEcsConfig, runnerTaskEnvironment } from "../../supabase/functions/_shared/ecs-client.ts";
import { SpotFallback } from "../../supabase/functions/_shared/spot-fallback.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

/**
 * OCR on Fargate Spot falls back to FARGATE after ECS_SPOT_FALLBACK_SECONDS
 * of Spot refusals, with the Spot state in the real Redis behind the Upstash
 * endpoint and time from an injected clock. The ECS stand-in answers as ECS
 * does when Spot has no room: RunTask places nothing and lists the failure
 * ("Capacity is unavailable at this time…",
 * https://repost.aws/knowledge-center/ecs-fargate-runtask-capacity).
 */
interface Seen {
  strategy: string;
  clientToken: string;
}

let server: Server;
let url: string;
let spotHasRoom = false;
const seen: Seen[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
    request.on("end", () => {
      const body = JSON.parse(text) as { clientToken: string; capacityProviderStrategy?: { capacityProvider: string }[]; launchType?: string };
      const strategy = body.capacityProviderStrategy?.map((item) => item.capacityProvider).join(",") ?? `launchType:${body.launchType ?? "?"}`;
      seen.push({ strategy, clientToken: body.clientToken });
      response.setHeader("content-type", "application/x-amz-json-1.1");
      if (strategy === "FARGATE_SPOT" && !spotHasRoom) {
        response.end(JSON.stringify({ tasks: [], failures: [{ reason: "Capacity is unavailable at this time. Please try again later or in a different availability zone" }] }));
        return;
      }
      response.end(JSON.stringify({ tasks: [{ taskArn: `arn:aws:ecs:ca-central-1:123456789012:task/c/${seen.length}`, lastStatus: "PROVISIONING" }], failures: [] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const WAIT_SECONDS = 300;

function client(clock: { now: number }, keyPrefix: string): EcsClient {
  const config = parseEcsConfig({
    AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE",
    AWS_SECRET_ACCESS_KEY: "test-secret",
    AWS_REGION: "ca-central-1",
    AWS_ENDPOINT_URL_ECS: url,
    ECS_CLUSTER: "arn:aws:ecs:ca-central-1:123456789012:cluster/c",
    ECS_TASK_DEFINITION_REGISTRE: "registre-runner",
    ECS_TASK_DEFINITION_OCR: "ocr-runner",
    ECS_CONTAINER_NAME_REGISTRE: "registre-runner",
    ECS_CONTAINER_NAME_OCR: "ocr-runner",
    ECS_SUBNETS: "subnet-0a1b2c3d",
    ECS_CAPACITY_PROVIDER_REGISTRE: "FARGATE",
    ECS_CAPACITY_PROVIDER_OCR: "FARGATE_SPOT",
    ECS_SPOT_FALLBACK_SECONDS: String(WAIT_SECONDS),
  });
  const spotFallback = new SpotFallback(upstashClient(), { keyPrefix, waitMs: config.spotFallbackMs, now: () => clock.now });
  return new EcsClient(config, { retries: 0, spotFallback });
}

async function runOcr(ecs: EcsClient, token: string): Promise<string> {
  return ecs.runTask({
    taskDefinition: "ocr-runner",
    containerName: "ocr-runner",
    clientToken: token,
    environment: runnerTaskEnvironment({ kind: "index-ocr", environment: "prod", ledgerLeaseId: token }),
  });
}

describe("OCR on Fargate Spot", () => {
  it("stays on Spot while Spot refuses for less than the wait, then starts on FARGATE, and returns to Spot later", async () => {
    const clock = { now: Date.UTC(2027, 2, 14, 9, 0, 0) };
    const prefix = randomKeyPrefix("spot");
    const ecs = client(clock, prefix);
    spotHasRoom = false;
    seen.length = 0;

    await expect(runOcr(ecs, "lease-1")).rejects.toThrow(EcsError);
    clock.now += (WAIT_SECONDS - 1) * 1000;
    await expect(runOcr(ecs, "lease-2")).rejects.toThrow(/Capacity is unavailable/);
    expect(seen.map((entry) => entry.strategy)).toEqual(["FARGATE_SPOT", "FARGATE_SPOT"]);

    // The wait has passed since the first refusal: on demand.
    clock.now += 1000;
    expect(await runOcr(ecs, "lease-3")).toMatch(/^arn:aws:ecs:/);
    // Another dispatcher (another environment's function) sees the same Spot state.
    expect(await runOcr(client(clock, prefix), "lease-4")).toMatch(/^arn:aws:ecs:/);
    expect(seen.slice(2).map((entry) => entry.strategy)).toEqual(["FARGATE", "FARGATE"]);

    // A retry of one lease keeps its placement, whatever the board now says (same clientToken, same parameters).
    await redisDelete(`${prefix}:ocr`);
    await runOcr(ecs, "lease-3");
    expect(seen.at(-1)).toEqual({ strategy: "FARGATE", clientToken: "lease-3" });

    // The refusal streak forgotten (expired, or cleared): Spot again, and a Spot start clears it.
    spotHasRoom = true;
    expect(await runOcr(ecs, "lease-5")).toMatch(/^arn:aws:ecs:/);
    expect(seen.at(-1)).toEqual({ strategy: "FARGATE_SPOT", clientToken: "lease-5" });
  });

  it("keeps the stored refusal only for twice the wait (a Redis expiry given as a duration)", async () => {
    const clock = { now: Date.UTC(2027, 10, 7, 1, 30, 0) };
    const prefix = randomKeyPrefix("spot-ttl");
    spotHasRoom = false;
    await expect(runOcr(client(clock, prefix), "lease-ttl")).rejects.toThrow(EcsError);
    const ttlMs = await upstashClient().pttl(`${prefix}:ocr`);
    expect(ttlMs).toBeGreaterThan(2 * WAIT_SECONDS * 1000 - 5_000);
    expect(ttlMs).toBeLessThanOrEqual(2 * WAIT_SECONDS * 1000);
  });

  it("never falls back for registre, which is on demand, nor for a refusal that is not about capacity", async () => {
    const clock = { now: Date.UTC(2027, 0, 1) };
    const prefix = randomKeyPrefix("spot-other");
    const ecs = client(clock, prefix);
    seen.length = 0;
    await ecs.runTask({ taskDefinition: "registre-runner", containerName: "registre-runner", clientToken: "lease-r", environment: {} });
    expect(seen.at(-1)?.strategy).toBe("FARGATE");
    expect(await upstashClient().exists(`${prefix}:ocr`)).toBe(0);
  });
});

async function redisDelete(key: string): Promise<void> {
  await upstashClient().del(key);
}
