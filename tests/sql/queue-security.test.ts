import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { claimOne, createLoginFor, expectPostgresError, indexJob, insertJob, jobRow, SQLSTATE, type RoleLogin } from "./queue-fixtures.ts";

const TABLES = ["extraction_queue", "extraction_status", "extraction_queue_retries", "registry_accounts", "runner_tasks"];
const VIEWS = [
  "extraction_queue_by_status",
  "extraction_queue_stuck_jobs",
  "extraction_queue_recent_errors",
  "extraction_queue_throughput_per_hour",
  "registry_account_health",
  "running_tasks",
  "running_tasks_by_kind",
  "runner_task_exits",
];

/** Runs `query` as `role` (a Supabase API role that cannot log in) inside its own transaction. */
async function runAs(sql: postgres.Sql, role: string, query: string): Promise<unknown> {
  return sql.begin(async (tx) => {
    await tx.unsafe(`set local role ${role}`);
    return tx.unsafe(query);
  });
}

describe("queue security", () => {
  let database: FreshDatabase;
  let runner: RoleLogin;
  beforeAll(async () => {
    database = await createFreshDatabase();
    runner = await createLoginFor(database, "runner");
  });
  afterAll(async () => {
    await runner?.drop();
    await database?.drop();
  });

  it("the runner role can execute the job functions end to end", async () => {
    const id = await insertJob(database.sql, indexJob("S-1"));
    const job = await claimOne(runner.sql, "registre", "runner-s");
    await runner.sql`select queue.heartbeat_job(${job.id}, ${job.lease_token}, 120)`;
    await runner.sql`select queue.complete_extraction(${job.id}, ${job.lease_token}, 'index/S-1.pdf')`;
    const ocr = await claimOne(runner.sql, "index-ocr", "runner-s");
    await runner.sql`select queue.fail_job(${ocr.id}, ${ocr.lease_token}, 'Gemini 503', false)`;
    await database.sql`update extraction_queue set available_at = now() where id = ${id}`;
    const again = await claimOne(runner.sql, "index-ocr", "runner-s");
    await runner.sql`select queue.release_job(${again.id}, ${again.lease_token})`;
    const last = await claimOne(runner.sql, "index-ocr", "runner-s");
    await runner.sql`select queue.complete_ocr(${last.id}, ${last.lease_token}, 'texte', 'texte corrigé')`;
    expect(await jobRow(database.sql, id)).toMatchObject({ status_id: 5, file_content: "texte", ocr_attempts: 2 });
  });

  it.each([
    "select * from extraction_queue",
    "update extraction_queue set status_id = 1",
    "insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre) values ('index', '1', 'Laval', 'Cadastre du Québec')",
    "delete from extraction_queue",
    "select * from registry_accounts",
    "select * from extraction_queue_by_status",
    "select * from registry_account_health",
  ])("the runner role cannot run: %s", async (query) => {
    await expectPostgresError(runner.sql.unsafe(query), { code: SQLSTATE.insufficientPrivilege, message: /^permission denied for (table|view) / });
  });

  it.each([
    ["select queue.reap_expired_leases()", /^permission denied for function reap_expired_leases$/],
    ["select queue.retry_job(gen_random_uuid(), 'me', 'because')", /^permission denied for function retry_job$/],
    ["select * from queue.queue_backlog()", /^permission denied for function queue_backlog$/],
    ["select private.invoke_edge_function('dispatch', '{}')", /^permission denied for schema private$/],
  ] as const)("the runner role cannot call operator and internal functions: %s", async (query, message) => {
    await expectPostgresError(runner.sql.unsafe(query), { code: SQLSTATE.insufficientPrivilege, message });
  });

  it.each(["anon", "authenticated"])("%s sees nothing: no table, no view, no queue function", async (role) => {
    await insertJob(database.sql, indexJob(`visible-to-${role}?`));
    for (const relation of [...TABLES, ...VIEWS]) {
      await expectPostgresError(runAs(database.sql, role, `select * from public.${relation}`), {
        code: SQLSTATE.insufficientPrivilege,
        message: /^permission denied for (table|view) /,
      });
    }
    for (const query of ["select * from queue.claim_jobs('registre', 'x', 1, 60)", "select * from queue.queue_backlog()"]) {
      await expectPostgresError(runAs(database.sql, role, query), { code: SQLSTATE.insufficientPrivilege, message: /^permission denied for schema queue$/ });
    }
  });

  it("row level security is enabled on every table in public", async () => {
    const rows = await database.sql<{ table: string; rls: boolean }[]>`
      select relname as table, relrowsecurity as rls
      from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r'
      order by relname`;
    expect(rows.map((row) => row.table)).toEqual([...TABLES].sort());
    for (const row of rows) expect(row, row.table).toMatchObject({ rls: true });
  });

  it("no table, view or function is granted to anon or authenticated", async () => {
    const grants = await database.sql`
      select table_name, grantee, privilege_type from information_schema.role_table_grants
      where grantee in ('anon', 'authenticated', 'PUBLIC') and table_schema in ('public', 'queue', 'private')
      union all
      select routine_name, grantee, privilege_type from information_schema.role_routine_grants
      where grantee in ('anon', 'authenticated') and routine_schema in ('public', 'queue', 'private')`;
    expect(grants).toEqual([]);
  });

  it("every security definer function has a fixed, empty search_path", async () => {
    const rows = await database.sql<{ name: string; config: string[] | null }[]>`
      select oid::regprocedure::text as name, proconfig as config
      from pg_proc where prosecdef and pronamespace in ('queue'::regnamespace, 'private'::regnamespace)`;
    expect(rows.length).toBeGreaterThan(10);
    for (const row of rows) expect(row.config, row.name).toEqual(['search_path=""']);
  });

  it("the runner role executes only the runner's functions", async () => {
    const rows = await database.sql<{ name: string }[]>`
      select p.proname as name from pg_proc p
      where p.pronamespace in ('queue'::regnamespace, 'private'::regnamespace)
        and has_function_privilege('runner', p.oid, 'execute')
        and p.proname not in ('document_sources', 'acte_types')
      order by 1`;
    expect(rows.map((row) => row.name)).toEqual([
      "claim_jobs",
      "complete_extraction",
      "complete_extraction_and_claim_next",
      "complete_ocr",
      "complete_ocr_and_claim_next",
      "fail_job",
      "heartbeat_job",
      "heartbeat_registry_account",
      "lease_registry_account",
      "record_task_finished",
      "record_task_heartbeat",
      "release_job",
      "release_registry_account",
      "report_registry_account",
      "request_dispatch",
    ]);
  });
});
