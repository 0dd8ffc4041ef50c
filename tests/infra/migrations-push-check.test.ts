import { execFile } from "node:child_process";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

/**
 * The CI step that pushes the migrations with the real, pinned Supabase CLI
 * (`supabase db push --remote=<url>`) to a throwaway cluster: it passes on
 * the repository's migrations and fails on one the CLI cannot apply.
 */
const root = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);
const folders: string[] = [];

interface PushReport {
  ok: boolean;
  cli: string;
  migrations: number;
  recorded: number;
  problem?: string;
}

async function pushCheck(workdir: string): Promise<{ code: number; report: PushReport }> {
  const result = await run(process.execPath, ["--import", "tsx", "scripts/migrations-push-check.ts", "--workdir", workdir, "--json"], { cwd: root, maxBuffer: 16 * 1024 * 1024 }).then(
    (output) => ({ code: 0, stdout: output.stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
  const lines = result.stdout.trim().split("\n");
  return { code: result.code, report: JSON.parse(lines[lines.length - 1] ?? "{}") as PushReport };
}

/** A copy of supabase/ (config and migrations) with one more migration file. */
async function workdirWith(file: string, text: string): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), "push-check-"));
  folders.push(folder);
  await cp(join(root, "supabase", "config.toml"), join(folder, "supabase", "config.toml"));
  await cp(join(root, "supabase", "migrations"), join(folder, "supabase", "migrations"), { recursive: true });
  await writeFile(join(folder, "supabase", "migrations", file), text);
  return folder;
}

afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

describe("npm run migrations:push-check", () => {
  it("pushes every migration of the repository with the pinned CLI and records each", async () => {
    const { code, report } = await pushCheck(root);
    expect(report.problem).toBeUndefined();
    expect(code).toBe(0);
    expect(report.cli).toMatch(/^3\.\d+\.\d+$/);
    expect(report.recorded).toBe(report.migrations);
    expect(report.migrations).toBeGreaterThan(30);
  }, 120_000);

  it("fails when the CLI cannot apply a migration", async () => {
    const workdir = await workdirWith("20991231235959_break_the_push.sql", "-- why: a file the database refuses\ncreate tabel broken (id int);\n");
    const { code, report } = await pushCheck(workdir);
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.problem).toMatch(/supabase db push failed/);
  }, 120_000);
});
