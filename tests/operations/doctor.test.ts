import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localDoctorFile } from "../../infra/local/doctor-file.ts";
import type { LocalStack } from "../../infra/local/stack.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";

/**
 * `npm run doctor -- --local` against a whole local stack (real Postgres
 * with pg_cron and the Vault stand-in, Redis behind the Upstash endpoint,
 * the dispatch function on the edge runtime, the ECS endpoint, the registry
 * replica): every check passes or is skipped naming what it needs; a wrong
 * dispatch secret and a changed budget fail with their fix.
 */
const root = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);
let stack: LocalStack;
let folder: string;

interface DoctorReport {
  ok: boolean;
  checks: { name: string; status: "ok" | "failed" | "skipped"; detail: string; fix?: string }[];
}

async function doctor(file: string): Promise<{ code: number; report: DoctorReport }> {
  const output = await run(process.execPath, ["--import", "tsx", "scripts/doctor.ts", "--local", "--target-file", file, "--json"], { cwd: root, maxBuffer: 8 * 1024 * 1024 }).then(
    (result) => ({ code: 0, stdout: result.stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
  return { code: output.code, report: JSON.parse(output.stdout.trim().split("\n").at(-1) ?? "{}") as DoctorReport };
}

beforeAll(async () => {
  stack = await startThrowawayStack("doctor");
  folder = await mkdtemp(join(tmpdir(), "doctor-"));
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await rm(folder, { recursive: true, force: true });
});

describe("npm run doctor -- --local", () => {
  it("passes every check against a running local stack, one line each", async () => {
    const file = join(folder, "doctor.json");
    await writeFile(file, JSON.stringify(localDoctorFile(stack, join(folder, "state"))));
    const { code, report } = await doctor(file);
    const byName = Object.fromEntries(report.checks.map((check) => [check.name, check]));
    expect(report.checks.filter((check) => check.status === "failed")).toEqual([]);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(byName["database (runner role, TLS)"]?.detail).toContain("runner role; loopback");
    expect(byName["dispatch function"]?.status).toBe("ok");
    expect(byName["vault secrets"]).toMatchObject({ status: "ok", detail: "functions_url and dispatch_secret exist" });
    expect(byName["cron jobs"]?.detail).toMatch(/dispatch-tick.*reap-expired-leases/);
    expect(byName["upstash and ledger limits"]?.detail).toMatch(/stored limits equal this configuration's/);
    expect(byName["ecs (cluster, task definitions, dispatch key)"]?.status).toBe("ok");
    expect(byName["registry"]?.status).toBe("ok");
    expect(byName["gemini models"]).toMatchObject({ status: "skipped", fix: expect.stringContaining("GEMINI_API_KEY") });
    expect(byName["aws resources (cluster, task definitions, subnets)"]?.status).toBe("skipped");
    expect(report.checks).toHaveLength(10);
  }, 120_000);

  it("fails a wrong dispatch secret and a budget that differs from the ledger's, each with its fix", async () => {
    const file = join(folder, "doctor-wrong.json");
    const good = localDoctorFile(stack, join(folder, "state"));
    await writeFile(file, JSON.stringify({ ...good, dispatchSecret: `${good.dispatchSecret}-wrong`, budgetEnv: { SERVER_MAX_CPU: "96" } }));
    const { code, report } = await doctor(file);
    expect(code).toBe(1);
    const failed = Object.fromEntries(report.checks.filter((check) => check.status === "failed").map((check) => [check.name, check]));
    expect(failed["dispatch function"]?.fix).toContain("deploy:secrets");
    expect(failed["upstash and ledger limits"]).toMatchObject({ detail: expect.stringContaining("SERVER_MAX_CPU"), fix: expect.stringContaining("npm run capacity -- set") });
  }, 120_000);
});
