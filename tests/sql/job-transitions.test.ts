import { randomUUID } from "node:crypto";
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
  expireLease,
  indexJob,
  insertJob,
  jobRow,
  planJob,
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

const completeExtraction = (job: Claim, path = `index/${job.id}.pdf`) =>
  sql`select queue.complete_extraction(${job.id}, ${job.lease_token}, ${path}) as status_id`.then(statusOf);
const completeOcr = (job: Claim, text = "Ligne 1: texte", boosted = "Ligne 1: texte corrigé") =>
  sql`select queue.complete_ocr(${job.id}, ${job.lease_token}, ${text}, ${boosted}) as status_id`.then(statusOf);
const failJob = (job: Claim, error: string, isFinal: boolean) =>
  sql`select queue.fail_job(${job.id}, ${job.lease_token}, ${error}, ${isFinal}, ${isFinal ? "invalid_input" : "document_retryable"}) as status_id`.then(statusOf);
const releaseJob = (job: Claim) => sql`select queue.release_job(${job.id}, ${job.lease_token}) as status_id`.then(statusOf);
const heartbeat = (job: Claim, seconds = 300) =>
  sql<{ expires_at: Date }[]>`select queue.heartbeat_job(${job.id}, ${job.lease_token}, ${seconds}) as expires_at`.then((rows) => rows[0]?.expires_at);
const reap = () => sql<{ reaped: number }[]>`select queue.reap_expired_leases() as reaped`.then((rows) => rows[0]?.reaped);
const retry = (id: string, operator = "marie@example.com", reason = "registry was down overnight") =>
  sql`select queue.retry_job(${id}, ${operator}, ${reason}) as status_id`.then(statusOf);

function statusOf(rows: readonly Record<string, unknown>[]): unknown {
  return rows[0]?.["status_id"];
}

describe("the happy paths", () => {
  it("index: 1 → 2 → 3 → 6 → 5 with the PDF path and both texts", async () => {
    const id = await insertJob(sql, indexJob("1 234 567"));
    const extraction = await claimOne(sql, "registre");
    expect(await completeExtraction(extraction, "index/1234567-Montreal.pdf")).toBe(3);
    const ocr = await claimOne(sql, "index-ocr");
    expect(ocr).toMatchObject({ id, supabase_path: "index/1234567-Montreal.pdf", attempt: 1 });
    expect(await completeOcr(ocr, "raw text", "boosted text")).toBe(5);
    expect(await jobRow(sql, id)).toMatchObject({
      status_id: 5,
      attempts: 1,
      ocr_attempts: 1,
      file_content: "raw text",
      boosted_file_content: "boosted text",
      extraction_lease_token: null,
      ocr_lease_token: null,
    });
  });

  it("plan cadastral: 2 → 5 directly, no OCR", async () => {
    const id = await insertJob(sql, planJob("2 000 001"));
    const job = await claimOne(sql, "registre");
    expect(await completeExtraction(job, "plans-cadastraux/2000001.pdf")).toBe(5);
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 5, supabase_path: "plans-cadastraux/2000001.pdf", file_content: null });
  });

  it("a heartbeat extends the lease", async () => {
    await insertJob(sql, acteJob("42"));
    const job = await claimOne(sql, "registre");
    const extended = await heartbeat(job, 3600);
    expect(extended?.getTime()).toBeGreaterThan(job.lease_expires_at.getTime() + 3000 * 1000);
  });

  it("refuses a malformed supabase_path or missing OCR text, naming the field", async () => {
    await insertJob(sql, acteJob("43"));
    const job = await claimOne(sql, "registre");
    await expectPostgresError(completeExtraction(job, "no-bucket.pdf"), { code: SQLSTATE.invalidParameter, message: /^supabase_path must be "bucket\/filename"/ });
    expect(await completeExtraction(job, "actes/43.pdf")).toBe(3);
    const ocr = await claimOne(sql, "acte-ocr");
    await expectPostgresError(
      sql`select queue.complete_ocr(${ocr.id}, ${ocr.lease_token}, ${"text"}, ${null})`,
      { code: SQLSTATE.invalidParameter, message: /^boosted_file_content is required/ },
    );
    await expectPostgresError(failJob(ocr, " ", false), { code: SQLSTATE.invalidParameter, message: /^error is required/ });
    expect((await jobRow(sql, ocr.id)).status_id).toBe(6);
  });
});

describe("fencing: a stale lease token changes nothing", () => {
  it("a token that was never issued cannot complete, fail, release or heartbeat", async () => {
    const id = await insertJob(sql, indexJob("777"));
    const job = await claimOne(sql, "registre");
    const forged: Claim = { ...job, lease_token: randomUUID() };
    const before = await jobRow(sql, id);
    for (const call of [() => completeExtraction(forged), () => failJob(forged, "boom", true), () => releaseJob(forged), () => heartbeat(forged)]) {
      await expectPostgresError(call(), { code: SQLSTATE.leaseNotHeld, message: /refused for job .*: the lease token is not current.*; nothing was changed$/ });
    }
    expect(await jobRow(sql, id)).toEqual(before);
  });

  it("after its lease was reaped and the job re-claimed, the first runner cannot touch the second runner's job", async () => {
    const id = await insertJob(sql, indexJob("888"));
    const first = await claimOne(sql, "registre", "runner-a");
    await expireLease(sql, id);
    expect(await reap()).toBe(1);
    const second = await claimOne(sql, "registre", "runner-b");
    const held = await jobRow(sql, id);

    for (const call of [() => completeExtraction(first), () => failJob(first, "late failure", false), () => releaseJob(first), () => heartbeat(first)]) {
      await expectPostgresError(call(), { code: SQLSTATE.leaseNotHeld, message: /the lease token is not current/ });
    }
    expect(await jobRow(sql, id)).toEqual(held);
    // The reap was a stall, not an attempt: the second claim is attempt 1.
    expect(held).toMatchObject({ status_id: 2, worker_id: "runner-b", extraction_lease_token: second.lease_token, attempts: 1, stalls: 1 });
  });

  it("an expired lease is refused even before the reaper has run", async () => {
    const id = await insertJob(sql, acteJob("999"));
    const job = await claimOne(sql, "registre");
    await expireLease(sql, id);
    for (const call of [() => completeExtraction(job), () => failJob(job, "late", false), () => heartbeat(job)]) {
      await expectPostgresError(call(), { code: SQLSTATE.leaseNotHeld, message: /the lease expired at/ });
    }
    expect((await jobRow(sql, id)).status_id).toBe(2);
  });

  it("a token of the wrong stage is refused", async () => {
    const id = await insertJob(sql, indexJob("1001"));
    await completeExtraction(await claimOne(sql, "registre"));
    const ocr = await claimOne(sql, "index-ocr");
    await expectPostgresError(completeExtraction(ocr), { code: SQLSTATE.leaseNotHeld, message: /does not apply to a job in status 6/ });
    expect((await jobRow(sql, id)).status_id).toBe(6);
  });
});

describe("terminal rows stay terminal under every function but retry", () => {
  it("status 4 and 5 are untouched by claim, heartbeat, complete, fail, release and reap", async () => {
    const failedId = await insertJob(sql, indexJob("T-4"));
    const failedJob = await claimOne(sql, "registre");
    expect(await failJob(failedJob, "La fiche immobilière demandée est inexistante", true)).toBe(4);

    const doneId = await insertJob(sql, acteJob("T-5"));
    const doneExtraction = await claimOne(sql, "registre");
    await completeExtraction(doneExtraction);
    const doneOcr = await claimOne(sql, "acte-ocr");
    expect(await completeOcr(doneOcr)).toBe(5);

    const before = [await jobRow(sql, failedId), await jobRow(sql, doneId)];
    for (const kind of ["registre", "index-ocr", "acte-ocr"]) expect(await claim(sql, kind, 10)).toEqual([]);
    for (const job of [failedJob, doneExtraction, doneOcr]) {
      for (const call of [() => completeExtraction(job), () => completeOcr(job), () => failJob(job, "again", false), () => releaseJob(job), () => heartbeat(job)]) {
        await expectPostgresError(call(), { code: SQLSTATE.leaseNotHeld, message: /no runner holds it \(status [45], / });
      }
    }
    expect(await reap()).toBe(0);
    expect([await jobRow(sql, failedId), await jobRow(sql, doneId)]).toEqual(before);
  });

  it("even a direct update cannot move a row out of 4 or 5", async () => {
    const id = await insertJob(sql, indexJob("T-direct"));
    await failJob(await claimOne(sql, "registre"), "final", true);
    await expectPostgresError(sql`update extraction_queue set status_id = 1 where id = ${id}`, {
      code: SQLSTATE.terminalStatus,
      column: "status_id",
      message: /is in terminal status 4 and cannot move to 1; only queue.retry_job reopens a failed job$/,
    });
  });

  it("retry reopens a failed job, resets its attempts and records who, when and why", async () => {
    const id = await insertJob(sql, indexJob("R-1"));
    const job = await claimOne(sql, "registre");
    await failJob(job, "Le lot n'existe pas dans la circonscription foncière demandée", true);

    expect(await retry(id, "  marie@example.com ", "lot number corrected upstream")).toBe(1);
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 1, attempts: 0, error_message: null });
    const audit = await sql`select operator, reason, from_status_id, to_status_id, previous_error_message, retried_at from extraction_queue_retries where job_id = ${id}`;
    expect(audit).toEqual([
      {
        operator: "marie@example.com",
        reason: "lot number corrected upstream",
        from_status_id: 4,
        to_status_id: 1,
        previous_error_message: "Le lot n'existe pas dans la circonscription foncière demandée",
        retried_at: expect.any(Date),
      },
    ]);
    expect((await claimOne(sql, "registre")).id).toBe(id);
  });

  it("retry sends a job whose OCR failed back to OCR, keeping its PDF", async () => {
    const id = await insertJob(sql, acteJob("R-2"));
    await completeExtraction(await claimOne(sql, "registre"), "actes/R-2.pdf");
    await failJob(await claimOne(sql, "acte-ocr"), "Gemini refused the document", true);
    expect(await retry(id)).toBe(3);
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 3, ocr_attempts: 0, ocr_error: null, attempts: 1, supabase_path: "actes/R-2.pdf" });
  });

  it("retry refuses a job that is not in 4, and an unknown job", async () => {
    const id = await insertJob(sql, planJob("R-3"));
    await completeExtraction(await claimOne(sql, "registre"));
    await expectPostgresError(retry(id), { code: SQLSTATE.notRetryable, message: /only a job in status 4 \(Erreur\) can be retried; it is in status 5$/ });
    await expectPostgresError(retry(randomUUID()), { code: SQLSTATE.noDataFound, message: /^retry_job refused: there is no job / });
    await expectPostgresError(retry(id, " ", "why"), { code: SQLSTATE.invalidParameter, message: /^operator is required/ });
    expect((await jobRow(sql, id)).status_id).toBe(5);
  });
});

describe("failures, backoff and release", () => {
  it("retryable extraction failures back off (30 s, then 60 s) and end in 4 after max attempts", async () => {
    const id = await insertJob(sql, indexJob("B-1"));
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 2; attempt++) {
      const job = await claimOne(sql, "registre");
      expect(job.attempt).toBe(attempt);
      expect(await failJob(job, `timeout on attempt ${attempt}`, false)).toBe(1);
      delays.push(await backoffSeconds(sql, id));
      // Still backing off: nothing to claim.
      expect(await claim(sql, "registre")).toEqual([]);
      await endBackoff(sql, id);
    }
    expect(delays[0]).toBeCloseTo(30, 0);
    expect(delays[1]).toBeCloseTo(60, 0);

    const last = await claimOne(sql, "registre");
    expect(last.attempt).toBe(3);
    expect(await failJob(last, "timeout on attempt 3", false)).toBe(4);
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 4, attempts: 3, error_message: "timeout on attempt 3" });
  });

  it("retryable OCR failures go back to 3 and end in 4 with ocr_error after max OCR attempts", async () => {
    const id = await insertJob(sql, acteJob("B-2"));
    await completeExtraction(await claimOne(sql, "registre"));
    for (let attempt = 1; attempt <= 2; attempt++) {
      expect(await failJob(await claimOne(sql, "acte-ocr"), `429 on attempt ${attempt}`, false)).toBe(3);
      expect(await claim(sql, "acte-ocr")).toEqual([]);
      await endBackoff(sql, id);
    }
    expect(await failJob(await claimOne(sql, "acte-ocr"), "429 on attempt 3", false)).toBe(4);
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 4, attempts: 1, ocr_attempts: 3, ocr_error: "429 on attempt 3", error_message: null });
  });

  it("a final failure ends in 4 at once, with the message kept and no attempt burnt beyond the first", async () => {
    const id = await insertJob(sql, acteJob("F-1"));
    const message = "Le document demandé est inexistant";
    expect(await failJob(await claimOne(sql, "registre"), message, true)).toBe(4);
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 4, attempts: 1, error_message: message, extraction_lease_token: null });
  });

  it("release hands the job back at once without spending an attempt", async () => {
    const id = await insertJob(sql, indexJob("L-1"));
    const job = await claimOne(sql, "registre");
    expect(await releaseJob(job)).toBe(1);
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 1, attempts: 0, extraction_lease_token: null });
    expect((await claimOne(sql, "registre")).attempt).toBe(1);
  });

  it("release of an OCR job goes back to 3 without spending an OCR attempt", async () => {
    const id = await insertJob(sql, indexJob("L-2"));
    await completeExtraction(await claimOne(sql, "registre"));
    expect(await releaseJob(await claimOne(sql, "index-ocr"))).toBe(3);
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 3, ocr_attempts: 0, ocr_lease_token: null });
    expect((await claimOne(sql, "index-ocr")).attempt).toBe(1);
  });
});

describe("queue.reap_expired_leases", () => {
  it("requeues only expired leases as stalls, giving back the attempt, and fails a stage that stalls past max_stalls", async () => {
    const [live, expired, lastStall, ocrExpired] = [
      await insertJob(sql, indexJob("live")),
      await insertJob(sql, indexJob("expired")),
      await insertJob(sql, indexJob("last")),
      await insertJob(sql, acteJob("ocr-expired")),
    ];
    await sql`update extraction_queue set max_stalls = 1, stalls = 1 where id = ${lastStall}`;
    await completeExtraction((await claim(sql, "registre", 10)).find((job) => job.id === ocrExpired) ?? failTest("ocr job not claimed"));
    await claimOne(sql, "acte-ocr", "ocr-runner");
    const liveBefore = await jobRow(sql, live);
    for (const id of [expired, lastStall, ocrExpired]) await expireLease(sql, id);

    expect(await reap()).toBe(3);
    expect(await jobRow(sql, live)).toEqual(liveBefore);
    expect(await jobRow(sql, expired)).toMatchObject({
      status_id: 1,
      attempts: 0,
      stalls: 1,
      worker_id: null,
      extraction_lease_token: null,
      error_message: expect.stringMatching(/^the lease of runner test-runner expired at .* without completion \(stall 1; 2 allowed; no attempt spent\)$/),
    });
    expect(await jobRow(sql, lastStall)).toMatchObject({ status_id: 4, attempts: 0, stalls: 2, error_message: expect.stringMatching(/stall 2; 1 allowed/) });
    expect(await jobRow(sql, ocrExpired)).toMatchObject({
      status_id: 3,
      attempts: 1,
      ocr_attempts: 0,
      ocr_stalls: 1,
      ocr_worker_id: null,
      // The extraction stage's runner did its work and stays on record.
      worker_id: "test-runner",
      ocr_error: expect.stringMatching(/^the lease of OCR runner ocr-runner expired/),
    });
    // Reaped jobs are claimable at once.
    expect((await claim(sql, "registre", 10)).map((job) => job.id)).toEqual([expired]);
    expect(await reap()).toBe(0);
  });

  it("a job that keeps killing its runner ends in 4 after max_stalls + 1 reaps, with every attempt left", async () => {
    const id = await insertJob(sql, indexJob("poison"));
    const statuses: number[] = [];
    for (let reaps = 0; reaps < 3; reaps += 1) {
      await claimOne(sql, "registre");
      await expireLease(sql, id);
      expect(await reap()).toBe(1);
      statuses.push((await jobRow(sql, id)).status_id);
    }
    expect(statuses).toEqual([1, 1, 4]);
    expect(await jobRow(sql, id)).toMatchObject({ status_id: 4, attempts: 0, stalls: 3 });
  });
});

function failTest(message: string): never {
  throw new Error(message);
}

describe("complete and claim the next job in one call", () => {
  const completeExtractionAndClaimNext = (job: Claim, worker = "runner-b") =>
    sql<({ completed_status_id: number } & Partial<Claim>)[]>`
      select * from queue.complete_extraction_and_claim_next(${job.id}, ${job.lease_token}, ${`actes/${job.id}.pdf`}, ${worker}, 300)`;

  it("completes the extraction and claims the next registre job for the same runner", async () => {
    const first = await insertJob(sql, acteJob("N-1"));
    const second = await insertJob(sql, acteJob("N-2"));
    const job = await claimOne(sql, "registre");
    expect(job.id).toBe(first);
    const [row] = await completeExtractionAndClaimNext(job);
    expect(row).toMatchObject({ completed_status_id: 3, id: second, attempt: 1 });
    expect(await jobRow(sql, first)).toMatchObject({ status_id: 3, supabase_path: `actes/${first}.pdf` });
    expect(await jobRow(sql, second)).toMatchObject({ status_id: 2, worker_id: "runner-b", attempts: 1 });
  });

  it("returns one row with an empty next job when nothing waits", async () => {
    await insertJob(sql, acteJob("N-3"));
    const job = await claimOne(sql, "registre");
    const rows = await completeExtractionAndClaimNext(job);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ completed_status_id: 3, id: null, lease_token: null });
  });

  it("claims nothing when the completion is refused for a stale token", async () => {
    await insertJob(sql, acteJob("N-4"));
    const waiting = await insertJob(sql, acteJob("N-5"));
    const job = await claimOne(sql, "registre");
    await expectPostgresError(completeExtractionAndClaimNext({ ...job, lease_token: randomUUID() }), {
      code: SQLSTATE.leaseNotHeld,
      message: /complete_extraction refused/,
    });
    expect(await jobRow(sql, waiting)).toMatchObject({ status_id: 1, attempts: 0 });
  });

  it("completes OCR and claims the next job of the same OCR kind only", async () => {
    const index = await insertJob(sql, indexJob("N-6"));
    const acte = await insertJob(sql, acteJob("N-7"));
    for (const extraction of await claim(sql, "registre", 2)) await completeExtraction(extraction);
    const [ocr] = await claim(sql, "acte-ocr", 1);
    expect(ocr?.id).toBe(acte);
    const [row] = await sql<{ completed_status_id: number; id: string | null }[]>`
      select completed_status_id, id from queue.complete_ocr_and_claim_next(${acte}, ${ocr?.lease_token ?? null}, 'texte', 'texte corrigé', 'acte-ocr', 'ocr-a', 300)`;
    // The index job waits for an index OCR runner: an acte runner does not take it.
    expect(row).toEqual({ completed_status_id: 5, id: null });
    expect(await jobRow(sql, index)).toMatchObject({ status_id: 3 });
    await expectPostgresError(sql`select * from queue.complete_ocr_and_claim_next(${index}, ${randomUUID()}, 't', 'b', 'registre', 'x', 300)`, {
      code: SQLSTATE.invalidParameter,
      message: /kind must be index-ocr or acte-ocr; got "registre"/,
    });
  });
});
