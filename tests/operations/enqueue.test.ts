import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../infra/local/paths.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";

const run = promisify(execFile);
const tsx = join(PROJECT_ROOT, "node_modules", ".bin", "tsx");
const script = join(PROJECT_ROOT, "scripts", "enqueue.ts");

let db: FreshDatabase;
beforeAll(async () => {
  db = await createFreshDatabase();
});
afterAll(async () => {
  await db.drop();
});

async function enqueue(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(tsx, [script, ...args], { env: { PATH: process.env["PATH"], DATABASE_URL: db.url } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

describe("npm run enqueue", () => {
  it.each([
    { why: "no circonscription", args: ["acte", "--number", "12 345 678", "--type", "Acte"], field: "circonscription_fonciere" },
    { why: "an index without cadastre", args: ["index", "--circonscription", "Laval", "--lot", "1 234 567"], field: "cadastre" },
    { why: "a plan without cadastre", args: ["plan", "--circonscription", "Laval", "--lot", "1 234 567"], field: "cadastre" },
    { why: "an acte without type", args: ["acte", "--circonscription", "Laval", "--number", "12 345 678"], field: "acte_type" },
    { why: "an unknown acte type", args: ["acte", "--circonscription", "Laval", "--number", "12 345 678", "--type", "Vente"], field: "acte_type" },
    { why: "a blank number", args: ["acte", "--circonscription", "Laval", "--number", "  ", "--type", "Acte"], field: "document_number" },
    { why: "no lot", args: ["index", "--circonscription", "Laval", "--cadastre", "Cadastre du Québec"], field: "document_number" },
    { why: "an unknown kind", args: ["deed", "--circonscription", "Laval", "--number", "1"], field: "document_source" },
    { why: "a priority that is not a number", args: ["acte", "--circonscription", "Laval", "--number", "1", "--type", "Acte", "--priority", "high"], field: "priority" },
  ])("refuses $why with the database's message naming $field", async ({ args, field }) => {
    const before = await db.sql`select count(*)::int as n from extraction_queue`;
    const result = await enqueue(args);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^refused by the dev database: /);
    expect(result.stderr).toContain(field);
    expect(result.stdout).toBe("");
    const after = await db.sql`select count(*)::int as n from extraction_queue`;
    expect(after).toEqual(before);
  });

  it("adds a valid request and prints its id", async () => {
    const result = await enqueue(["index", "--circonscription", "Montréal", "--cadastre", "Cadastre du Québec", "--lot", "1 234 567", "--designation", "Lot 12", "--priority", "7"]);
    expect(result.code).toBe(0);
    const id = result.stdout.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const rows = await db.sql`
      select document_source, document_number, circonscription_fonciere, cadastre, designation_secondaire, priority, status_id
      from extraction_queue where id = ${id}`;
    expect(rows).toEqual([
      { document_source: "index", document_number: "1 234 567", circonscription_fonciere: "Montréal", cadastre: "Cadastre du Québec", designation_secondaire: "Lot 12", priority: 7, status_id: 1 },
    ]);
  });

  it("adds an acte with --json", async () => {
    const result = await enqueue(["acte", "--circonscription", "Laval", "--number", "12 345 678", "--type", "Avis d'adresse", "--json"]);
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout.trim()) as { id: string; environment: string; document_source: string };
    expect(printed).toMatchObject({ environment: "dev", document_source: "acte" });
    const [row] = await db.sql`select acte_type, priority from extraction_queue where id = ${printed.id}`;
    expect(row).toEqual({ acte_type: "Avis d'adresse", priority: 0 });
  });

  it("refuses --lot with --number before touching the database", async () => {
    const result = await enqueue(["index", "--circonscription", "Laval", "--lot", "1", "--number", "2"]);
    expect(result.code).toBe(2);
  });
});
