/**
 * A lost reply to complete_*_and_claim_next (issue 19 item 13): the retry
 * with the same lease token gets the first call's answer again, including
 * the job the first call claimed, instead of a "lease not held" refusal
 * that left that job leased to nobody until the reaper took it as a stall.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { acteJob, claimOne, insertJob, jobRow } from "./queue-fixtures.ts";

let database: FreshDatabase;

beforeAll(async () => {
  database = await createFreshDatabase();
});
afterAll(async () => {
  await database?.drop();
});
beforeEach(async () => {
  await database.sql`delete from extraction_queue`;
});

interface Answer {
  completed_status_id: number;
  id: string | null;
  lease_token: string | null;
  attempt: number | null;
}

describe("a retried complete-and-claim-next", () => {
  it("registre: the retry gets the same status and the same next job, claimed once", async () => {
    const first = await insertJob(database.sql, acteJob("11 111 111"));
    const second = await insertJob(database.sql, acteJob("22 222 222"));
    const job = await claimOne(database.sql, "registre");
    expect(job.id).toBe(first);
    const call = () =>
      database.sql<Answer[]>`select completed_status_id, id, lease_token, attempt from queue.complete_extraction_and_claim_next(${job.id}, ${job.lease_token}, 'actes/11111111.pdf', 'replay-worker', 300)`;
    const [answer] = await call();
    // The reply is lost; the runner sends the same call again.
    const [again] = await call();
    expect(answer).toMatchObject({ completed_status_id: 3, id: second, attempt: 1 });
    expect(again).toEqual(answer);
    expect(await jobRow(database.sql, second)).toMatchObject({ status_id: 2, attempts: 1, worker_id: "replay-worker" });
  });

  it("OCR: the retry gets the same answer; a next job released meanwhile comes back as none", async () => {
    await insertJob(database.sql, acteJob("33 333 333"));
    await insertJob(database.sql, acteJob("44 444 444"));
    for (let n = 0; n < 2; n += 1) {
      const extraction = await claimOne(database.sql, "registre");
      await database.sql`select queue.complete_extraction(${extraction.id}, ${extraction.lease_token}, ${`actes/${n}.pdf`})`;
    }
    const ocr = await claimOne(database.sql, "acte-ocr");
    const call = () =>
      database.sql<Answer[]>`select completed_status_id, id, lease_token, attempt from queue.complete_ocr_and_claim_next(${ocr.id}, ${ocr.lease_token}, 'texte', 'texte corrigé', 'acte-ocr', 'replay-ocr', 300)`;
    const [answer] = await call();
    expect(answer?.completed_status_id).toBe(5);
    expect(answer?.id).not.toBeNull();
    expect((await call())[0]).toEqual(answer);
    await database.sql`select queue.release_job(${answer?.id ?? null}, ${answer?.lease_token ?? null})`;
    expect((await call())[0]).toMatchObject({ completed_status_id: 5, id: null, lease_token: null });
  });
});
