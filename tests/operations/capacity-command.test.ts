import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { redisKeyPrefixes } from "../../supabase/functions/_shared/redis-keys.ts";
import { ledgerConfigOf } from "../../scripts/capacity-limits.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

/**
 * `npm run capacity -- show|set` on the real ledger (Redis behind the
 * Upstash REST endpoint): a budget change refuses every dispatcher until
 * `set` replaces the stored limits; `--dry-run` writes nothing.
 */
const root = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);

/** The shell an operator deploys from, with only the variables the command reads. */
function shell(prefix: string, budget: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(SERVER_|REGISTRE_|INDEX_OCR_|ACTE_OCR_|MAX_|LEDGER_|GEMINI_|REDIS_KEY_PREFIX|UPSTASH_)/.test(name)) env[name] = value;
  }
  return { ...env, UPSTASH_REDIS_REST_URL: inject("upstashUrl"), UPSTASH_REDIS_REST_TOKEN: inject("upstashToken"), REDIS_KEY_PREFIX: prefix, ...budget };
}

async function capacity(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, ["--import", "tsx", "scripts/capacity.ts", ...args], { cwd: root, env }).then(
    (output) => ({ code: 0, ...output }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

/** A dispatcher of this shell's configuration asking the ledger for one registre task. */
async function dispatcherAdmitted(env: NodeJS.ProcessEnv, prefix: string): Promise<{ granted: boolean; reason: string }> {
  const ledger = new CapacityLedger(upstashClient(), ledgerConfigOf(env, true), { keyPrefix: redisKeyPrefixes(prefix).ledger });
  const result = await ledger.acquire("registre", { environment: "prod", holder: "dispatch@prod" }, { mode: "start-task" });
  if (result.granted) await ledger.release(result.lease.id);
  return result.granted ? { granted: true, reason: "" } : { granted: false, reason: result.reason };
}

describe("npm run capacity", () => {
  it("shows the stored limits, refuses nothing it should not, and replaces them only on set", async () => {
    const prefix = `${randomKeyPrefix("capacity")}:`;
    const before = shell(prefix, { SERVER_MAX_CPU: "16", SERVER_MAX_RAM: "32" });
    // The first dispatcher stores its limits.
    await new CapacityLedger(upstashClient(), ledgerConfigOf(before, true), { keyPrefix: redisKeyPrefixes(prefix).ledger }).setLimits("if-missing");
    expect((await dispatcherAdmitted(before, prefix)).granted).toBe(true);

    const same = await capacity(["show"], before);
    expect(same.code).toBe(0);
    expect(same.stdout).toContain("same: dispatch and runners with this configuration are admitted");

    // The budget doubles in capacity.env: every dispatcher with the new values is refused.
    const after = shell(prefix, { SERVER_MAX_CPU: "32", SERVER_MAX_RAM: "64" });
    const refused = await dispatcherAdmitted(after, prefix);
    expect(refused.granted).toBe(false);
    const differs = await capacity(["show", "--json"], after);
    expect(differs.code).toBe(3);
    const shown = JSON.parse(differs.stdout) as { before: { same: boolean; difference: string; stored: { capacity: { vcpu: number } }; configured: { capacity: { vcpu: number } } } };
    expect(shown.before.same).toBe(false);
    expect(shown.before.difference).toMatch(/SERVER_MAX_CPU/);
    expect(shown.before.configured.capacity.vcpu).toBeGreaterThan(shown.before.stored.capacity.vcpu);

    const dry = await capacity(["set", "--dry-run"], after);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("dry run: would replace the stored limits");
    expect((await dispatcherAdmitted(after, prefix)).granted).toBe(false);

    const set = await capacity(["set"], after);
    expect(set.code).toBe(0);
    expect(set.stdout).toContain("replaced: the stored limits are now this configuration's");
    expect(await dispatcherAdmitted(after, prefix)).toEqual({ granted: true, reason: "" });
    // The old configuration is now the one refused.
    expect((await dispatcherAdmitted(before, prefix)).granted).toBe(false);
    expect((await capacity(["show"], after)).code).toBe(0);
    expect((await capacity(["set"], after)).stdout).toContain("nothing to write");
  }, 60_000);

  it("names what is missing or wrong on the command line", async () => {
    const noTarget = await capacity(["show"], { PATH: process.env["PATH"] ?? "" });
    expect(noTarget.code).toBe(1);
    expect(noTarget.stderr).toContain("UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set");
    const bad = await capacity(["grow"], shell("x:"));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("the command must be show or set");
  }, 30_000);
});
