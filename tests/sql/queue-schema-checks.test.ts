/**
 * Rows that cannot be worked on are impossible, not merely unlikely: an
 * index or acte past extraction carries its PDF's path, OCR never claims a
 * row without one, an OCR result cannot be blank, and pg_cron's own history
 * does not grow forever.
 */
import postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { acteJob, claim, claimOne, expectPostgresError, indexJob, insertJob, jobRow, planJob, SQLSTATE } from "./queue-fixtures.ts";

let database: FreshDatabase;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createFreshDatabase();
  sql = database.sql;
});
afterAll(async () => {
  await database?.drop();
});
beforeEach(async () => {
  await sql`delete from extraction_queue`;
});

describe("an index or acte past extraction has its PDF", () => {
  it.each([
    ["index", 3],
    ["index", 5],
    ["acte", 6],
  ] as const)("a %s row cannot be put in %i without a supabase_path", async (source, status) => {
    const id = await insertJob(sql, source === "index" ? indexJob(`no-path-${status}`) : acteJob(`no-path-${status}`));
    const lease = status === 6 ? sql`, ocr_lease_token = gen_random_uuid(), ocr_lease_expires_at = now() + interval '1 minute'` : sql``;
    await expectPostgresError(sql`update extraction_queue set status_id = ${status} ${lease} where id = ${id}`, {
      code: SQLSTATE.checkViolation,
      message: /violates check constraint "extraction_queue_ocr_input_check"/,
    });
    await expectPostgresError(sql`update extraction_queue set status_id = ${status}, supabase_path = '  ' ${lease} where id = ${id}`, {
      code: SQLSTATE.checkViolation,
      message: /extraction_queue_ocr_input_check/,
    });
    await sql`update extraction_queue set status_id = ${status}, supabase_path = 'index/x.pdf' ${lease} where id = ${id}`;
    expect((await jobRow(sql, id)).status_id).toBe(status);
  });

  it("a plan, which is never OCRed, and a row that failed before extraction need none", async () => {
    const plan = await insertJob(sql, planJob("plan-no-ocr"));
    const failed = await insertJob(sql, indexJob("failed-early"));
    await sql`update extraction_queue set status_id = 5 where id = ${plan}`;
    await sql`update extraction_queue set status_id = 4 where id = ${failed}`;
    expect([(await jobRow(sql, plan)).status_id, (await jobRow(sql, failed)).status_id]).toEqual([5, 4]);
  });

  it("the OCR claim itself asks for the path, should the constraint ever be dropped", async () => {
    // A database where someone dropped the constraint: the claim must still refuse the row.
    const loose = await createFreshDatabase();
    try {
      await loose.sql`alter table extraction_queue drop constraint extraction_queue_ocr_input_check`;
      const [withoutPath, withPath] = [await insertJob(loose.sql, indexJob("loose-1")), await insertJob(loose.sql, indexJob("loose-2"))];
      await loose.sql`update extraction_queue set status_id = 3 where id = ${withoutPath}`;
      await loose.sql`update extraction_queue set status_id = 3, supabase_path = 'index/loose-2.pdf' where id = ${withPath}`;
      expect((await claim(loose.sql, "index-ocr", 10)).map((job) => job.id)).toEqual([withPath]);
    } finally {
      await loose.drop();
    }
  });
});

describe("queue.complete_ocr", () => {
  it.each([
    ["an empty raw text", "", "texte corrigé", /^file_content is required and cannot be blank/],
    ["a raw text of whitespace", " \n\t ", "texte corrigé", /^file_content is required and cannot be blank/],
    ["an empty corrected text", "texte", "", /^boosted_file_content is required and cannot be blank/],
  ])("refuses %s and leaves the job running", async (_, text, boosted, message) => {
    const id = await insertJob(sql, acteJob(`blank-${text.length}-${boosted.length}`));
    const extraction = await claimOne(sql, "registre");
    await sql`select queue.complete_extraction(${extraction.id}, ${extraction.lease_token}, ${`actes/${id}.pdf`})`;
    const ocr = await claimOne(sql, "acte-ocr");
    await expectPostgresError(sql`select queue.complete_ocr(${ocr.id}, ${ocr.lease_token}, ${text}, ${boosted})`, { code: SQLSTATE.invalidParameter, message });
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 6, file_content: null, ocr_lease_token: ocr.lease_token });
  });
});

// `npm run test:pg17` runs on npm's PostgreSQL 17, which has no pg_cron
// (infra/local/postgres-binaries.ts); the cron schedule is tested on 15.
describe.skipIf(process.env["LOCAL_POSTGRES_MAJOR"] === "17")("pg_cron's run history", () => {
  it("a daily job purges cron.job_run_details older than 7 days and keeps the rest", async () => {
    // pg_cron lives in the cluster's `postgres` database, as on Supabase.
    const cron = postgres(inject("adminDatabaseUrl"), { max: 1, onnotice: () => {} });
    try {
      const [job] = await cron<{ schedule: string; command: string }[]>`select schedule, command from cron.job where jobname = 'purge-cron-run-details'`;
      expect(job?.schedule).toMatch(/^\d+ \d+ \* \* \*$/);
      const [old, recent] = await cron<{ runid: number }[]>`
        insert into cron.job_run_details (jobid, runid, database, username, command, status, start_time, end_time)
        values (0, nextval('cron.runid_seq'), 'postgres', 'postgres', 'select 1', 'succeeded', now() - interval '8 days', now() - interval '8 days'),
               (0, nextval('cron.runid_seq'), 'postgres', 'postgres', 'select 1', 'succeeded', now() - interval '6 days', now() - interval '6 days')
        returning runid`;
      await cron.unsafe(job?.command ?? "select 'no purge job'::int");
      const left = await cron<{ runid: number }[]>`select runid from cron.job_run_details where runid in (${old?.runid ?? -1}, ${recent?.runid ?? -1})`;
      expect(left.map((row) => row.runid)).toEqual([recent?.runid]);
    } finally {
      await cron.end();
    }
  });
});
