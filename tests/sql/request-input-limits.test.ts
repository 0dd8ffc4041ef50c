/**
 * Hostile or careless input on the request row (issue 19 item 13): too long,
 * control characters, and edits while the row is worked on or done are
 * refused with a message naming the field, and nothing is stored or lost.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { acteJob, claimOne, expectPostgresError, indexJob, insertJob, jobRow, SQLSTATE, type JobRow } from "./queue-fixtures.ts";

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

const numberOf = async (id: string) => (await database.sql<{ document_number: string }[]>`select document_number from extraction_queue where id = ${id}`)[0]?.document_number;
const count = async () => Number((await database.sql<{ n: string }[]>`select count(*) as n from extraction_queue`)[0]?.n);

describe("request inputs", () => {
  it.each<{ case: string; row: JobRow; column: string; message: RegExp }>([
    { case: "a 100 KB document_number", row: indexJob("1".repeat(100_000)), column: "document_number", message: /^document_number is 100000 characters long; at most 64 are allowed$/ },
    { case: "a 1 MB circonscription_fonciere", row: indexJob("200", { circonscription_fonciere: "M".repeat(1_000_000) }), column: "circonscription_fonciere", message: /^circonscription_fonciere is 1000000 characters long; at most 200/ },
    { case: "a 10 KB cadastre", row: indexJob("201", { cadastre: "C".repeat(10_000) }), column: "cadastre", message: /^cadastre is 10000 characters long/ },
    { case: "a 10 KB designation_secondaire", row: indexJob("202", { designation_secondaire: "D".repeat(10_000) }), column: "designation_secondaire", message: /^designation_secondaire is 10000 characters long/ },
    { case: "an escape character in document_number", row: acteJob("12 345\u001b678"), column: "document_number", message: /^document_number contains a control character/ },
    { case: "a bell character in circonscription_fonciere", row: indexJob("203", { circonscription_fonciere: "Montr\u0007al" }), column: "circonscription_fonciere", message: /^circonscription_fonciere contains a control character/ },
  ])("refuses $case, naming $column, storing nothing", async ({ row, column, message }) => {
    await expectPostgresError(insertJob(database.sql, row), { code: SQLSTATE.checkViolation, column, message });
    expect(await count()).toBe(0);
  });

  it("takes SQL, paths and HTML in a field as plain text (the registry refuses them later, with its own message)", async () => {
    const id = await insertJob(database.sql, indexJob("1'; drop table extraction_queue; --", { designation_secondaire: "<script>alert(1)</script> ../../etc/passwd" }));
    expect((await jobRow(database.sql, id)).status_id).toBe(1);
  });

  it.each([
    { status: 2, to: "En traitement" },
    { status: 6, to: "OCR en traitement" },
    { status: 5, to: "Extraction Complété" },
  ])("refuses an edit of an input field while the row is in $status ($to), and keeps the row as it was", async ({ status }) => {
    const id = await insertJob(database.sql, acteJob("12 345 678"));
    const extraction = await claimOne(database.sql, "registre");
    if (status !== 2) {
      await database.sql`select queue.complete_extraction(${extraction.id}, ${extraction.lease_token}, 'actes/12345678.pdf')`;
      const ocr = await claimOne(database.sql, "acte-ocr");
      if (status === 5) await database.sql`select queue.complete_ocr(${ocr.id}, ${ocr.lease_token}, 'texte', 'texte corrigé')`;
    }
    expect((await jobRow(database.sql, id)).status_id).toBe(status);
    await expectPostgresError(database.sql`update extraction_queue set document_number = '87 654 321' where id = ${id}`, {
      code: SQLSTATE.checkViolation,
      column: "document_number",
      message: new RegExp(`^document_number cannot change while the job is in status ${status} `),
    });
    expect(await numberOf(id)).toBe("12 345 678");
  });

  it("lets a waiting row be corrected", async () => {
    const id = await insertJob(database.sql, acteJob("12 345 678"));
    await database.sql`update extraction_queue set document_number = '12 345 679' where id = ${id}`;
    expect(await numberOf(id)).toBe("12 345 679");
  });
});
