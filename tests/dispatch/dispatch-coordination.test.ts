import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DispatchConfigError, parseDispatchConfig } from "../../supabase/functions/_shared/dispatch-config.ts";
import type { Redis } from "@upstash/redis";
import { DispatchLock, extendLockScript, releaseLockScript } from "../../supabase/functions/_shared/dispatch-lock.ts";
import { EnvironmentDemandBoard } from "../../supabase/functions/_shared/environment-demand.ts";
import { waitFor } from "../../infra/local/child-process.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

describe("the dispatch lock (real Redis through the Upstash endpoint)", () => {
  it("pins its scripts to their SHAs", () => {
    expect(createHash("sha1").update(releaseLockScript).digest("hex")).toBe("a692f19f31d45705c60855643c6313b979f338c7");
    expect(createHash("sha1").update(extendLockScript).digest("hex")).toBe("b8717fb3f1fb50c87ae34af951dceb28a8276b99");
  });

  it("extends itself while the work outlasts its TTL, so a second dispatch never overlaps the first", async () => {
    const key = randomKeyPrefix("lock");
    const events: string[] = [];
    let firstSignal: AbortSignal | undefined;
    // TTLs of seconds, not milliseconds: a busy machine may delay one extension by a few hundred ms.
    const first = new DispatchLock(upstashClient(), key, { ttlMs: 1_500 }).withLock(async ({ signal }) => {
      firstSignal = signal;
      events.push("first in");
      // Three TTLs long: without extension the lock would expire under it.
      await new Promise((resolve) => setTimeout(resolve, 4_500));
      events.push("first out");
    });
    await waitFor("the first dispatch to hold the lock", async () => events.length > 0, 5_000);
    const second = new DispatchLock(upstashClient(), key, { ttlMs: 1_500 }).withLock(async () => void events.push("second in"), 10_000);
    await Promise.all([first, second]);
    expect(events).toEqual(["first in", "first out", "second in"]);
    expect(firstSignal?.aborted).toBe(false);
  });

  it("tells the work at once when the lock is no longer ours", async () => {
    const key = randomKeyPrefix("lock");
    const redis = upstashClient();
    const result = await new DispatchLock(upstashClient(), key, { ttlMs: 300 }).withLock(async ({ signal }) => {
      // Someone else holds it now (it expired during a stall, or was deleted by hand).
      await redis.set(key, "someone-else");
      await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
      return String(signal.reason);
    });
    expect(result).toEqual({ ran: true, value: expect.stringMatching(/lock was lost/) });
    expect(await redis.get(key)).toBe("someone-else");
  });

  it("a failed release does not turn a finished dispatch into a failure", async () => {
    const key = randomKeyPrefix("lock");
    const real = upstashClient();
    // EVAL (the release script) fails as if Upstash went away after the work.
    const flaky = new Proxy(real, {
      get(target, property, receiver) {
        if (property === "eval") return () => Promise.reject(new Error("fetch failed"));
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    }) as Redis;
    const releaseErrors: unknown[] = [];
    const result = await new DispatchLock(flaky, key, { onReleaseError: (error) => releaseErrors.push(error) }).withLock(async () => "started 2 tasks");
    expect(result).toEqual({ ran: true, value: "started 2 tasks" });
    expect(releaseErrors).toHaveLength(1);
    // Still held until its TTL: nobody else's lock was touched.
    expect(await real.get(key)).not.toBeNull();
  });

  it("runs one holder at a time; the second waits for the first", async () => {
    const key = randomKeyPrefix("lock");
    const events: string[] = [];
    const work = (name: string) => async () => {
      events.push(`${name} in`);
      await new Promise((resolve) => setTimeout(resolve, 150));
      events.push(`${name} out`);
      return name;
    };
    const [a, b] = await Promise.all([new DispatchLock(upstashClient(), key).withLock(work("a")), new DispatchLock(upstashClient(), key).withLock(work("b"))]);
    expect([a, b].every((result) => result.ran)).toBe(true);
    // Never interleaved: each holder leaves before the next enters.
    expect(events.filter((_, i) => i % 2 === 0).map((event) => event.split(" ")[1])).toEqual(["in", "in"]);
    expect(events[0]?.split(" ")[0]).toBe(events[1]?.split(" ")[0]);
  });

  it("gives up after its wait when another holder keeps the lock", async () => {
    const key = randomKeyPrefix("lock");
    const redis = upstashClient();
    await redis.set(key, "someone-else", { px: 10_000 });
    const result = await new DispatchLock(upstashClient(), key).withLock(async () => "ran", 200);
    expect(result).toEqual({ ran: false });
    // And it never frees a lock it does not hold.
    expect(await redis.get(key)).toBe("someone-else");
  });

  it("a dispatch that finds the lock taken returns at once; the holder runs once more for all who came meanwhile", async () => {
    const key = randomKeyPrefix("lock");
    let runs = 0;
    let releaseFirst: () => void = () => {};
    const firstHolds = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    const first = new DispatchLock(upstashClient(), key).runCoalesced(async () => {
      runs += 1;
      if (runs === 1) await firstHolds;
      return `run ${runs}`;
    });
    await waitFor("the first dispatch to hold the lock", async () => runs === 1, 5_000);
    // Ten hints while the first runs: each returns at once, none runs work of its own.
    const startedAt = Date.now();
    const others = await Promise.all(Array.from({ length: 10 }, () => new DispatchLock(upstashClient(), key).runCoalesced(async () => "should not run")));
    expect(Date.now() - startedAt).toBeLessThan(2_000);
    expect(others).toEqual(Array.from({ length: 10 }, () => ({ ran: false })));
    releaseFirst();
    // The holder saw the marks after freeing the lock and dispatched once more, for all ten.
    expect(await first).toEqual({ ran: true, value: "run 2" });
    expect(runs).toBe(2);
    expect(await upstashClient().get(key)).toBeNull();
  });

  it("frees the lock when the work throws", async () => {
    const key = randomKeyPrefix("lock");
    await expect(new DispatchLock(upstashClient(), key).withLock(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await upstashClient().get(key)).toBeNull();
  });
});

describe("the environment demand board", () => {
  it("shows each environment the others' fresh demand, weighted by its own configuration", async () => {
    const keyPrefix = randomKeyPrefix("demand");
    const board = new EnvironmentDemandBoard(upstashClient(), { keyPrefix, ttlMs: 500 });
    await board.publish({ environment: "dev", weight: 100, allocatedVcpu: 3, wantedVcpu: 40 });
    await board.publish({ environment: "prod", weight: 3, allocatedVcpu: 1, wantedVcpu: 2 });
    const weights = { prod: 3, staging: 2, dev: 1 };
    expect(await board.others("prod", weights)).toEqual([{ environment: "dev", weight: 1, allocatedVcpu: 3, wantedVcpu: 40 }]);
    expect(await board.others("staging", weights)).toHaveLength(2);
    // A dispatcher that stopped publishing stops claiming a share.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(await board.others("staging", weights)).toEqual([]);
  });
});

describe("parseDispatchConfig", () => {
  const complete = {
    DISPATCH_SECRET: "s".repeat(32),
    SUPABASE_DB_URL: "postgres://postgres@127.0.0.1:5432/postgres",
    UPSTASH_REDIS_REST_URL: "https://example.upstash.io",
    UPSTASH_REDIS_REST_TOKEN: "token",
    ENVIRONMENT: "prod",
    AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
    AWS_SECRET_ACCESS_KEY: "secret",
    AWS_REGION: "ca-central-1",
    ECS_CLUSTER: "cluster",
    ECS_TASK_DEFINITION_REGISTRE: "registre-runner",
    ECS_TASK_DEFINITION_OCR: "ocr-runner",
    ECS_CONTAINER_NAME_REGISTRE: "registre-runner",
    ECS_CONTAINER_NAME_OCR: "ocr-runner",
    ECS_SUBNETS: "subnet-1,subnet-2",
  };

  it("reads a complete configuration with its defaults", () => {
    const config = parseDispatchConfig(complete);
    expect(config.environment).toBe("prod");
    expect(config.weights).toEqual({ prod: 3, staging: 2, dev: 1 });
    expect(config.tokensPerTask).toEqual({ "index-ocr": 54_000, "acte-ocr": 243_000 });
    expect(config.capacity.capacity).toEqual({ vcpu: 6.4, ramGb: 12.8 });
  });

  it("takes other weights", () => {
    expect(parseDispatchConfig({ ...complete, DISPATCH_WEIGHTS: "prod=5, dev=0.5" }).weights).toEqual({ prod: 5, staging: 2, dev: 0.5 });
  });

  it.each([
    { change: { DISPATCH_SECRET: undefined }, names: /DISPATCH_SECRET is missing/ },
    { change: { DISPATCH_SECRET: "short" }, names: /DISPATCH_SECRET must be at least 32 characters/ },
    { change: { ENVIRONMENT: "qa" }, names: /ENVIRONMENT must be one of dev, staging, prod/ },
    { change: { DISPATCH_WEIGHTS: "prod:3" }, names: /DISPATCH_WEIGHTS must look like prod=3,staging=2,dev=1/ },
    { change: { ECS_CLUSTER: " " }, names: /ECS_CLUSTER is missing/ },
    { change: { SERVER_MAX_CPU: "eight" }, names: /SERVER_MAX_CPU="eight"/ },
  ])("refuses $change, naming the variable", ({ change, names }) => {
    expect(() => parseDispatchConfig({ ...complete, ...change })).toThrow(DispatchConfigError);
    expect(() => parseDispatchConfig({ ...complete, ...change })).toThrow(names);
  });

  it("connects as the dispatcher login when DISPATCH_DATABASE_URL is set, else as SUPABASE_DB_URL", () => {
    const base = complete;
    expect(parseDispatchConfig(base).databaseUrl).toBe(base.SUPABASE_DB_URL);
    expect(parseDispatchConfig({ ...base, DISPATCH_DATABASE_URL: "postgres://dispatch_login:pw@127.0.0.1:6543/postgres" }).databaseUrl).toBe("postgres://dispatch_login:pw@127.0.0.1:6543/postgres");
    expect(() => parseDispatchConfig({ ...base, DISPATCH_DATABASE_URL: "mysql://x" })).toThrow(/DISPATCH_DATABASE_URL must be a postgres:\/\/ URL/);
  });

  it("names every missing variable at once", () => {
    expect(() => parseDispatchConfig({})).toThrow(/DISPATCH_SECRET is missing.*SUPABASE_DB_URL is missing.*ENVIRONMENT is missing.*AWS_REGION is missing/);
  });
});
