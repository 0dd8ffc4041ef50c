/**
 * Helpers shared by the SQL tests of the job queue: rows to insert, the
 * error contract of the transition functions, a login for the `runner` role,
 * and the two ways tests move time forward without sleeping (expiring a
 * lease, ending a backoff) by editing the row as the superuser.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { expect } from "vitest";
import type { FreshDatabase } from "../helpers/fresh-database.ts";

/** SQLSTATEs raised by the transition functions (see the lease-fencing migration). */
export const SQLSTATE = {
  leaseNotHeld: "QL001",
  terminalStatus: "QL002",
  notRetryable: "QL003",
  invalidParameter: "22023",
  checkViolation: "23514",
  insufficientPrivilege: "42501",
  noDataFound: "P0002",
} as const;

export interface JobRow {
  document_source: string;
  document_number: string;
  circonscription_fonciere: string;
  cadastre: string | null;
  designation_secondaire: string | null;
  acte_type: string | null;
  priority: number;
}

export function indexJob(number: string, overrides: Partial<JobRow> = {}): JobRow {
  return {
    document_source: "index",
    document_number: number,
    circonscription_fonciere: "Montréal",
    cadastre: "Cadastre du Québec",
    designation_secondaire: null,
    acte_type: null,
    priority: 0,
    ...overrides,
  };
}

export function acteJob(number: string, overrides: Partial<JobRow> = {}): JobRow {
  return {
    document_source: "acte",
    document_number: number,
    circonscription_fonciere: "Laval",
    cadastre: null,
    designation_secondaire: null,
    acte_type: "Acte",
    priority: 0,
    ...overrides,
  };
}

export function planJob(number: string, overrides: Partial<JobRow> = {}): JobRow {
  return {
    document_source: "plan_cadastraux",
    document_number: number,
    circonscription_fonciere: "Québec",
    cadastre: "Cadastre du Québec",
    designation_secondaire: null,
    acte_type: null,
    priority: 0,
    ...overrides,
  };
}

/** Inserts the rows in one statement and returns their ids in insertion order. */
export async function insertJobs(sql: postgres.Sql, rows: readonly JobRow[]): Promise<string[]> {
  const columns: (keyof JobRow)[] = [
    "document_source",
    "document_number",
    "circonscription_fonciere",
    "cadastre",
    "designation_secondaire",
    "acte_type",
    "priority",
  ];
  const inserted = await sql<{ id: string }[]>`
    insert into extraction_queue ${sql(rows.map((row) => ({ ...row })), columns)}
    returning id`;
  return inserted.map((row) => row.id);
}

export async function insertJob(sql: postgres.Sql, row: JobRow): Promise<string> {
  const [id] = await insertJobs(sql, [row]);
  if (id === undefined) throw new Error("insert returned no id");
  return id;
}

export interface Claim {
  id: string;
  lease_token: string;
  lease_expires_at: Date;
  document_source: string;
  supabase_path: string | null;
  attempt: number;
}

export async function claim(sql: postgres.Sql, kind: string, batchSize = 1, workerId = "test-runner", leaseSeconds = 300): Promise<Claim[]> {
  return sql<Claim[]>`select * from queue.claim_jobs(${kind}, ${workerId}, ${batchSize}, ${leaseSeconds})`;
}

/** Claims exactly one job of `kind` and fails the test when none is claimable. */
export async function claimOne(sql: postgres.Sql, kind: string, workerId = "test-runner"): Promise<Claim> {
  const [job] = await claim(sql, kind, 1, workerId);
  if (!job) throw new Error(`no ${kind} job was claimable`);
  return job;
}

export interface QueueRow {
  id: string;
  status_id: number;
  attempts: number;
  ocr_attempts: number;
  error_message: string | null;
  ocr_error: string | null;
  supabase_path: string | null;
  file_content: string | null;
  boosted_file_content: string | null;
  extraction_lease_token: string | null;
  ocr_lease_token: string | null;
  available_at: Date;
  worker_id: string | null;
  ocr_worker_id: string | null;
  stalls: number;
  ocr_stalls: number;
  infrastructure_releases: number;
}

export async function jobRow(sql: postgres.Sql, id: string): Promise<QueueRow> {
  const [row] = await sql<QueueRow[]>`
    select id, status_id, attempts, ocr_attempts, error_message, ocr_error, supabase_path,
           file_content, boosted_file_content, extraction_lease_token, ocr_lease_token,
           available_at, worker_id, ocr_worker_id, stalls, ocr_stalls, infrastructure_releases
    from extraction_queue where id = ${id}`;
  if (!row) throw new Error(`job ${id} not found`);
  return row;
}

/** Stands in for a lease running out: moves the job's lease expiry into the past. */
export async function expireLease(sql: postgres.Sql, id: string): Promise<void> {
  await sql`
    update extraction_queue
    set extraction_lease_expires_at = case when status_id = 2 then now() - interval '1 second' end,
        ocr_lease_expires_at = case when status_id = 6 then now() - interval '1 second' end
    where id = ${id} and status_id in (2, 6)`;
}

/** Stands in for a retry backoff running out: makes the job claimable now. */
export async function endBackoff(sql: postgres.Sql, id: string): Promise<void> {
  await sql`update extraction_queue set available_at = now() where id = ${id}`;
}

/** Seconds between `available_at` and the database's now(). */
export async function backoffSeconds(sql: postgres.Sql, id: string): Promise<number> {
  const [row] = await sql<{ seconds: number }[]>`
    select extract(epoch from available_at - now())::float8 as seconds from extraction_queue where id = ${id}`;
  if (!row) throw new Error(`job ${id} not found`);
  return row.seconds;
}

/** Runs `query` and asserts it fails with `code`, a message matching `message` and, when given, the error's column. */
export async function expectPostgresError(
  query: Promise<unknown>,
  expected: { code: string; message: RegExp; column?: string },
): Promise<postgres.PostgresError> {
  let caught: unknown;
  try {
    await query;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected SQLSTATE ${expected.code}`).toBeInstanceOf(postgres.PostgresError);
  const error = caught as postgres.PostgresError;
  expect({ code: error.code, message: error.message }).toEqual({ code: expected.code, message: expect.stringMatching(expected.message) });
  if (expected.column !== undefined) expect(error.column_name).toBe(expected.column);
  return error;
}

export interface RoleLogin {
  role: string;
  /** Connection URL of the login, for tests that need their own connections. */
  url: string;
  sql: postgres.Sql;
  drop(): Promise<void>;
}

/**
 * A throwaway login role that is a member of `memberOf` (e.g. `runner`), so a
 * test connects with exactly that role's privileges without giving the
 * cluster-wide role itself a password. The caller must drop it.
 */
export async function createLoginFor(database: FreshDatabase, memberOf: string, options: { max?: number } = {}): Promise<RoleLogin> {
  const role = `${database.name}_${memberOf}`;
  const password = randomBytes(18).toString("hex");
  await database.sql.unsafe(`create role ${role} login inherit password '${password}' in role ${memberOf}`);
  const url = database.urlAs(role, password);
  const sql = postgres(url, { max: options.max ?? 2, prepare: false, onnotice: () => {} });
  return {
    role,
    url,
    sql,
    async drop() {
      await sql.end({ timeout: 5 });
      await database.sql.unsafe(`drop role if exists ${role}`);
    },
  };
}
