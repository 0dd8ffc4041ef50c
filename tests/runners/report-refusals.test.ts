/**
 * A report that can never succeed must not hold the job, the task and its
 * capacity until SIGKILL: the database's refusals are told apart by SQLSTATE
 * class, and a report that keeps failing for RUNNER_REPORT_DEADLINE_SECONDS
 * gives up while the heartbeat would still hold the lease. The faults are
 * real errors of the real database (a trigger raising the SQLSTATE, a
 * revoked grant), met by the real runner lifecycle.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { RUNNER_EXIT_CODES, type JobHandler } from "../../runners/lifecycle/run-runner.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { acteJob, insertJob, jobRow } from "../sql/queue-fixtures.ts";
import { runInProcess } from "./in-process-runner.ts";
import { createRunnerLogin, type RunnerLogin } from "./lifecycle-test-runner.ts";

let database: FreshDatabase;
let login: RunnerLogin;

beforeAll(async () => {
  database = await createFreshDatabase();
  login = await createRunnerLogin(database);
});
afterEach(async () => {
  await database.sql`drop trigger if exists refuse_ocr_text on extraction_queue`;
  await database.sql`grant execute on function queue.complete_ocr, queue.complete_ocr_and_claim_next to runner`;
  await database.sql`delete from extraction_queue`;
});
afterAll(async () => {
  await login?.drop();
  await database?.drop();
});

/** Every write of an OCR text fails with `sqlstate`, as the database would. */
async function refuseOcrText(sqlstate: string, message: string): Promise<void> {
  await database.sql.unsafe(`
    create or replace function pg_temp_refuse_ocr_text() returns trigger language plpgsql as $$
    begin raise exception '${message}' using errcode = '${sqlstate}'; end $$`);
  await database.sql.unsafe(`
    create trigger refuse_ocr_text before update on extraction_queue
    for each row when (new.file_content is distinct from old.file_content) execute function pg_temp_refuse_ocr_text()`);
}

async function ocrReadyJob(number: string): Promise<string> {
  const id = await insertJob(database.sql, acteJob(number));
  await database.sql`update extraction_queue set status_id = 3, supabase_path = ${`actes/${number.replaceAll(" ", "")}.pdf`} where id = ${id}`;
  return id;
}

const ocrText: JobHandler = async () => ({ kind: "ocr", fileContent: "texte", boostedFileContent: "texte corrigé" });

describe("a report the database keeps refusing", () => {
  test("a failure that may pass (53300 too many connections) is retried only until the report deadline; the lease then lapses for the reaper", async () => {
    await refuseOcrText("53300", "sorry, too many clients already");
    const id = await ocrReadyJob("53 300 001");
    const startedAt = Date.now();
    const run = await runInProcess({
      name: "report-deadline",
      kind: "acte-ocr",
      databaseUrl: login.url,
      handle: ocrText,
      env: { JOB_LEASE_SECONDS: "30", RUNNER_REPORT_DEADLINE_SECONDS: "2", RUNNER_IDLE_EXIT_SECONDS: "0.5" },
    });

    expect(await run.exited).toBe(RUNNER_EXIT_CODES.ok);
    // Well before the 30 s lease: the heartbeat no longer holds it.
    expect(Date.now() - startedAt).toBeLessThan(15_000);
    expect(run.logs().some((line) => line.msg.startsWith("complete could not be recorded before the report deadline"))).toBe(true);
    // Nothing lost and no attempt burnt by the runner: the row waits in 6 for its lease to lapse and the reaper.
    const row = await jobRow(database.sql, id);
    expect(row).toMatchObject({ status_id: 6, ocr_attempts: 1, file_content: null });
    const [lease] = await database.sql<{ expires_at: Date }[]>`select ocr_lease_expires_at as expires_at from extraction_queue where id = ${id}`;
    expect(lease?.expires_at.getTime()).toBeLessThan(Date.now() + 30_000);
  }, 30_000);

  test("a refusal of the values (54000, a tsvector over 1 MB) is a failed attempt at once, not a retry loop", async () => {
    await refuseOcrText("54000", "string is too long for tsvector (1580532 bytes, max 1048575 bytes)");
    const id = await ocrReadyJob("54 000 002");
    const run = await runInProcess({ name: "report-54000", kind: "acte-ocr", databaseUrl: login.url, handle: ocrText, env: { JOB_LEASE_SECONDS: "30", RUNNER_MAX_JOBS: "1" } });

    expect(await run.exited).toBe(RUNNER_EXIT_CODES.ok);
    expect(await jobRow(database.sql, id)).toMatchObject({ status_id: 3, ocr_attempts: 1, file_content: null });
    expect((await jobRow(database.sql, id)).ocr_error).toMatch(/the result was refused: .*too long for tsvector/);
  }, 30_000);

  test("a rejection of the runner (42501, a grant missing) releases the job without an attempt and stops the pool as misconfigured", async () => {
    await database.sql`revoke execute on function queue.complete_ocr, queue.complete_ocr_and_claim_next from runner`;
    const id = await ocrReadyJob("42 501 001");
    const run = await runInProcess({ name: "report-42501", kind: "acte-ocr", databaseUrl: login.url, handle: ocrText, env: { JOB_LEASE_SECONDS: "30" } });

    expect(await run.exited).toBe(RUNNER_EXIT_CODES.configuration);
    expect(await jobRow(database.sql, id)).toMatchObject({ status_id: 3, ocr_attempts: 0, infrastructure_releases: 1 });
    const [kind] = await database.sql<{ error_kind: string }[]>`select error_kind from extraction_queue where id = ${id}`;
    expect(kind?.error_kind).toBe("configuration");
  }, 30_000);
});
