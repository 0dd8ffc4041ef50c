/**
 * What the runner credential may ask of the queue is capped in SQL (issue
 * 19 item 11), checked as a runner login on the real database: batch size
 * and lease length, one registry account per worker and a few account
 * leases a minute, request_dispatch() at most once per interval.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { createRunnerLogin, type RunnerLogin } from "../runners/lifecycle-test-runner.ts";
import { claimOne, expectPostgresError, indexJob, insertJob, SQLSTATE } from "./queue-fixtures.ts";
import postgres from "postgres";

let database: FreshDatabase;
let login: RunnerLogin;
let runner: postgres.Sql;

beforeAll(async () => {
  database = await createFreshDatabase();
  login = await createRunnerLogin(database);
  runner = postgres(login.url, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await runner?.end({ timeout: 1 });
  await login?.drop();
  await database?.drop();
});
beforeEach(async () => {
  await database.sql`delete from extraction_queue`;
  await database.sql`delete from registry_accounts`;
});

async function addAccounts(count: number): Promise<void> {
  for (let n = 0; n < count; n += 1) {
    await database.sql`insert into registry_accounts (username, password, is_active) values (${`notaire-${n}`}, ${`secret-${n}`}, true)`;
  }
}

describe("the runner credential's caps", () => {
  it.each([
    { query: () => runner`select * from queue.claim_jobs('registre', 'w', 1000, 60)`, message: /^batch_size must be between 1 and 50; got 1000$/ },
    { query: () => runner`select * from queue.claim_jobs('registre', 'w', 1, 86400)`, message: /^lease_seconds must be between 1 and 3600; got 86400$/ },
    { query: () => runner`select * from queue.lease_registry_account('w', 86400)`, message: /^lease_seconds must be between 1 and 3600; got 86400$/ },
  ])("refuses, naming the argument: $message", async ({ query, message }) => {
    await expectPostgresError(query(), { code: SQLSTATE.invalidParameter, message });
  });

  it("refuses a heartbeat that would stretch a job lease to a day", async () => {
    await insertJob(database.sql, indexJob("1 100 001"));
    const job = await claimOne(database.sql, "registre");
    await expectPostgresError(runner`select queue.heartbeat_job(${job.id}, ${job.lease_token}, 86400)`, {
      code: SQLSTATE.invalidParameter,
      message: /^lease_seconds must be between 1 and 3600; got 86400$/,
    });
  });

  it("one registry account per worker: asking again gives back the one it held", async () => {
    await addAccounts(3);
    await runner`select * from queue.lease_registry_account('worker-a', 600)`;
    await runner`select * from queue.lease_registry_account('worker-a', 600)`;
    const [held] = await database.sql<{ count: number }[]>`
      select count(*)::int as count from registry_accounts where leased_by = 'worker-a' and lease_expires_at > now()`;
    expect(held?.count).toBe(1);
  });

  it("leasing every account in turn stops at the per-minute limit (the answer is none free)", async () => {
    await addAccounts(25);
    const leased: string[] = [];
    for (let n = 0; n < 25; n += 1) {
      const rows = await runner<{ username: string }[]>`select * from queue.lease_registry_account(${`harvester-${n}`}, 60)`;
      if (rows[0] !== undefined) leased.push(rows[0].username);
    }
    expect(leased).toHaveLength(20);
  });

  it("request_dispatch() sends at most one hint per interval", async () => {
    await insertJob(database.sql, indexJob("1 100 002"));
    await database.sql`update private.request_dispatch_throttle set min_interval = '1 hour', last_sent_at = '-infinity'`;
    const sent: boolean[] = [];
    for (let n = 0; n < 5; n += 1) sent.push((await runner<{ sent: boolean }[]>`select queue.request_dispatch() as sent`)[0]?.sent ?? false);
    expect(sent).toEqual([true, false, false, false, false]);
  });
});
