/**
 * A dispatch hint is only a hint: when pg_net or Vault fails inside the
 * trigger of a transition, the transition still happens and the failure is
 * a warning. pg_net is not installed locally, so the test stands in its SQL
 * surface (`net.http_post`), failing on purpose; the local Vault (see
 * infra/local/supabase-bootstrap.sql) is made to fail the way a real one
 * does, on a secret it cannot decrypt. Every hinting transition runs
 * through them.
 */
import postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { acteJob, claimOne, endBackoff, expireLease, insertJob, jobRow } from "./queue-fixtures.ts";

let database: FreshDatabase;
let sql: postgres.Sql;
const warnings: string[] = [];

beforeAll(async () => {
  database = await createFreshDatabase();
  await database.sql`update private.dispatch_hint_throttle set min_interval = '0', min_insert_interval = '0'`;
  await database.sql.unsafe(`alter database ${database.name} set app.functions_url = 'http://127.0.0.1:9'`);
  await database.sql.unsafe(`alter database ${database.name} set app.dispatch_secret = 'local-dispatch-secret-of-32-characters'`);
  await database.sql.unsafe(`create schema net`);
  // A fresh connection, so the settings above apply; it keeps every warning.
  sql = postgres(database.url, {
    max: 1,
    onnotice: (notice) => {
      if (notice["severity"] === "WARNING") warnings.push(String(notice["message"]));
    },
  });
});
afterAll(async () => {
  await sql?.end();
  await database?.drop();
});
beforeEach(async () => {
  await sql`delete from extraction_queue`;
  await sql.unsafe(`delete from vault.secrets where name = 'functions_url'; drop table if exists net.requests`);
  warnings.length = 0;
});

/** pg_net's http_post (the arguments the queue passes), doing `body` instead of a request. */
async function standInHttpPost(body: string): Promise<void> {
  await sql.unsafe(`
    create or replace function net.http_post(url text, body jsonb, headers jsonb, timeout_milliseconds integer)
    returns bigint language plpgsql as $$ ${body} $$`);
}

/** Every transition that sends a hint, from insert to reap; returns the statuses each one left. */
async function runEveryHintingTransition(): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  const id = await insertJob(sql, acteJob("hint-failure"));
  seen["insert"] = (await jobRow(sql, id)).status_id;

  let job = await claimOne(sql, "registre");
  await sql`select queue.fail_job(${job.id}, ${job.lease_token}, 'registry answered 503', false, 'document_retryable')`;
  seen["fail"] = (await jobRow(sql, id)).status_id;
  await endBackoff(sql, id);

  job = await claimOne(sql, "registre");
  await sql`select queue.release_job(${job.id}, ${job.lease_token})`;
  seen["release"] = (await jobRow(sql, id)).status_id;

  job = await claimOne(sql, "registre");
  await expireLease(sql, id);
  await sql`select queue.reap_expired_leases()`;
  seen["reap"] = (await jobRow(sql, id)).status_id;

  job = await claimOne(sql, "registre");
  await sql`select queue.complete_extraction(${job.id}, ${job.lease_token}, 'actes/hint-failure.pdf')`;
  seen["complete_extraction"] = (await jobRow(sql, id)).status_id;

  job = await claimOne(sql, "acte-ocr");
  await sql`select queue.complete_ocr(${job.id}, ${job.lease_token}, 'texte', 'texte corrigé')`;
  seen["complete_ocr"] = (await jobRow(sql, id)).status_id;

  await sql`select private.dispatch_tick()`;
  return seen;
}

const EVERY_TRANSITION_WORKED = { insert: 1, fail: 1, release: 1, reap: 1, complete_extraction: 3, complete_ocr: 5 };
/** The hints those transitions send, in order (the insert, the release, the reap, the finished PDF, the tick). */
const HINTS_SENT = ["insert", "requeued", "requeued", "ready-for-ocr", "tick"];

describe("a failing hint never breaks a transition", () => {
  it("with a working pg_net, each transition posts its hint (the stand-in is really called)", async () => {
    await sql.unsafe(`create table net.requests (id bigserial primary key, url text, body jsonb, bearer text)`);
    await standInHttpPost(`
      begin
        insert into net.requests (url, body, bearer) values (url, body, headers ->> 'X-Dispatch-Signature');
        return currval('net.requests_id_seq');
      end`);

    expect(await runEveryHintingTransition()).toEqual(EVERY_TRANSITION_WORKED);
    const requests = await sql<{ url: string; reason: string; bearer: string }[]>`
      select url, body ->> 'reason' as reason, bearer from net.requests order by id`;
    // The failure's requeue is still backing off, so it sends none (see the hints migration).
    expect(requests.map((request) => request.reason)).toEqual(HINTS_SENT);
    // Signed (signed-hints.test.ts checks the signature), never the secret.
    expect(requests[0]).toMatchObject({ url: "http://127.0.0.1:9/functions/v1/dispatch", bearer: expect.stringMatching(/^v1=[0-9a-f]{64}$/) });
    expect(warnings).toEqual([]);
  });

  it("when pg_net raises, every transition still happens and each lost hint is a warning", async () => {
    await standInHttpPost(`begin raise exception 'could not enqueue the request: relation "net.http_request_queue" is unavailable'; end`);

    expect(await runEveryHintingTransition()).toEqual(EVERY_TRANSITION_WORKED);
    expect(warnings).toHaveLength(HINTS_SENT.length);
    for (const warning of warnings) {
      expect(warning).toMatch(/^edge function dispatch not called: the hint failed \(SQLSTATE P0001: could not enqueue the request.*\); the transition goes on/);
    }
  });

  it("when reading the Vault secrets raises, every transition still happens", async () => {
    await standInHttpPost(`begin return 1; end`);
    // A secret Vault can no longer decrypt (its key changed, the row is corrupt).
    await sql`insert into vault.secrets (name, secret) values ('functions_url', ${Buffer.from("not a ciphertext").toString("base64")})`;

    expect(await runEveryHintingTransition()).toEqual(EVERY_TRANSITION_WORKED);
    expect(warnings).toHaveLength(HINTS_SENT.length);
    for (const warning of warnings) expect(warning).toMatch(/^edge function dispatch not called: the hint failed \(SQLSTATE 39000: Wrong key or corrupt data\)/);
  });
});
