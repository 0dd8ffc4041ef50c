import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { MIGRATIONS_DIR, PROJECT_ROOT } from "./paths.ts";
import { errorMessage } from "../../supabase/functions/_shared/error-message.ts";

const MIGRATION_FILE = /^(\d{14})_([a-z0-9_]+)\.sql$/;

/** Supabase's own preconditions (roles, schemas) for the private cluster. */
export const BOOTSTRAP_SQL_FILE = join(PROJECT_ROOT, "infra", "local", "supabase-bootstrap.sql");

export interface MigrationFile {
  version: string;
  name: string;
  path: string;
}

export async function listMigrations(dir = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const files = (await readdir(dir)).filter((file) => file.endsWith(".sql")).sort();
  return files.map((file) => {
    const match = MIGRATION_FILE.exec(file);
    if (!match?.[1] || !match[2]) throw new Error(`migration file name ${file} is not <14-digit timestamp>_<verb_noun>.sql`);
    return { version: match[1], name: match[2], path: join(dir, file) };
  });
}

/**
 * Applies pending migrations in file-name order, recorded in
 * `supabase_migrations.schema_migrations` the way `supabase db push` records
 * them, so a database migrated here looks the same to the CLI. All pending
 * files run in one transaction under an advisory lock: concurrent installs
 * wait for each other, and a failing file leaves nothing half applied.
 */
export async function applyMigrations(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<{ applied: string[]; skipped: string[] }> {
  const migrations = await listMigrations(dir);
  const bootstrap = await readFile(BOOTSTRAP_SQL_FILE, "utf8");
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const applied: string[] = [];
  const skipped: string[] = [];
  try {
    await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(hashtext('supabase_migrations'))`;
      await tx.unsafe(bootstrap);
      await tx.unsafe(`
        create schema if not exists supabase_migrations;
        create table if not exists supabase_migrations.schema_migrations (
          version text primary key, statements text[], name text
        );`);
      const done = new Set((await tx`select version from supabase_migrations.schema_migrations`).map((row) => String(row["version"])));
      for (const migration of migrations) {
        if (done.has(migration.version)) {
          skipped.push(`${migration.version}_${migration.name}`);
          continue;
        }
        const text = await readFile(migration.path, "utf8");
        try {
          await tx.unsafe(text);
        } catch (error) {
          throw new Error(`migration ${migration.version}_${migration.name} failed: ${errorMessage(error)}`, { cause: error });
        }
        await tx`insert into supabase_migrations.schema_migrations (version, name, statements)
                 values (${migration.version}, ${migration.name}, ${[text]})`;
        applied.push(`${migration.version}_${migration.name}`);
      }
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
  return { applied, skipped };
}
