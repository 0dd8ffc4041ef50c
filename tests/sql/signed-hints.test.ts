/**
 * Dispatch hints through pg_net carry a short-lived signature, never the
 * dispatch secret (issue 19 item 4): pg_net's queue is readable by other
 * roles on hosted Supabase, and the runner role can make the database send
 * a hint. pg_net is not installed locally, so its SQL surface
 * (`net.http_post`) is stood in, keeping what it was given in a table as
 * pg_net's queue keeps the request; the signature is checked with the
 * dispatch function's own verifier.
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonbText, verifyHint } from "../../supabase/functions/_shared/hint-signature.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { createRunnerLogin, type RunnerLogin } from "../runners/lifecycle-test-runner.ts";
import { acteJob, insertJob } from "./queue-fixtures.ts";

const SECRET = "local-dispatch-secret-of-32-characters-x";
let database: FreshDatabase;
let sql: postgres.Sql;
let login: RunnerLogin;

beforeAll(async () => {
  database = await createFreshDatabase();
  await database.sql`update private.dispatch_hint_throttle set min_interval = '0', min_insert_interval = '0'`;
  await database.sql`update private.request_dispatch_throttle set min_interval = '0'`;
  await database.sql.unsafe(`alter database ${database.name} set app.functions_url = 'http://127.0.0.1:9'`);
  await database.sql.unsafe(`alter database ${database.name} set app.dispatch_secret = '${SECRET}'`);
  await database.sql.unsafe(`create schema net`);
  await database.sql.unsafe(`create table net.requests (url text, body jsonb, headers jsonb)`);
  await database.sql.unsafe(`grant usage on schema net to public; grant select on net.requests to public`);
  await database.sql.unsafe(`
    create or replace function net.http_post(url text, body jsonb, headers jsonb, timeout_milliseconds integer)
    returns bigint language plpgsql as $$ begin insert into net.requests values (url, body, headers); return 1; end $$`);
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
  login = await createRunnerLogin(database);
});
afterAll(async () => {
  await sql?.end();
  await login?.drop();
  await database?.drop();
});

describe("a dispatch hint through pg_net", () => {
  it("carries a timestamp and an HMAC of its body, not the secret, and the dispatch function accepts it", async () => {
    await insertJob(sql, acteJob("signed-1"));
    const [request] = await sql<{ url: string; body: unknown; headers: Record<string, string> }[]>`select url, body, headers from net.requests`;
    expect(request?.url).toBe("http://127.0.0.1:9/functions/v1/dispatch");
    expect(JSON.stringify(request)).not.toContain(SECRET);
    const headers = new Headers(request?.headers);
    expect(headers.get("authorization")).toBeNull();
    const body = jsonbText(request?.body);
    expect(await verifyHint(SECRET, headers, body, Date.now())).toEqual({ ok: true });
    // As pg_net may serialize it: the same JSON without jsonb's spacing.
    expect(await verifyHint(SECRET, headers, JSON.stringify(request?.body), Date.now())).toEqual({ ok: true });
    // Good for its own body only, and for minutes only.
    expect(await verifyHint(SECRET, headers, body.replace('"insert"', '"tick"'), Date.now())).toEqual({ ok: false, reason: "wrong dispatch signature" });
    expect(await verifyHint(SECRET, headers, body, Date.now() + 600_000)).toEqual({ ok: false, reason: "dispatch signature expired" });
  });

  it("made by the runner role (request_dispatch) and read back by it from pg_net's queue, reveals no secret", async () => {
    await sql`delete from net.requests`;
    const runner = postgres(login.url, { max: 1, onnotice: () => {} });
    try {
      expect((await runner<{ sent: boolean }[]>`select queue.request_dispatch() as sent`)[0]?.sent).toBe(true);
      const seen = await runner<{ headers: unknown }[]>`select headers from net.requests`;
      expect(seen).toHaveLength(1);
      expect(JSON.stringify(seen)).not.toContain(SECRET);
    } finally {
      await runner.end({ timeout: 1 });
    }
  });
});
