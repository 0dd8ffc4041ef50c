import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { freePort } from "./free-port.ts";
import { applyMigrations } from "./migrations.ts";
import { LOCAL_STACK_DIR } from "./paths.ts";
import { startPostgresCluster } from "./postgres-cluster.ts";
import { startRedisServer } from "./redis-server.ts";
import { ensureSystemPackages } from "./system-packages.ts";
import { startUpstashRestServer } from "./upstash-rest-server.ts";

export interface TestStack {
  adminDatabaseUrl: string;
  templateDatabase: string;
  redisUrl: string;
  upstashUrl: string;
  upstashToken: string;
  stop(): Promise<void>;
}

export const TEMPLATE_DATABASE = "queue_template";

/**
 * The parts every test run needs, on free ports so a running `npm start` (or
 * a second test run) is never disturbed: a throwaway Postgres cluster with a
 * migrated template database, redis-server and the Upstash REST endpoint.
 */
export async function startTestStack(): Promise<TestStack> {
  await ensureSystemPackages();
  const dataDir = join(LOCAL_STACK_DIR, "test-clusters", `${process.pid}-${randomBytes(3).toString("hex")}`);
  const [pgPort, redisPort, upstashPort] = [await freePort(), await freePort(), await freePort()];
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const stopOne of stops.reverse()) await stopOne().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const cluster = await startPostgresCluster({ dataDir, port: pgPort, fast: true });
    stops.push(() => cluster.stop());
    const redis = await startRedisServer({ port: redisPort });
    stops.push(() => redis.stop());
    const upstashToken = randomBytes(24).toString("base64url");
    const upstash = await startUpstashRestServer({ redisUrl: redis.url, token: upstashToken, port: upstashPort });
    stops.push(() => upstash.close());

    // The `postgres` database carries pg_cron, as on Supabase; test files
    // get clones of the template instead, which cannot.
    await applyMigrations(cluster.url("postgres"));
    const admin = postgres(cluster.url("postgres"), { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${TEMPLATE_DATABASE}`);
    await admin.end();
    await applyMigrations(cluster.url(TEMPLATE_DATABASE));

    return {
      adminDatabaseUrl: cluster.url("postgres"),
      templateDatabase: TEMPLATE_DATABASE,
      redisUrl: redis.url,
      upstashUrl: upstash.url,
      upstashToken,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
