/**
 * The bad-row matrix at insert (issue 19, Hostile input), the rest of what
 * queue-input-validation.test.ts and request-input-limits.test.ts cover:
 * each request field missing, of the wrong JSON type, an unknown value,
 * whitespace only, 10 KB and 1 MB long, holding control characters; and SQL,
 * paths and HTML in every free-text field. Rows are inserted as PostgREST
 * inserts a JSON body (the columns given, values through
 * json_populate_recordset), which is how a back office reaches the table.
 * Each refusal must name the field (message and column) and store nothing.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { expectPostgresError, SQLSTATE } from "./queue-fixtures.ts";

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

type Body = Record<string, unknown>;
const INDEX: Body = { document_source: "index", document_number: "1 234 567", circonscription_fonciere: "Montréal", cadastre: "Cadastre du Québec" };
const ACTE: Body = { document_source: "acte", document_number: "12 345 678", circonscription_fonciere: "Montréal", acte_type: "Acte" };
const FIELDS = ["document_source", "document_number", "circonscription_fonciere", "cadastre", "designation_secondaire", "acte_type"] as const;
/** The field each case is about, on the row where it is required. */
const baseFor = (field: string): Body => (field === "acte_type" ? ACTE : INDEX);

/** As PostgREST's POST /extraction_queue: only the body's keys are columns; the rest keep their defaults. */
async function postgrestInsert(body: Body): Promise<void> {
  const columns = Object.keys(body);
  await database.sql.unsafe(
    `insert into public.extraction_queue (${columns.map((c) => `"${c}"`).join(", ")})
     select ${columns.map((c) => `"${c}"`).join(", ")} from json_populate_recordset(null::public.extraction_queue, $1::text::json)`,
    [JSON.stringify([body])],
  );
}
const count = async () => Number((await database.sql<{ n: string }[]>`select count(*) as n from extraction_queue`)[0]?.n);

function without(body: Body, field: string): Body {
  const copy = { ...body };
  delete copy[field];
  return copy;
}

describe("the bad-row matrix", () => {
  it.each(["document_source", "document_number", "circonscription_fonciere", "cadastre", "acte_type"])("refuses a row without %s, naming it", async (field) => {
    await expect(postgrestInsert(without(baseFor(field), field))).rejects.toMatchObject({ column_name: field, message: expect.stringMatching(new RegExp(`^(null value in column "${field}"|${field} )`)) });
    expect(await count()).toBe(0);
  });

  it.each([
    { field: "document_source", value: ["index"] },
    { field: "document_source", value: 7 },
    { field: "acte_type", value: { name: "Acte" } },
    { field: "acte_type", value: true },
  ])("refuses $field of the wrong JSON type ($value), naming it", async ({ field, value }) => {
    await expectPostgresError(postgrestInsert({ ...baseFor(field), [field]: value }), { code: SQLSTATE.checkViolation, column: field, message: new RegExp(`^${field} `) });
    expect(await count()).toBe(0);
  });

  it.each([
    { field: "priority", value: "high" },
    { field: "max_attempts", value: "three" },
  ])("refuses a number column given text ($field = $value) before anything is stored", async ({ field, value }) => {
    // PostgreSQL refuses the value while reading the JSON (22P02), before any trigger: its message names the
    // type and the value, not the column (PostgREST passes it on as is).
    await expect(postgrestInsert({ ...INDEX, [field]: value })).rejects.toMatchObject({ code: "22P02", message: expect.stringContaining(`"${value}"`) });
    expect(await count()).toBe(0);
  });

  it.each(["document_number", "circonscription_fonciere", "cadastre", "acte_type", "designation_secondaire"])("refuses %s of whitespace only, naming it", async (field) => {
    await expectPostgresError(postgrestInsert({ ...baseFor(field), [field]: " \t\u00a0 " }), { code: SQLSTATE.checkViolation, column: field, message: new RegExp(`^${field} `) });
    expect(await count()).toBe(0);
  });

  it.each(FIELDS.flatMap((field) => [10_000, 1_000_000].map((length) => ({ field, length }))))("refuses $field of $length characters, naming it", async ({ field, length }) => {
    await expectPostgresError(postgrestInsert({ ...baseFor(field), [field]: "x".repeat(length) }), { code: SQLSTATE.checkViolation, column: field, message: new RegExp(`^${field} `) });
    expect(await count()).toBe(0);
  });

  it.each(FIELDS.flatMap((field) => ["\u0001", "\u001b[2J", "\u007f"].map((character) => ({ field, character }))))("refuses a control character in $field, naming it", async ({ field, character }) => {
    const base = baseFor(field);
    const value = `${typeof base[field] === "string" ? base[field] : "Rang 2"}${character}`;
    await expectPostgresError(postgrestInsert({ ...base, [field]: value }), { code: SQLSTATE.checkViolation, column: field, message: new RegExp(`^${field} `) });
    expect(await count()).toBe(0);
  });

  it("refuses a NUL character before anything is stored", async () => {
    // PostgreSQL's text cannot hold U+0000: the JSON is refused while read (22P05), before any trigger.
    await expect(postgrestInsert({ ...INDEX, document_number: "1 234\u0000567" })).rejects.toMatchObject({ code: "22P05" });
    expect(await count()).toBe(0);
  });

  it.each([
    "1'; drop table extraction_queue; --",
    "../../../etc/passwd",
    "<img src=x onerror=alert(1)>",
  ])("stores %s as plain text in every free-text field, or refuses it for an enumerated one by name", async (hostile) => {
    await postgrestInsert({ ...INDEX, document_number: hostile, circonscription_fonciere: hostile, cadastre: hostile, designation_secondaire: hostile });
    const [row] = await database.sql<{ document_number: string; cadastre: string; status_id: number }[]>`select document_number, cadastre, status_id from extraction_queue`;
    expect(row).toMatchObject({ document_number: hostile, cadastre: hostile, status_id: 1 });
    await expectPostgresError(postgrestInsert({ ...ACTE, acte_type: hostile }), { code: SQLSTATE.checkViolation, column: "acte_type", message: /^acte_type ".*" is unknown/ });
    await expectPostgresError(postgrestInsert({ ...INDEX, document_source: hostile }), { code: SQLSTATE.checkViolation, column: "document_source", message: /^document_source must be one of/ });
    expect(await count()).toBe(1);
  });
});
