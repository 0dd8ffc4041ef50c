/**
 * The `dispatcher` role (issue 19 item 13): the dispatch function's database
 * login reads the backlog and records started tasks through the real
 * dispatch code, and can do nothing else.
 */
import { randomBytes, randomUUID } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBacklog } from "../../supabase/functions/_shared/dispatch.ts";
import { recordTaskStarted } from "../../supabase/functions/_shared/runner-task-records.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { indexJob, insertJob } from "../sql/queue-fixtures.ts";

let database: FreshDatabase;
let dispatcher: postgres.Sql;
const role = `dispatch_login_${randomBytes(3).toString("hex")}`;

beforeAll(async () => {
  database = await createFreshDatabase();
  const password = randomBytes(18).toString("base64url");
  await database.sql.unsafe(`create role ${role} login inherit password '${password}' in role dispatcher`);
  dispatcher = postgres(database.urlAs(role, password), { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await dispatcher?.end({ timeout: 1 });
  if (database === undefined) return;
  await database.sql`select pg_terminate_backend(pid) from pg_stat_activity where usename = ${role}`;
  await database.sql.unsafe(`drop role if exists ${role}`);
  await database.drop();
});

describe("the dispatcher role", () => {
  it("reads the backlog and records a started task, as dispatch does", async () => {
    await insertJob(database.sql, indexJob("7 000 001"));
    const backlog = await readBacklog(dispatcher);
    expect(backlog.registre.waiting).toBe(1);
    const leaseId = randomUUID();
    await recordTaskStarted(dispatcher, { leaseId, kind: "registre", environment: "dev", taskArn: "arn:aws:ecs:ca-central-1:1:task/c/abc", vcpu: 1, ramGb: 3, leaseExpiresAt: Date.now() + 60_000 });
    const [task] = await database.sql<{ n: string }[]>`select count(*) as n from public.runner_tasks where lease_id = ${leaseId}`;
    expect(Number(task?.n)).toBe(1);
  });

  it.each([
    ["read the documents", "select file_content from public.extraction_queue limit 1"],
    ["change a row", "update public.extraction_queue set priority = 9"],
    ["claim a job", "select * from queue.claim_jobs('registre', 'x', 1, 60)"],
    ["complete a job", `select queue.complete_extraction('${randomUUID()}', '${randomUUID()}', 'index/x.pdf')`],
    ["lease a registry account (and its password)", "select * from queue.lease_registry_account('x', 60)"],
    ["send a dispatch hint", "select queue.request_dispatch()"],
    ["read the registry accounts", "select * from public.registry_accounts"],
  ])("cannot %s", async (_what, query) => {
    await expect(dispatcher.unsafe(query)).rejects.toMatchObject({ code: "42501" });
  });
});
