import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { acteJob, claim, claimOne, endBackoff, expireLease, indexJob, insertJob, insertJobs } from "./queue-fixtures.ts";

interface EdgeFunctionCall {
  function: string;
  body: { reason?: string; source?: string; jobs?: number };
}

// Locally there is no pg_net, so each dispatch hint is a NOTIFY on
// `edge_function_calls`: the same payload the bridge turns into a POST.
describe("dispatch hints", () => {
  let database: FreshDatabase;
  const received: EdgeFunctionCall[] = [];
  let unlisten: () => Promise<void>;

  beforeAll(async () => {
    database = await createFreshDatabase();
    // Every change hints in these tests; the throttle has its own test below.
    await database.sql`update private.dispatch_hint_throttle set min_interval = '0', min_insert_interval = '0'`;
    const listener = await database.sql.listen("edge_function_calls", (payload) => received.push(JSON.parse(payload) as EdgeFunctionCall));
    unlisten = listener.unlisten;
  });
  afterAll(async () => {
    await unlisten?.();
    await database?.drop();
  });
  beforeEach(async () => {
    await database.sql`delete from extraction_queue`;
    await hintsSent();
  });

  /**
   * Returns the calls sent since the last check. A marker NOTIFY sent after
   * the statements under test arrives after every notification they caused
   * (Postgres delivers notifications in commit order), so no sleep is needed.
   */
  async function hintsSent(): Promise<EdgeFunctionCall[]> {
    const marker = `marker-${Math.random()}`;
    await database.sql`select pg_notify('edge_function_calls', ${JSON.stringify({ function: marker, body: {} })})`;
    const deadline = Date.now() + 10_000;
    while (!received.some((call) => call.function === marker)) {
      if (Date.now() > deadline) throw new Error("the marker notification never arrived");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const calls = received.splice(0).filter((call) => call.function !== marker);
    return calls;
  }

  it("a 1,000-row insert sends one hint, not 1,000", async () => {
    await insertJobs(database.sql, Array.from({ length: 1000 }, (_, n) => indexJob(`bulk-${n}`)));
    const calls = await hintsSent();
    expect(calls.length).toBeGreaterThanOrEqual(1);
    expect(calls.length).toBeLessThanOrEqual(3);
    // NOTIFY folds identical payloads within a transaction, so the count
    // alone would not catch a row-level trigger; `jobs: 1000` does.
    expect(calls[0]).toEqual({ function: "dispatch", body: { reason: "insert", source: "extraction_queue", jobs: 1000 } });
  });

  it("a claim sends no hint; a completed extraction sends one (ready for OCR)", async () => {
    await insertJob(database.sql, acteJob("H-1"));
    await hintsSent();
    const job = await claimOne(database.sql, "registre");
    expect(await hintsSent()).toEqual([]);
    await database.sql`select queue.complete_extraction(${job.id}, ${job.lease_token}, 'actes/H-1.pdf')`;
    expect(await hintsSent()).toEqual([{ function: "dispatch", body: { reason: "ready-for-ocr", source: "extraction_queue", jobs: 1 } }]);
  });

  it("reaping 50 expired leases in one statement sends one hint", async () => {
    await insertJobs(database.sql, Array.from({ length: 50 }, (_, n) => indexJob(`reap-${n}`)));
    const jobs = await claim(database.sql, "registre", 50);
    for (const job of jobs) await expireLease(database.sql, job.id);
    await hintsSent();
    await database.sql`select queue.reap_expired_leases()`;
    expect(await hintsSent()).toEqual([{ function: "dispatch", body: { reason: "requeued", source: "extraction_queue", jobs: 50 } }]);
  });

  it("a released job sends a hint; a failure still backing off does not", async () => {
    await insertJobs(database.sql, [indexJob("H-2"), indexJob("H-3")]);
    const released = await claimOne(database.sql, "registre");
    const failed = await claimOne(database.sql, "registre");
    await hintsSent();
    await database.sql`select queue.release_job(${released.id}, ${released.lease_token})`;
    expect(await hintsSent()).toEqual([{ function: "dispatch", body: { reason: "requeued", source: "extraction_queue", jobs: 1 } }]);
    await database.sql`select queue.fail_job(${failed.id}, ${failed.lease_token}, 'timeout', false, 'document_retryable')`;
    expect(await hintsSent()).toEqual([]);
    // Once the backoff ends, the cron tick is what dispatches it.
    await endBackoff(database.sql, failed.id);
    await database.sql`select private.dispatch_tick()`;
    expect(await hintsSent()).toEqual([{ function: "dispatch", body: { reason: "tick", source: "pg_cron", jobs: 2 } }]);
  });

  it("single-row inserts in a burst send one hint per throttle interval, not one each", async () => {
    await database.sql`update private.dispatch_hint_throttle set min_interval = '1 hour', min_insert_interval = '1 hour', last_sent_at = '-infinity'`;
    try {
      for (let n = 0; n < 50; n += 1) await insertJob(database.sql, acteJob(`insert-burst-${n}`));
      expect(await hintsSent()).toEqual([{ function: "dispatch", body: { reason: "insert", source: "extraction_queue", jobs: 1 } }]);
    } finally {
      await database.sql`update private.dispatch_hint_throttle set min_interval = '0', min_insert_interval = '0'`;
    }
  });

  it("completions in a burst send one hint per throttle interval, not one each", async () => {
    await database.sql`update private.dispatch_hint_throttle set min_interval = '1 hour', min_insert_interval = '1 hour', last_sent_at = '-infinity'`;
    try {
      await insertJobs(database.sql, Array.from({ length: 20 }, (_, n) => acteJob(`burst-${n}`)));
      const jobs = await claim(database.sql, "registre", 20);
      await hintsSent();
      // The insert took this interval's slot; the completions start a fresh one.
      await database.sql`update private.dispatch_hint_throttle set last_sent_at = '-infinity'`;
      for (const job of jobs) await database.sql`select queue.complete_extraction(${job.id}, ${job.lease_token}, ${`actes/${job.id}.pdf`})`;
      expect(await hintsSent()).toEqual([{ function: "dispatch", body: { reason: "ready-for-ocr", source: "extraction_queue", jobs: 1 } }]);
      // Inserts are throttled alike: 10,000 single-row inserts must not be
      // 10,000 pg_net calls. The running dispatch, the next hint or the tick plans them.
      for (let n = 0; n < 20; n += 1) await insertJob(database.sql, acteJob(`after-burst-${n}`));
      expect(await hintsSent()).toEqual([]);
    } finally {
      await database.sql`update private.dispatch_hint_throttle set min_interval = '0', min_insert_interval = '0'`;
    }
  });
});
