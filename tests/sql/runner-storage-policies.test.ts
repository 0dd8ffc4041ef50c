import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";

/**
 * The runner families' Storage policies, on the real PostgreSQL with the
 * local Storage schema: queries run as Storage runs them, as role
 * `authenticated` with the signed-in runner user's claims in
 * request.jwt.claims. Registre may only insert document objects; OCR may
 * only read them; neither may overwrite or delete; a user without the
 * claim (any other signed-in user) may do nothing.
 */
let db: FreshDatabase;
let sql: postgres.Sql;

beforeAll(async () => {
  db = await createFreshDatabase();
  sql = db.sql;
  await sql.unsafe(`insert into storage.buckets (id, name) values ('other', 'other') on conflict do nothing`);
  await sql.unsafe(`insert into storage.objects (bucket_id, name) values ('actes', 'seed/1.pdf'), ('other', 'seed/2.pdf')`);
});

afterAll(async () => {
  await db?.drop();
});

/** Runs `query` as Storage would for a user of `family`, inside its own transaction; returns the rows affected or read. */
async function asRunner(family: string | undefined, query: string): Promise<number> {
  const claims = JSON.stringify({ sub: "00000000-0000-0000-0000-000000000001", role: "authenticated", app_metadata: family === undefined ? {} : { runner_family: family } });
  return sql.begin(async (tx) => {
    await tx.unsafe(`select set_config('request.jwt.claims', $1, true)`, [claims]);
    await tx.unsafe("set local role authenticated");
    const result = await tx.unsafe(query);
    return result.count;
  });
}

async function refused(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => "allowed",
    (error: { code?: string }) => String(error.code),
  );
}

describe("Storage policies of the runner families", () => {
  it("registre inserts into the three document buckets, and nowhere else", async () => {
    for (const bucket of ["index", "actes", "plans-cadastraux"]) {
      expect(await asRunner("registre", `insert into storage.objects (bucket_id, name) values ('${bucket}', 'registre/new.pdf')`)).toBe(1);
    }
    // 42501: new row violates row-level security policy.
    expect(await refused(asRunner("registre", `insert into storage.objects (bucket_id, name) values ('other', 'x.pdf')`))).toBe("42501");
  });

  it("registre can neither read, overwrite nor delete", async () => {
    expect(await asRunner("registre", `select * from storage.objects`)).toBe(0);
    expect(await asRunner("registre", `update storage.objects set metadata = '{}' where name = 'seed/1.pdf'`)).toBe(0);
    expect(await asRunner("registre", `delete from storage.objects where name = 'seed/1.pdf'`)).toBe(0);
  });

  it("ocr reads the document buckets only, and can neither write nor delete", async () => {
    expect(await asRunner("ocr", `select * from storage.objects where name = 'seed/1.pdf'`)).toBe(1);
    expect(await asRunner("ocr", `select * from storage.objects where bucket_id = 'other'`)).toBe(0);
    expect(await refused(asRunner("ocr", `insert into storage.objects (bucket_id, name) values ('actes', 'ocr/x.pdf')`))).toBe("42501");
    expect(await asRunner("ocr", `update storage.objects set metadata = '{}' where name = 'seed/1.pdf'`)).toBe(0);
    expect(await asRunner("ocr", `delete from storage.objects where name = 'seed/1.pdf'`)).toBe(0);
  });

  it("another signed-in user, without the runner claim, gets nothing", async () => {
    expect(await asRunner(undefined, `select * from storage.objects`)).toBe(0);
    expect(await refused(asRunner(undefined, `insert into storage.objects (bucket_id, name) values ('actes', 'u.pdf')`))).toBe("42501");
    expect(await refused(asRunner("admin", `insert into storage.objects (bucket_id, name) values ('actes', 'u.pdf')`))).toBe("42501");
  });

  it("registre keeps its failed jobs' traces: inserts and lists them, deletes only those past the 14 days, and nothing of the OCR family's", async () => {
    expect(await asRunner("registre", `insert into storage.objects (bucket_id, name) values ('registre-traces', '2026-12-05/job-attempt-1.zip')`)).toBe(1);
    await sql.unsafe(`insert into storage.objects (bucket_id, name, created_at) values ('registre-traces', '2026-11-01/old-attempt-1.zip', now() - interval '15 days')`);
    expect(await asRunner("registre", `select * from storage.objects where bucket_id = 'registre-traces'`)).toBe(2);
    // A fresh trace stays, whatever the runner asks; an expired one goes.
    expect(await asRunner("registre", `delete from storage.objects where name = '2026-12-05/job-attempt-1.zip'`)).toBe(0);
    expect(await asRunner("registre", `delete from storage.objects where name = '2026-11-01/old-attempt-1.zip'`)).toBe(1);
    // The document buckets stay unreadable to it; the OCR family sees no trace.
    expect(await asRunner("registre", `select * from storage.objects where bucket_id = 'actes'`)).toBe(0);
    expect(await asRunner("ocr", `select * from storage.objects where bucket_id = 'registre-traces'`)).toBe(0);
  });
});
