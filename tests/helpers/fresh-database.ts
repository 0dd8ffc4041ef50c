import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { inject } from "vitest";

export interface FreshDatabase {
  name: string;
  /** Superuser URL of this database. */
  url: string;
  /** Superuser connection to this database. */
  sql: postgres.Sql;
  /** URL of this database for another role. */
  urlAs(role: string, password: string): string;
  drop(): Promise<void>;
}

/**
 * A new database cloned from the migrated template, so each test file starts
 * from the same schema and nothing one file does leaks into another.
 */
export async function createFreshDatabase(): Promise<FreshDatabase> {
  const adminUrl = inject("adminDatabaseUrl");
  const template = inject("templateDatabase");
  const name = `test_${randomBytes(6).toString("hex")}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name} template ${template}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  return {
    name,
    url,
    sql,
    urlAs(role, password) {
      const u = new URL(url);
      u.username = encodeURIComponent(role);
      u.password = encodeURIComponent(password);
      return u.toString();
    },
    async drop() {
      await sql.end({ timeout: 5 });
      const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
