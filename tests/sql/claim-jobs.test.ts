import postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import {
  acteJob,
  claim,
  claimOne,
  createLoginFor,
  expectPostgresError,
  indexJob,
  insertJob,
  insertJobs,
  jobRow,
  planJob,
  SQLSTATE,
  type Claim,
  type RoleLogin,
} from "./queue-fixtures.ts";

describe("queue.claim_jobs", () => {
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
  beforeEach(async () => {
    await database.sql`delete from extraction_queue`;
  });

  it("gives each of 1,000 waiting rows to exactly one of 8 concurrent claimers", async () => {
    const ids = await insertJobs(
      database.sql,
      Array.from({ length: 1000 }, (_, n) => (n % 3 === 0 ? acteJob(`A-${n}`) : n % 3 === 1 ? planJob(`P-${n}`) : indexJob(`I-${n}`))),
    );
    // Each claimer is its own runner connection, claiming small batches until
    // the queue is empty, all at the same time.
    const claimers = Array.from({ length: 8 }, () => postgres(runner.url, { max: 1, prepare: false, onnotice: () => {} }));
    try {
      const perClaimer = await Promise.all(
        claimers.map(async (sql, n) => {
          const mine: Claim[] = [];
          for (;;) {
            const batch = await claim(sql, "registre", 7, `claimer-${n}`);
            if (batch.length === 0) return mine;
            mine.push(...batch);
          }
        }),
      );
      const claimed = perClaimer.flat().map((job) => job.id);
      expect(claimed).toHaveLength(1000);
      expect(new Set(claimed)).toEqual(new Set(ids));
      // Every claimer got work: the claims really ran side by side.
      expect(perClaimer.filter((jobs) => jobs.length > 0).length).toBeGreaterThan(1);

      const [summary] = await database.sql<{ running: number; once: number; tokens: number }[]>`
        select count(*) filter (where status_id = 2)::int as running,
               count(*) filter (where attempts = 1)::int as once,
               count(distinct extraction_lease_token)::int as tokens
        from extraction_queue`;
      expect(summary).toEqual({ running: 1000, once: 1000, tokens: 1000 });
      // The row's worker_id is the claimer that got it back.
      for (const [n, jobs] of perClaimer.entries()) {
        const sample = jobs[0];
        if (sample) expect((await jobRow(database.sql, sample.id)).worker_id).toBe(`claimer-${n}`);
      }
    } finally {
      await Promise.all(claimers.map((sql) => sql.end()));
    }
  });

  it("takes the highest priority first, then the oldest", async () => {
    const oldLow = await insertJob(database.sql, indexJob("old-low"));
    const urgent = await insertJob(database.sql, indexJob("urgent", { priority: 10 }));
    const newLow = await insertJob(database.sql, indexJob("new-low"));
    const alsoUrgent = await insertJob(database.sql, acteJob("also-urgent", { priority: 10 }));
    const order: string[] = [];
    for (let n = 0; n < 4; n++) order.push((await claimOne(database.sql, "registre")).id);
    expect(order).toEqual([urgent, alsoUrgent, oldLow, newLow]);
  });

  it("registre takes any source at status 1; each OCR kind takes only its own source at status 3", async () => {
    const index = await insertJob(database.sql, indexJob("I-1"));
    const acte = await insertJob(database.sql, acteJob("A-1"));
    const plan = await insertJob(database.sql, planJob("P-1"));
    expect(await claim(database.sql, "index-ocr", 10)).toEqual([]);
    expect(await claim(database.sql, "acte-ocr", 10)).toEqual([]);

    const registre = await claim(database.sql, "registre", 10);
    expect(registre.map((job) => job.id).sort()).toEqual([index, acte, plan].sort());
    for (const job of registre) {
      await database.sql`select queue.complete_extraction(${job.id}, ${job.lease_token}, ${`bucket/${job.id}.pdf`})`;
    }

    const indexOcr = await claim(database.sql, "index-ocr", 10, "ocr-1");
    const acteOcr = await claim(database.sql, "acte-ocr", 10, "ocr-2");
    expect(indexOcr.map((job) => job.id)).toEqual([index]);
    expect(acteOcr.map((job) => job.id)).toEqual([acte]);
    expect(indexOcr[0]).toMatchObject({ supabase_path: `bucket/${index}.pdf`, attempt: 1 });
    expect((await jobRow(database.sql, index)).status_id).toBe(6);
    // The plan went 2 → 5 and is nobody's OCR job.
    expect((await jobRow(database.sql, plan)).status_id).toBe(5);
  });

  it("returns what a runner needs: lease token and expiry, the document, the attempt number", async () => {
    const id = await insertJob(database.sql, acteJob(" 24 680 ", { acte_type: "Radiation" }));
    const [before] = await database.sql<{ now: Date }[]>`select now() as now`;
    const [job] = await database.sql`select * from queue.claim_jobs('registre', 'runner-7', 5, 120)`;
    expect(job).toMatchObject({
      id,
      lease_token: expect.stringMatching(/^[0-9a-f-]{36}$/),
      document_source: "acte",
      document_number: " 24 680 ",
      document_number_normalized: "24680",
      circonscription_fonciere: "Laval",
      cadastre: null,
      designation_secondaire: null,
      acte_type: "Radiation",
      supabase_path: null,
      attempt: 1,
    });
    const expiresInSeconds = ((job?.["lease_expires_at"] as Date).getTime() - (before?.now ?? new Date()).getTime()) / 1000;
    expect(expiresInSeconds).toBeGreaterThanOrEqual(119);
    expect(expiresInSeconds).toBeLessThan(130);
  });

  it("skips rows whose retry backoff has not ended", async () => {
    const later = await insertJob(database.sql, indexJob("later"));
    await database.sql`update extraction_queue set available_at = now() + interval '5 minutes' where id = ${later}`;
    const now = await insertJob(database.sql, indexJob("now"));
    expect((await claim(database.sql, "registre", 10)).map((job) => job.id)).toEqual([now]);
  });

  it.each([
    { args: ["index", "w", 1, 60] as const, message: /^kind must be one of registre, index-ocr, acte-ocr; got "index"$/ },
    { args: ["registre", " ", 1, 60] as const, message: /^worker_id is required and cannot be blank$/ },
    { args: ["registre", "w", 0, 60] as const, message: /^batch_size must be between 1 and 50; got 0$/ },
    { args: ["registre", "w", 1, 0] as const, message: /^lease_seconds must be between 1 and 3600; got 0$/ },
  ])("refuses bad arguments, naming them: $message", async ({ args, message }) => {
    const [kind, workerId, batchSize, leaseSeconds] = args;
    await expectPostgresError(database.sql`select * from queue.claim_jobs(${kind}, ${workerId}, ${batchSize}, ${leaseSeconds})`, {
      code: SQLSTATE.invalidParameter,
      message,
    });
  });
});
