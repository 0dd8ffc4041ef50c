import { createHash, randomBytes } from "node:crypto";
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import { Redis as DirectRedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import { freePort } from "../../infra/local/free-port.ts";
import { startUpstashRestServer } from "../../infra/local/upstash-rest-server.ts";

/**
 * The local Upstash endpoint must be indistinguishable from Upstash for the
 * real clients: every case here goes through `@upstash/redis` or
 * `@upstash/ratelimit` unchanged, or speaks the REST protocol by hand.
 */
const url = inject("upstashUrl");
const token = inject("upstashToken");
const run = `upstash-rest-test:${randomBytes(6).toString("hex")}`;
const redis = new Redis({ url, token });
/** Straight to redis-server, to see what the endpoint really stored. */
let direct: DirectRedis;

beforeAll(async () => {
  direct = new DirectRedis(inject("redisUrl"), { lazyConnect: true });
  await direct.connect();
});

afterAll(async () => {
  const keys = await direct.keys(`${run}:*`);
  if (keys.length > 0) await direct.del(...keys);
  await direct.quit();
});

function key(name: string): string {
  return `${run}:${name}`;
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

const sha1 = (text: string) => createHash("sha1").update(text, "utf8").digest("hex");

describe("@upstash/redis against the local endpoint", () => {
  it("round-trips accents and emoji byte for byte", async () => {
    const text = "Montréal — 🏠 Québec";
    await redis.set(key("accents"), text);

    expect(await redis.get(key("accents"))).toBe(text);
    expect(await direct.getBuffer(key("accents"))).toEqual(Buffer.from(text, "utf8"));
  });

  it("stores objects as JSON and gives them back deserialized", async () => {
    const lot = { cadastre: "1 234 567", circonscription: "Montréal", pages: [1, 2], annulé: false };
    await redis.set(key("json"), lot);

    expect(await redis.get(key("json"))).toEqual(lot);
    expect(JSON.parse((await direct.get(key("json"))) ?? "null")).toEqual(lot);
  });

  it("writes and reads hashes", async () => {
    expect(await redis.hset(key("hash"), { ville: "Lévis", lots: 3, acte: { numéro: "12 345 678" } })).toBe(3);

    expect(await redis.hgetall(key("hash"))).toEqual({ ville: "Lévis", lots: 3, acte: { numéro: "12 345 678" } });
    expect(await redis.hgetall(key("missing-hash"))).toBeNull();
  });

  it("runs a pipeline in order and keeps each command's error to itself", async () => {
    const results = await redis
      .pipeline()
      .set(key("pipeline"), "é")
      .incr(key("pipeline"))
      .get(key("pipeline"))
      .zadd(key("pipeline-z"), { score: 2, member: "b" }, { score: 1, member: "a" })
      .zrange(key("pipeline-z"), 0, -1, { withScores: true })
      .exec({ keepErrors: true });

    expect(results.map((entry) => entry.result)).toEqual(["OK", undefined, "é", 2, ["a", 1, "b", 2]]);
    expect(results[1]?.error).toBe("ERR value is not an integer or out of range");
  });

  it("runs a transaction and returns every command's result", async () => {
    const results = await redis
      .multi()
      .set(key("multi"), 41)
      .incr(key("multi"))
      .hset(key("multi-hash"), { a: "à" })
      .hgetall(key("multi-hash"))
      .exec();

    expect(results).toEqual(["OK", 42, 1, { a: "à" }]);
  });

  it("throws Redis's own message on an error reply", async () => {
    await redis.set(key("not-a-number"), "Québec");

    await expect(redis.incr(key("not-a-number"))).rejects.toThrow("ERR value is not an integer or out of range");
  });

  it("refuses a client with the wrong token", async () => {
    const intruder = new Redis({ url, token: `${token}x` });

    await expect(intruder.set(key("intruder"), "1")).rejects.toThrow();
    expect(await direct.exists(key("intruder"))).toBe(0);
  });
});

describe("@upstash/ratelimit against the local endpoint", () => {
  // Windows of a day, so a window boundary cannot fall inside a test.
  const limiters = {
    slidingWindow: () => Ratelimit.slidingWindow(5, "1 d"),
    fixedWindow: () => Ratelimit.fixedWindow(5, "1 d"),
    tokenBucket: () => Ratelimit.tokenBucket(1, "1 d", 5),
  };

  function ratelimit(limiter: keyof typeof limiters): Ratelimit {
    return new Ratelimit({
      redis,
      limiter: limiters[limiter](),
      prefix: key(`ratelimit:${limiter}:${randomBytes(4).toString("hex")}`),
      // A local cache would deny without asking Redis, hiding what the endpoint did.
      ephemeralCache: false,
      analytics: false,
    });
  }

  describe.each(Object.keys(limiters) as Array<keyof typeof limiters>)("%s", (limiter) => {
    it("allows exactly the limit, then denies", async () => {
      const limit = ratelimit(limiter);
      const outcomes: boolean[] = [];
      for (let i = 0; i < 6; i++) outcomes.push((await limit.limit("dispatch")).success);

      expect(outcomes).toEqual([true, true, true, true, true, false]);
    });

    it("consumes `rate` tokens in one call", async () => {
      const limit = ratelimit(limiter);

      const first = await limit.limit("gemini", { rate: 3 });
      expect(first.success).toBe(true);
      expect(first.remaining).toBe(2);
      expect((await limit.limit("gemini")).success).toBe(true);
      expect((await limit.limit("gemini")).success).toBe(true);
      expect((await limit.limit("gemini")).success).toBe(false);
    });
  });
});

describe("Lua scripts with an Upstash shebang", () => {
  // Unique per run: the endpoint and redis-server outlive this file.
  const script = `#!lua flags=allow-key-locking
    -- ${run}
    local key = KEYS[1]            -- counter to bump
    local step = tonumber(ARGV[1]) -- how much to add
    return redis.call("INCRBY", key, step)`;

  it("runs EVAL, then hits EVALSHA with the SHA1 of the original text", async () => {
    const sha = sha1(script);
    await expect(redis.evalsha(sha, [key("script")], [1])).rejects.toThrow(/NOSCRIPT/);

    expect(await redis.eval(script, [key("script")], [2])).toBe(2);
    expect(await redis.evalsha(sha, [key("script")], [3])).toBe(5);
    expect(await redis.scriptExists(sha)).toEqual([1]);
    // redis-server never saw the original text: the hit went through the rewrite.
    expect(await direct.script("EXISTS", sha)).toEqual([0]);
  });

  it("answers SCRIPT LOAD with the SHA1 the client expects", async () => {
    const loaded = `${script}\n-- loaded`;

    expect(await redis.scriptLoad(loaded)).toBe(sha1(loaded));
    expect(await redis.evalsha(sha1(loaded), [key("script-loaded")], [7])).toBe(7);
  });
});

describe("the REST protocol by hand", () => {
  it("base64-encodes strings only when asked, leaving numbers and nulls alone", async () => {
    const text = "Saint-Jérôme 🏠";
    await post("/", ["SET", key("raw"), text]);

    expect(await post("/", ["GET", key("raw")])).toEqual({ status: 200, body: { result: text } });
    expect(await post("/", ["GET", key("raw")], { "upstash-encoding": "base64" })).toEqual({
      status: 200,
      body: { result: Buffer.from(text, "utf8").toString("base64") },
    });
    expect(await post("/", ["STRLEN", key("raw")], { "upstash-encoding": "base64" })).toEqual({
      status: 200,
      body: { result: Buffer.byteLength(text, "utf8") },
    });
    expect(await post("/", ["GET", key("raw-missing")], { "upstash-encoding": "base64" })).toEqual({
      status: 200,
      body: { result: null },
    });
  });

  it("returns hashes as flat arrays", async () => {
    await post("/", ["HSET", key("raw-hash"), "f", "v"]);

    expect(await post("/", ["HGETALL", key("raw-hash")])).toEqual({ status: 200, body: { result: ["f", "v"] } });
  });

  it("answers an error reply with HTTP 400 and Redis's message", async () => {
    await post("/", ["SET", key("raw-text"), "abc"]);

    expect(await post("/", ["INCR", key("raw-text")])).toEqual({
      status: 400,
      body: { error: "ERR value is not an integer or out of range" },
    });
  });

  it("discards the whole transaction when Redis refuses a command while queuing", async () => {
    const outcome = await post("/multi-exec", [["SET", key("aborted"), "1"], ["GET"]]);

    expect(outcome.status).toBe(400);
    expect(outcome.body).toMatchObject({ error: expect.stringMatching(/^EXECABORT/) });
    expect(await direct.exists(key("aborted"))).toBe(0);
  });

  it("answers a missing or wrong token with HTTP 401 and an error body", async () => {
    const command = ["SET", key("raw-intruder"), "1"];
    const missing = await fetch(url, { method: "POST", body: JSON.stringify(command) });
    const wrong = await post("/", command, { authorization: "Bearer nope" });

    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ error: expect.any(String) });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ error: expect.any(String) });
    expect(await direct.exists(key("raw-intruder"))).toBe(0);
  });

  it("serves other requests while a blocking command waits", async () => {
    const popped = post("/", ["BLPOP", key("queue"), "10"]);
    await waitFor("BLPOP to block in redis-server", async () => /blocked_clients:[1-9]/.test(await direct.info("clients")));

    // Were BLPOP holding the connection every request shares, this push would
    // queue behind it and BLPOP would time out empty-handed.
    expect(await post("/", ["RPUSH", key("queue"), "lot 42"])).toEqual({ status: 200, body: { result: 1 } });
    expect(await popped).toEqual({ status: 200, body: { result: [key("queue"), "lot 42"] } });
  });

  it("accepts commands in the path", async () => {
    const response = await fetch(`${url}/ping`, { headers: { authorization: `Bearer ${token}` } });

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ result: "PONG" });
  });
});

describe("closing", () => {
  it("resolves while a client still holds a keep-alive connection, and stops answering", async () => {
    const server = await startUpstashRestServer({ redisUrl: inject("redisUrl"), token, port: await freePort() });
    const client = new Redis({ url: server.url, token });
    expect(await client.ping()).toBe("PONG");

    await server.close();

    await expect(fetch(`${server.url}/ping`, { headers: { authorization: `Bearer ${token}` } })).rejects.toThrow();
  });
});
