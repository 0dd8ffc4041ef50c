import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { applyMigrations, BOOTSTRAP_SQL_FILE, listMigrations } from "../../infra/local/migrations.ts";
import { withDatabase } from "../helpers/fresh-database.ts";
import { claim, indexJob, insertJobs } from "./queue-fixtures.ts";

/** An empty database (no template), dropped when the file's tests end. */
async function createEmptyDatabase(admin: postgres.Sql, created: string[]): Promise<string> {
  const name = `empty_${randomBytes(6).toString("hex")}`;
  await admin.unsafe(`create database ${name}`);
  created.push(name);
  return withDatabase(inject("adminDatabaseUrl"), name);
}

describe("migrations", () => {
  let admin: postgres.Sql;
  const created: string[] = [];

  beforeAll(() => {
    admin = postgres(inject("adminDatabaseUrl"), { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    for (const name of created) await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  });

  it("apply to an empty database, and a second apply does nothing", async () => {
    const url = await createEmptyDatabase(admin, created);
    const files = (await listMigrations()).map((migration) => `${migration.version}_${migration.name}`);

    const first = await applyMigrations(url);
    expect(first).toEqual({ applied: files, skipped: [] });

    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      // Outside cron.database_name the cron migration skips itself.
      expect(await sql`select 1 from pg_extension where extname = 'pg_cron'`).toHaveLength(0);
      const [id] = await insertJobs(sql, [indexJob("1 234 567")]);
      const schemaBefore = await schemaFingerprint(sql);

      const second = await applyMigrations(url);
      expect(second).toEqual({ applied: [], skipped: files });
      expect(await schemaFingerprint(sql)).toEqual(schemaBefore);
      // The queue still works, and the row inserted before is intact.
      expect((await claim(sql, "registre")).map((job) => job.id)).toEqual([id]);
    } finally {
      await sql.end();
    }
  });

  it("each migration file can run a second time without error or change", async () => {
    const url = await createEmptyDatabase(admin, created);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(await readFile(BOOTSTRAP_SQL_FILE, "utf8"));
      for (const migration of await listMigrations()) {
        const text = await readFile(migration.path, "utf8");
        await sql.begin((tx) => tx.unsafe(text));
        const fingerprint = await schemaFingerprint(sql);
        await sql.begin((tx) => tx.unsafe(text));
        expect(await schemaFingerprint(sql), migration.name).toEqual(fingerprint);
      }
    } finally {
      await sql.end();
    }
  });
});

/** Columns, constraints, indexes, triggers and functions (with their grants) of the queue's schemas. */
async function schemaFingerprint(sql: postgres.Sql): Promise<string[]> {
  const rows = await sql<{ item: string }[]>`
    select 'column ' || table_schema || '.' || table_name || '.' || column_name || ' ' || data_type as item
    from information_schema.columns where table_schema in ('public', 'queue', 'private')
    union all
    select 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
    from pg_constraint where connamespace in ('public'::regnamespace, 'queue'::regnamespace, 'private'::regnamespace)
    union all
    select 'index ' || indexrelid::regclass || ' ' || pg_get_indexdef(indexrelid)
    from pg_index join pg_class on pg_class.oid = indrelid
    where relnamespace in ('public'::regnamespace, 'queue'::regnamespace, 'private'::regnamespace)
    union all
    select 'trigger ' || tgrelid::regclass || ' ' || tgname from pg_trigger where not tgisinternal
    union all
    select 'function ' || oid::regprocedure || ' ' || md5(prosrc) || ' ' || coalesce(array_to_string(proacl, ','), '')
    from pg_proc where pronamespace in ('queue'::regnamespace, 'private'::regnamespace)
    order by 1`;
  return rows.map((row) => row.item);
}
