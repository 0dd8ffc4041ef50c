import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { acteJob, expectPostgresError, indexJob, insertJob, planJob, SQLSTATE, type JobRow } from "./queue-fixtures.ts";

describe("extraction_queue refuses input that can never succeed", () => {
  let database: FreshDatabase;
  beforeAll(async () => {
    database = await createFreshDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  const refused: Array<{ case: string; row: JobRow; column: string; message: RegExp }> = [
    { case: "an index without cadastre", row: indexJob("100", { cadastre: null }), column: "cadastre", message: /^cadastre is required when document_source is "index"/ },
    { case: "an index with a blank cadastre", row: indexJob("101", { cadastre: "  " }), column: "cadastre", message: /^cadastre is required when document_source is "index"/ },
    { case: "a plan without cadastre", row: planJob("102", { cadastre: null }), column: "cadastre", message: /^cadastre is required when document_source is "plan_cadastraux"/ },
    { case: "an acte without acte_type", row: acteJob("103", { acte_type: null }), column: "acte_type", message: /^acte_type is required when document_source is "acte" \(one of: Acte, Avis d'adresse, Radiation, Acte divers\)$/ },
    { case: "an acte with an unknown acte_type", row: acteJob("104", { acte_type: "Vente" }), column: "acte_type", message: /^acte_type "Vente" is unknown; use one of: Acte, Avis d'adresse, Radiation, Acte divers$/ },
    { case: "an unknown document_source", row: indexJob("105", { document_source: "cadastre" }), column: "document_source", message: /^document_source must be one of index, acte, plan_cadastraux; got "cadastre"$/ },
    { case: "an empty document_number", row: indexJob(""), column: "document_number", message: /^document_number is required .* and cannot be blank$/ },
    { case: "a document_number of spaces only", row: acteJob(" \u00a0 "), column: "document_number", message: /^document_number is required .* and cannot be blank$/ },
    { case: "a blank circonscription_fonciere", row: indexJob("106", { circonscription_fonciere: " " }), column: "circonscription_fonciere", message: /^circonscription_fonciere is required/ },
  ];

  it.each(refused)("refuses $case, naming $column, and stores nothing", async ({ row, column, message }) => {
    const before = await countJobs(database);
    await expectPostgresError(insertJob(database.sql, row), { code: SQLSTATE.checkViolation, column, message });
    expect(await countJobs(database)).toBe(before);
  });

  it("refuses a status other than 1 on insert, naming status_id", async () => {
    await expectPostgresError(
      database.sql`
        insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre, status_id)
        values ('index', '107', 'Montréal', 'Cadastre du Québec', 3)`,
      { code: SQLSTATE.checkViolation, column: "status_id", message: /^status_id must be 1 \(En attente\) when a job is inserted; got 3$/ },
    );
  });

  it("refuses the same mistakes when an existing row is edited", async () => {
    const id = await insertJob(database.sql, acteJob("108"));
    await expectPostgresError(database.sql`update extraction_queue set acte_type = 'Hypothèque' where id = ${id}`, {
      code: SQLSTATE.checkViolation,
      column: "acte_type",
      message: /^acte_type "Hypothèque" is unknown/,
    });
    await expectPostgresError(database.sql`update extraction_queue set document_source = 'index' where id = ${id}`, {
      code: SQLSTATE.checkViolation,
      column: "cadastre",
      message: /^cadastre is required when document_source is "index"/,
    });
    const [row] = await database.sql<{ document_source: string; acte_type: string }[]>`
      select document_source, acte_type from extraction_queue where id = ${id}`;
    expect(row).toEqual({ document_source: "acte", acte_type: "Acte" });
  });

  it("accepts valid rows of every source, waiting, and fills document_number_normalized", async () => {
    const ids = [
      await insertJob(database.sql, indexJob("1 234\u00a0567", { designation_secondaire: "Rang 2" })),
      await insertJob(database.sql, acteJob(" 12 345 678 ", { acte_type: "Avis d'adresse" })),
      await insertJob(database.sql, planJob("\t2 000 001\n")),
    ];
    const rows = await database.sql<{ status: string; normalized: string; attempts: number; max_attempts: number }[]>`
      select s.name as status, q.document_number_normalized as normalized, q.attempts, q.max_attempts
      from extraction_queue q join extraction_status s on s.id = q.status_id
      where q.id in ${database.sql(ids)}
      order by q.created_at, q.document_source`;
    expect(rows.map((row) => row.normalized).sort()).toEqual(["1234567", "12345678", "2000001"]);
    for (const row of rows) expect(row).toMatchObject({ status: "En attente", attempts: 0, max_attempts: 3 });
  });

  it("refuses writing document_number_normalized by hand", async () => {
    await expectPostgresError(
      database.sql`
        insert into extraction_queue (document_source, document_number, document_number_normalized, circonscription_fonciere, cadastre)
        values ('index', '109', 'something else', 'Montréal', 'Cadastre du Québec')`,
      { code: "428C9", message: /document_number_normalized/ },
    );
  });
});

async function countJobs(database: FreshDatabase): Promise<number> {
  const [row] = await database.sql<{ count: number }[]>`select count(*)::int as count from extraction_queue`;
  return row?.count ?? -1;
}
