import type { TestProject } from "vitest/node";
import { freePort } from "../infra/local/free-port.ts";
import { startRedisServer } from "../infra/local/redis-server.ts";
import { startUpstashRestServer } from "../infra/local/upstash-rest-server.ts";
let stop: (() => Promise<void>) | undefined;
export async function setup(project: TestProject) {
  const rs = await startRedisServer({ port: await freePort() });
  const token = "tok-" + Math.random(); const srv = await startUpstashRestServer({ redisUrl: rs.url, token, port: await freePort() });
  project.provide("redisUrl", rs.url);
  project.provide("upstashUrl", srv.url);
  project.provide("upstashToken", token);
  stop = async () => { await srv.close(); await rs.stop(); };
}
export async function teardown() { await stop?.(); }
