import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdgeRuntime, type EdgeRuntime } from "../../infra/local/edge-runtime.ts";
import { freePort } from "../../infra/local/free-port.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";

describe("the local edge runtime (Deno)", () => {
  let database: FreshDatabase;
  let runtime: EdgeRuntime;

  beforeAll(async () => {
    database = await createFreshDatabase();
    runtime = await startEdgeRuntime({ port: await freePort(), env: { SUPABASE_DB_URL: database.url } });
  });
  afterAll(async () => {
    await runtime?.stop();
    await database?.drop();
  });

  it("serves a function that reads the private Postgres and answers over HTTP", async () => {
    const response = await fetch(`${runtime.url}/functions/v1/health`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { ok: boolean; database: string; migrations: number };
    expect(body.ok).toBe(true);
    expect(body.database).toBe(database.name);
    const [row] = await database.sql<{ count: number }[]>`select count(*)::int as count from supabase_migrations.schema_migrations`;
    expect(body.migrations).toBe(row?.count);
    expect(body.migrations).toBeGreaterThan(0);
  });

  it("answers 503 naming every missing variable for a function whose configuration is incomplete", async () => {
    // Only SUPABASE_DB_URL is set here: dispatch cannot boot, health still serves.
    const response = await fetch(`${runtime.url}/functions/v1/dispatch`, { method: "POST" });
    expect(response.status).toBe(503);
    const body = (await response.json()) as { code: string; message: string };
    expect(body.code).toBe("BOOT_ERROR");
    for (const variable of ["DISPATCH_SECRET is missing", "UPSTASH_REDIS_REST_TOKEN is missing", "ENVIRONMENT is missing", "ECS_CLUSTER is missing"]) {
      expect(body.message).toContain(variable);
    }
  });

  it("answers 404 naming the path for a function that does not exist", async () => {
    const response = await fetch(`${runtime.url}/functions/v1/no-such-function`);
    expect(response.status).toBe(404);
    expect(await response.text()).toContain("/functions/v1/no-such-function");
  });
});
