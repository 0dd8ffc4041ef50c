/**
 * Interruptions that are not the document's fault spend no attempt: an
 * infrastructure release (the runner could not work) backs the job off and
 * gives up after max_infrastructure_releases in a row; a release at shutdown
 * is claimable at once; every release, failure and reap clears the stage's
 * worker id; retry_job gives the counters a fresh start.
 */
import type postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import {
  acteJob,
  backoffSeconds,
  claim,
  claimOne,
  endBackoff,
  expectPostgresError,
  indexJob,
  insertJob,
  jobRow,
  SQLSTATE,
  type Claim,
} from "./queue-fixtures.ts";

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

const releaseForInfrastructure = (job: Claim, error = "Gemini answered 429 (quota exhausted)") =>
  sql<{ status_id: number }[]>`select queue.release_job_after_infrastructure_failure(${job.id}, ${job.lease_token}, ${error}, 'infrastructure') as status_id`.then(
    (rows) => rows[0]?.status_id,
  );
const completeExtraction = (job: Claim) =>
  sql`select queue.complete_extraction(${job.id}, ${job.lease_token}, ${`actes/${job.id}.pdf`})`;

describe("queue.release_job_after_infrastructure_failure", () => {
  it("spends no attempt, records why, clears the worker and backs the job off instead of handing it straight back", async () => {
    const id = await insertJob(sql, indexJob("infra-1"));
    const job = await claimOne(sql, "registre", "runner-without-storage");

    expect(await releaseForInfrastructure(job, "Storage unreachable: fetch failed")).toBe(1);

    expect(await jobRow(sql, id)).toMatchObject({
      status_id: 1,
      attempts: 0,
      infrastructure_releases: 1,
      worker_id: null,
      extraction_lease_token: null,
      error_message: expect.stringMatching(/^released after an infrastructure failure \(1 of 10 in a row; no attempt spent; .*\): Storage unreachable: fetch failed$/),
    });
    expect(await backoffSeconds(sql, id)).toBeGreaterThan(10);
    // The claim honours the backoff.
    expect(await claim(sql, "registre")).toEqual([]);
    await endBackoff(sql, id);
    expect((await claimOne(sql, "registre")).attempt).toBe(1);
  });

  it("backs off longer after each release in a row, up to a cap", async () => {
    const id = await insertJob(sql, indexJob("infra-backoff"));
    const waits: number[] = [];
    for (let release = 0; release < 8; release += 1) {
      await releaseForInfrastructure(await claimOne(sql, "registre"));
      waits.push(Math.round(await backoffSeconds(sql, id)));
      await endBackoff(sql, id);
    }
    expect(waits).toEqual([15, 30, 60, 120, 240, 480, 600, 600]);
  });

  it("ten infrastructure releases in a row end the job in 4 with a message saying so, with every attempt left", async () => {
    const id = await insertJob(sql, acteJob("infra-10"));
    const statuses: number[] = [];
    for (let release = 0; release < 10; release += 1) {
      statuses.push((await releaseForInfrastructure(await claimOne(sql, "registre"), "connect ECONNREFUSED 10.0.0.7:443")) ?? -1);
      await endBackoff(sql, id);
    }
    expect(statuses).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 4]);
    expect(await jobRow(sql, id)).toMatchObject({
      status_id: 4,
      attempts: 0,
      infrastructure_releases: 10,
      error_message:
        "gave up after 10 infrastructure failures in a row (the runners could not work; no attempt was spent on the document): connect ECONNREFUSED 10.0.0.7:443",
    });
    // Nothing cycles: the job is terminal.
    expect(await claim(sql, "registre")).toEqual([]);
  });

  it("the limit is the row's max_infrastructure_releases, and an OCR stage counts the same way", async () => {
    const id = await insertJob(sql, acteJob("infra-ocr"));
    await sql`update extraction_queue set max_infrastructure_releases = 2 where id = ${id}`;
    await completeExtraction(await claimOne(sql, "registre"));
    expect(await releaseForInfrastructure(await claimOne(sql, "acte-ocr", "ocr-runner"))).toBe(3);
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 3, ocr_attempts: 0, ocr_worker_id: null, ocr_error: expect.stringMatching(/^released after/) });
    await endBackoff(sql, id);
    expect(await releaseForInfrastructure(await claimOne(sql, "acte-ocr"))).toBe(4);
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 4, ocr_attempts: 0, infrastructure_releases: 2, supabase_path: `actes/${id}.pdf` });
  });

  it("only a run in a row counts: a completed stage or a failed attempt starts it again", async () => {
    const id = await insertJob(sql, acteJob("infra-reset"));
    await releaseForInfrastructure(await claimOne(sql, "registre"));
    await endBackoff(sql, id);
    await completeExtraction(await claimOne(sql, "registre"));
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 3, infrastructure_releases: 0 });

    await releaseForInfrastructure(await claimOne(sql, "acte-ocr"));
    await endBackoff(sql, id);
    const ocr = await claimOne(sql, "acte-ocr");
    await sql`select queue.fail_job(${ocr.id}, ${ocr.lease_token}, 'Gemini answered 500', false, 'document_retryable')`;
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 3, ocr_attempts: 1, infrastructure_releases: 0 });
  });

  it("is fenced like every transition, and needs an error", async () => {
    const id = await insertJob(sql, indexJob("infra-fenced"));
    const job = await claimOne(sql, "registre");
    const before = await jobRow(sql, id);
    await expectPostgresError(releaseForInfrastructure({ ...job, lease_token: crypto.randomUUID() }), {
      code: SQLSTATE.leaseNotHeld,
      message: /^release_job_after_infrastructure_failure refused/,
    });
    await expectPostgresError(releaseForInfrastructure(job, " "), { code: SQLSTATE.invalidParameter, message: /^error is required/ });
    expect(await jobRow(sql, id)).toEqual(before);
  });
});

describe("worker ids name only the runner holding a job", () => {
  it("release at shutdown and fail clear the stage's worker id; completion keeps it on record", async () => {
    const [released, failed, completed] = [await insertJob(sql, indexJob("w-1")), await insertJob(sql, indexJob("w-2")), await insertJob(sql, acteJob("w-3"))];
    const jobs = await claim(sql, "registre", 3, "runner-w");
    const byId = (id: string) => jobs.find((job) => job.id === id) ?? expect.unreachable(`job ${id} not claimed`);
    await sql`select queue.release_job(${released}, ${byId(released).lease_token})`;
    await sql`select queue.fail_job(${failed}, ${byId(failed).lease_token}, 'timeout', false, 'document_retryable')`;
    await completeExtraction(byId(completed));

    expect(await jobRow(sql, released)).toMatchObject({ status_id: 1, worker_id: null, available_at: expect.any(Date) });
    expect(await backoffSeconds(sql, released)).toBeLessThanOrEqual(0);
    expect(await jobRow(sql, failed)).toMatchObject({ status_id: 1, worker_id: null });
    expect(await jobRow(sql, completed)).toMatchObject({ status_id: 3, worker_id: "runner-w" });

    const ocr = await claimOne(sql, "acte-ocr", "ocr-w");
    await sql`select queue.fail_job(${ocr.id}, ${ocr.lease_token}, 'unreadable', true, 'document_unreadable')`;
    expect(await jobRow(sql, completed)).toMatchObject({ status_id: 4, ocr_worker_id: null, worker_id: "runner-w" });
  });
});

describe("queue.retry_job after interruptions", () => {
  it("gives the reopened stage fresh stalls and a fresh run of infrastructure releases", async () => {
    const id = await insertJob(sql, indexJob("retry-counters"));
    await sql`update extraction_queue set max_infrastructure_releases = 1 where id = ${id}`;
    await releaseForInfrastructure(await claimOne(sql, "registre"));
    await sql`update extraction_queue set stalls = 2 where id = ${id}`;
    expect((await jobRow(sql, id)).status_id).toBe(4);

    await sql`select queue.retry_job(${id}, 'marie@example.com', 'Storage is back')`;
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 1, stalls: 0, infrastructure_releases: 0, attempts: 0 });
  });
});
