/**
 * A long document's text is stored whole and completes the row: the French
 * full-text indexes cover a bounded prefix, so the 1 MB tsvector limit
 * (SQLSTATE 54000) can no longer refuse a result whatever its length.
 */
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { acteJob, claimOne, insertJob, jobRow } from "./queue-fixtures.ts";

let database: FreshDatabase;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createFreshDatabase();
  sql = database.sql;
});
afterAll(async () => {
  await database?.drop();
});

/** `count` distinct words of letters only ("baaa", "baab", …), so each is a lexeme of its own. */
function distinctWords(count: number): string {
  const words: string[] = [];
  for (let i = 0; i < count; i += 1) {
    let n = i;
    let word = "";
    for (let digit = 0; digit < 5; digit += 1) {
      word += String.fromCharCode(97 + (n % 26));
      n = Math.floor(n / 26);
    }
    words.push(`q${word}`);
  }
  return words.join(" ");
}

describe("a long OCR text", () => {
  it("whose whole-text tsvector would pass 1 MB completes, stored whole, and the prefix is searchable", async () => {
    // 160,000 distinct six-letter words: about 1.1 MB of text, a whole-text tsvector over 1 MB.
    const text = distinctWords(160_000);
    await expect(sql`select length(to_tsvector('french', ${text})::text)`).rejects.toMatchObject({ code: "54000" });

    const id = await insertJob(sql, acteJob("54 000 001"));
    const extraction = await claimOne(sql, "registre");
    await sql`select queue.complete_extraction(${extraction.id}, ${extraction.lease_token}, 'actes/54000001.pdf')`;
    const ocr = await claimOne(sql, "acte-ocr");
    const [done] = await sql<{ status_id: number }[]>`select queue.complete_ocr(${ocr.id}, ${ocr.lease_token}, ${text}, ${text}) as status_id`;
    expect(done?.status_id).toBe(5);
    const row = await jobRow(sql, id);
    expect(row.file_content?.length).toBe(text.length);

    const [found] = await sql<{ hits: number }[]>`
      select count(*)::int as hits from extraction_queue
      where to_tsvector('french', left(file_content, 100000)) @@ to_tsquery('french', 'qaaaaa')`;
    expect(found?.hits).toBe(1);
  });
});
