import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { claimOne, expectPostgresError, indexJob, insertJob, SQLSTATE } from "./queue-fixtures.ts";

/** queue.record_ocr_tokens: only the holder of the OCR lease writes a job's tokens; the Studio view sums them. */

let db: FreshDatabase;
beforeAll(async () => {
  db = await createFreshDatabase();
});
afterAll(async () => {
  await db.drop();
});

describe("tokens per OCR job", () => {
  it("records each model's tokens under the OCR lease, refuses any other token, and sums them per day, environment and model", async () => {
    const id = await insertJob(db.sql, indexJob("7 777 777"));
    const registre = await claimOne(db.sql, "registre");
    await db.sql`select queue.complete_extraction(${registre.id}, ${registre.lease_token}, ${`index/${id}.pdf`})`;
    const ocr = await claimOne(db.sql, "index-ocr");
    const usage = [
      { model: "gemini-3.5-flash-lite", calls: 6, input_tokens: 7_400, output_tokens: 2_100, thinking_tokens: 300 },
      { model: "gemini-3.8-flash", calls: 3, input_tokens: 2_600, output_tokens: 2_050, thinking_tokens: 90 },
    ];
    await expectPostgresError(db.sql`select queue.record_ocr_tokens(${ocr.id}, ${randomUUID()}, 'dev', ${db.sql.json(usage)})`, { code: SQLSTATE.leaseNotHeld, message: /record_ocr_tokens/ });
    const [recorded] = await db.sql<{ n: number }[]>`select queue.record_ocr_tokens(${ocr.id}, ${ocr.lease_token}, 'dev', ${db.sql.json(usage)}) as n`;
    expect(recorded?.n).toBe(2);
    await expectPostgresError(db.sql`select queue.record_ocr_tokens(${ocr.id}, ${ocr.lease_token}, 'dev', ${db.sql.json({ model: "m" })})`, { code: SQLSTATE.invalidParameter, message: /usage must be a JSON array/ });
    const perDay = await db.sql<{ environment: string; model: string; jobs: string; calls: string; input_tokens: string; output_tokens: string; thinking_tokens: string }[]>`
      select environment, model, jobs, calls, input_tokens, output_tokens, thinking_tokens from public.ocr_tokens_by_day where day = (now() at time zone 'UTC')::date order by model`;
    expect(perDay.map((row) => [row.environment, row.model, Number(row.jobs), Number(row.calls), Number(row.input_tokens), Number(row.output_tokens), Number(row.thinking_tokens)])).toEqual([
      ["dev", "gemini-3.5-flash-lite", 1, 6, 7_400, 2_100, 300],
      ["dev", "gemini-3.8-flash", 1, 3, 2_600, 2_050, 90],
    ]);
  });
});
