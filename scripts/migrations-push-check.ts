/**
 * npm run migrations:push-check: applies supabase/migrations with the real,
 * pinned Supabase CLI (`supabase db push --remote=<url>`), the way a deploy
 * does, to a throwaway local PostgreSQL cluster, so a migration the CLI
 * refuses (its parser splits statements itself, and it records each file in
 * supabase_migrations.schema_migrations) fails CI rather than the first
 * deploy. `.ci/run` runs it after the suite.
 *
 * The cluster gets infra/local/supabase-bootstrap.sql first: the roles and
 * schemas a hosted project already has. Then the push runs twice: the second
 * must find nothing to apply (the CLI and the history agree).
 *
 * `--db-url` is deprecated since CLI 3.0 ("Warning: --db-url is deprecated
 * and will be removed in v4. Use --remote=<db-url> instead", printed by
 * supabase 3.1.0 itself), hence `--remote=`.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { z } from "zod";
import { readCommandLine } from "./command-line.ts";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";
import { freePort } from "../infra/local/free-port.ts";
import { BOOTSTRAP_SQL_FILE, listMigrations } from "../infra/local/migrations.ts";
import { LOCAL_STACK_DIR, PROJECT_ROOT } from "../infra/local/paths.ts";
import { startPostgresCluster } from "../infra/local/postgres-cluster.ts";

const HELP = `Usage: npm run migrations:push-check -- [--workdir <dir>] [--json]

Starts a throwaway PostgreSQL cluster, gives it Supabase's roles and schemas
(infra/local/supabase-bootstrap.sql), pushes supabase/migrations with the
pinned Supabase CLI (supabase db push --remote=<url> --yes), checks every
file is recorded, and pushes again expecting nothing to apply.

  --workdir  the folder holding supabase/ (default: this repository)
  --json     one JSON object: cli, migrations, recorded, problem

Exit status: 0 when the CLI accepts every migration, 1 otherwise, 2 on bad
arguments.
`;

const argsSchema = z.object({ workdir: z.string().min(1), json: z.boolean(), help: z.boolean() });
const run = promisify(execFile);

interface PushReport {
  readonly ok: boolean;
  readonly cli: string;
  readonly migrations: number;
  readonly recorded: number;
  readonly secondPushApplied: boolean;
  readonly problem?: string;
}

/** Runs the project's pinned CLI (node_modules/.bin/supabase) against `url`. */
async function supabase(workdir: string, args: readonly string[]): Promise<string> {
  const { stdout, stderr } = await run(join(PROJECT_ROOT, "node_modules", ".bin", "supabase"), [...args, `--workdir=${workdir}`], {
    cwd: workdir,
    maxBuffer: 16 * 1024 * 1024,
    // No telemetry or update check from CI; SUPABASE_YES answers the push's prompt.
    env: { ...process.env, SUPABASE_YES: "1", DO_NOT_TRACK: "1" },
  });
  return `${stdout}${stderr}`;
}

async function pushCheck(workdir: string): Promise<PushReport> {
  const cli = (await supabase(workdir, ["--version"])).trim();
  const migrations = await listMigrations(join(workdir, "supabase", "migrations"));
  const dataDir = join(LOCAL_STACK_DIR, "push-check", `${process.pid}-${randomBytes(3).toString("hex")}`);
  const cluster = await startPostgresCluster({ dataDir, port: await freePort(), fast: true });
  try {
    const url = cluster.url("postgres");
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(await readFile(BOOTSTRAP_SQL_FILE, "utf8"));
    } finally {
      await admin.end({ timeout: 5 });
    }
    const remote = `--remote=${url}`;
    try {
      await supabase(workdir, ["db", "push", remote, "--yes", "--include-all"]);
    } catch (error) {
      return { ok: false, cli, migrations: migrations.length, recorded: 0, secondPushApplied: false, problem: `supabase db push failed: ${errorMessage(error)}` };
    }
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    let recorded: string[];
    try {
      recorded = (await sql`select version from supabase_migrations.schema_migrations order by version`).map((row) => String(row["version"]));
    } finally {
      await sql.end({ timeout: 5 });
    }
    const missing = migrations.filter((migration) => !recorded.includes(migration.version)).map((migration) => `${migration.version}_${migration.name}`);
    const second = await supabase(workdir, ["db", "push", remote, "--yes"]);
    // The CLI prints "Remote database is up to date." when nothing is pending.
    const secondPushApplied = !/up to date/i.test(second);
    const problems = [
      ...(missing.length > 0 ? [`not recorded after the push: ${missing.join(", ")}`] : []),
      ...(secondPushApplied ? [`a second push was not a no-op: ${second.trim().slice(0, 400)}`] : []),
    ];
    return {
      ok: problems.length === 0,
      cli,
      migrations: migrations.length,
      recorded: recorded.length,
      secondPushApplied,
      ...(problems.length > 0 ? { problem: problems.join("; ") } : {}),
    };
  } finally {
    await cluster.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const commandLine = readCommandLine(
    { workdir: { type: "string", default: PROJECT_ROOT }, json: { type: "boolean", default: false }, help: { type: "boolean", default: false } },
    argsSchema,
    HELP,
  );
  if ("exitCode" in commandLine) return commandLine.exitCode;
  const report = await pushCheck(commandLine.args.workdir);
  process.stdout.write(
    commandLine.args.json
      ? `${JSON.stringify(report)}\n`
      : `supabase ${report.cli}: ${report.ok ? "OK" : "FAILED"}, ${report.recorded} of ${report.migrations} migrations recorded${report.problem ? `\n  ${report.problem}` : ""}\n`,
  );
  return report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`migrations:push-check failed: ${errorMessage(error)}\n`);
    process.exit(1);
  },
);
