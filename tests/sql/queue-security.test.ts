import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { claimOne, createLoginFor, expectPostgresError, indexJob, insertJob, jobRow, SQLSTATE, type RoleLogin } from "./queue-fixtures.ts";

const TABLES = ["error_kind", "extraction_queue", "extraction_status", "extraction_queue_retries", "ocr_token_usage", "registre_spend_policy", "registry_accounts", "registry_purchases", "runner_tasks"];
const VIEWS = [
  "extraction_queue_by_status",
  "extraction_queue_stuck_jobs",
  "extraction_queue_recent_errors",
  "extraction_queue_throughput_per_hour",
  "ocr_tokens_by_day",
  "registry_account_health",
  "registry_spend_per_day",
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

/**
 * Every grant to a client role (anon, authenticated) or to PUBLIC on the
 * queue's schemas and what is in them. The two value lists the check
 * constraints call are granted to PUBLIC on purpose (see the input
 * validation migration).
 */
async function clientRoleGrants(sql: postgres.Sql): Promise<{ object: string; grantee: string; privilege_type: string }[]> {
  return sql<{ object: string; grantee: string; privilege_type: string }[]>`
    select table_name as object, grantee, privilege_type from information_schema.role_table_grants
    where grantee in ('anon', 'authenticated', 'PUBLIC') and table_schema in ('public', 'queue', 'private')
    union all
    select object_name, grantee, privilege_type from information_schema.usage_privileges
    where grantee in ('anon', 'authenticated', 'PUBLIC') and object_schema in ('public', 'queue', 'private')
    union all
    select routine_name, grantee, privilege_type from information_schema.role_routine_grants
    where grantee in ('anon', 'authenticated', 'PUBLIC') and routine_schema in ('public', 'queue', 'private')
      and not (grantee = 'PUBLIC' and routine_schema = 'private' and routine_name in ('document_sources', 'acte_types'))
    union all
    select n.nspname, r.rolname, 'USAGE'
    from pg_namespace n cross join (select 'anon' as rolname union all select 'authenticated') r
    where n.nspname in ('queue', 'private') and has_schema_privilege(r.rolname, n.oid, 'usage')
    union all
    -- PUBLIC's rights on a schema: those of a role that is a member of nothing.
    select n.nspname, 'PUBLIC', 'USAGE'
    from pg_namespace n
    where n.nspname in ('queue', 'private')
      and exists (select from aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a where a.grantee = 0 and a.privilege_type = 'USAGE')
    order by 1, 2, 3`;
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
    await runner.sql`select queue.fail_job(${ocr.id}, ${ocr.lease_token}, 'Gemini 503', false, 'document_retryable')`;
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

  it("no table, view, sequence, schema or function is granted to anon, authenticated or PUBLIC", async () => {
    expect(await clientRoleGrants(database.sql)).toEqual([]);
  });

  it("the local cluster has Supabase's default privileges on public, so a forgotten revoke is caught", async () => {
    // What Supabase's initial schema sets up: whatever the migration role
    // creates in public is granted in full to the API roles.
    const defaults = await database.sql<{ objects: string; grantees: string[] }[]>`
      select case d.defaclobjtype when 'r' then 'tables' when 'f' then 'functions' when 'S' then 'sequences' end as objects,
             array(select distinct a.grantee::regrole::text from aclexplode(d.defaclacl) a
                   where a.grantee <> 0 and a.grantee::regrole::text <> 'postgres' order by 1) as grantees
      from pg_default_acl d
      where d.defaclnamespace = 'public'::regnamespace and d.defaclrole = 'postgres'::regrole
      order by 1`;
    expect(defaults).toEqual([
      { objects: "functions", grantees: ["anon", "authenticated", "service_role"] },
      { objects: "sequences", grantees: ["anon", "authenticated", "service_role"] },
      { objects: "tables", grantees: ["anon", "authenticated", "service_role"] },
    ]);

    // A migration that forgets its revoke: the grants check above now fails.
    await database.sql`create table public.forgot_to_revoke (id bigint generated always as identity, note text)`;
    await database.sql`create function public.forgot_to_revoke_too() returns int language sql as 'select 1'`;
    try {
      expect(await runAs(database.sql, "anon", "select count(*)::int as n from public.forgot_to_revoke")).toEqual([{ n: 0 }]);
      const leaks = await clientRoleGrants(database.sql);
      expect(leaks).toEqual(
        expect.arrayContaining([
          { object: "forgot_to_revoke", grantee: "anon", privilege_type: "SELECT" },
          { object: "forgot_to_revoke_id_seq", grantee: "authenticated", privilege_type: "USAGE" },
          { object: "forgot_to_revoke_too", grantee: "PUBLIC", privilege_type: "EXECUTE" },
          { object: "forgot_to_revoke_too", grantee: "anon", privilege_type: "EXECUTE" },
        ]),
      );
    } finally {
      await database.sql`drop function public.forgot_to_revoke_too()`;
      await database.sql`drop table public.forgot_to_revoke`;
    }
  });

  it("a login with nothing but PUBLIC's privileges reads nothing and runs nothing", async () => {
    const role = `${database.name}_nobody`;
    const password = "nobody-password-0123456789";
    await database.sql.unsafe(`create role ${role} login password '${password}'`);
    const nobody = postgres(database.urlAs(role, password), { max: 1, onnotice: () => {} });
    try {
      for (const relation of [...TABLES, ...VIEWS]) {
        await expectPostgresError(nobody.unsafe(`select * from public.${relation}`), {
          code: SQLSTATE.insufficientPrivilege,
          message: /^permission denied for (table|view) /,
        });
      }
      for (const query of ["select * from queue.claim_jobs('registre', 'x', 1, 60)", "select private.dispatch_tick()"]) {
        await expectPostgresError(nobody.unsafe(query), { code: SQLSTATE.insufficientPrivilege, message: /^permission denied for schema (queue|private)$/ });
      }
    } finally {
      await nobody.end();
      await database.sql.unsafe(`drop role if exists ${role}`);
    }
  });

  it("every security definer function has a fixed, empty search_path", async () => {
    const rows = await database.sql<{ name: string; config: string[] | null }[]>`
      select oid::regprocedure::text as name, proconfig as config
      from pg_proc where prosecdef and pronamespace in ('queue'::regnamespace, 'private'::regnamespace)`;
    expect(rows.length).toBeGreaterThan(10);
    // Planner settings may join it (the update hint trigger turns nested loops off), never another search_path.
    for (const row of rows) expect(row.config?.filter((setting) => setting.startsWith("search_path=")), row.name).toEqual(['search_path=""']);
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
      "copy_ocr_text",
      "fail_job",
      "find_reusable_document",
      "heartbeat_job",
      "heartbeat_registry_account",
      "lease_registry_account",
      "park_purchased_pdf",
      "parked_purchased_pdf",
      "record_ocr_tokens",
      "record_purchase_storage",
      "record_registry_purchase",
      "record_task_finished",
      "record_task_heartbeat",
      "registre_spend_today",
      "release_job",
      "release_job_after_infrastructure_failure",
      "release_registry_account",
      "report_registry_account",
      "request_dispatch",
    ]);
  });
});
