import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../infra/local/paths.ts";
import { toMilli } from "../../supabase/functions/_shared/capacity-config.ts";
import { JOB_KINDS } from "../../supabase/functions/_shared/job-kinds.ts";
import { budgetFor, evaluateMix, recommendMix, workerRates, type TaskMix } from "../../scripts/capacity-plan.ts";

const run = promisify(execFile);
const mix = (registre: number, index: number, acte: number): TaskMix => ({ registre, "index-ocr": index, "acte-ocr": acte });
// The documented defaults, whatever the machine running the tests exports.
const env = {};

describe("npm run plan: capacity planning", () => {
  it.each([
    { server: "8/16", vcpu: 8, ramGb: 16, mix: mix(1, 1, 1), fits: true, used: 5.5, available: 6.4 },
    { server: "8/16", vcpu: 8, ramGb: 16, mix: mix(1, 1, 2), fits: false, used: 6.5, available: 6.4 },
    { server: "16/32", vcpu: 16, ramGb: 32, mix: mix(2, 2, 3), fits: true, used: 12, available: 12.8 },
    { server: "4/8", vcpu: 4, ramGb: 8, mix: mix(1, 1, 0), fits: false, used: 4.5, available: 3.2 },
  ])("$server with $mix.registre + $mix.index-ocr + $mix.acte-ocr: fits $fits ($used of $available vCPU)", (row) => {
    const evaluation = evaluateMix(budgetFor({ vcpu: row.vcpu, ramGb: row.ramGb, reservePercent: 20 }, env), row.mix);
    expect(evaluation.fits).toBe(row.fits);
    expect(evaluation.vcpu).toEqual({ used: row.used, available: row.available });
    if (!row.fits) expect(evaluation.overBy).toContain(`vCPU: ${row.used} > ${row.available}`);
  });

  it("uses the seeds' per-worker Gemini rates", () => {
    const rates = workerRates();
    expect(rates["index-ocr"].geminiRpm).toBeCloseTo(6.7, 1);
    expect(rates["index-ocr"].geminiTpm).toBeCloseTo(53_667, -1);
    expect(rates["acte-ocr"].geminiRpm).toBeCloseTo(7.2, 1);
    expect(rates["acte-ocr"].geminiTpm).toBeCloseTo(242_400, -1);
    const evaluation = evaluateMix(budgetFor({ vcpu: 8, ramGb: 16 }, env), mix(1, 1, 1));
    expect(evaluation.gemini.tpm).toBe(Math.round(53_666.67 + 242_400));
  });

  it.each([
    [4, 8],
    [8, 16],
    [16, 32],
    [32, 64],
    [64, 128],
    [12, 10],
  ])("the recommended mix for %i vCPU / %i GB never exceeds the budget, and no fitting mix moves more documents", (vcpu, ramGb) => {
    const config = budgetFor({ vcpu, ramGb }, env);
    const recommended = recommendMix(config);
    expect(recommended.fits).toBe(true);
    expect(toMilli(recommended.vcpu.used)).toBeLessThanOrEqual(toMilli(config.capacity.vcpu));
    expect(toMilli(recommended.ramGb.used)).toBeLessThanOrEqual(toMilli(config.capacity.ramGb));
    expect(recommended.gemini.rpm).toBeLessThanOrEqual(recommended.gemini.rpmLimit);
    expect(recommended.gemini.tpm).toBeLessThanOrEqual(recommended.gemini.tpmLimit);
    // Brute force over a wider range than the planner searches.
    for (let r = 0; r <= 12; r += 1)
      for (let i = 0; i <= 20; i += 1)
        for (let a = 0; a <= 30; a += 1) {
          const other = evaluateMix(config, mix(r, i, a));
          if (other.fits) expect(other.documentsPerHour).toBeLessThanOrEqual(recommended.documentsPerHour);
        }
    if (recommended.documentsPerHour > 0) for (const kind of JOB_KINDS) expect(recommended.mix[kind]).toBeGreaterThanOrEqual(1);
  });

  it("keeps an OCR kind when one task of each kind fits", () => {
    const recommended = recommendMix(budgetFor({ vcpu: 8, ramGb: 16 }, env));
    expect(recommended.mix).toEqual(mix(1, 1, 1));
  });

  it("the README's capacity table is the one the command computes", async () => {
    const { stdout } = await run(join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), [join(PROJECT_ROOT, "scripts", "plan.ts"), "--table"], { env: { PATH: process.env["PATH"] } });
    const readme = await readFile(join(PROJECT_ROOT, "README.md"), "utf8");
    expect(stdout.trim().split("\n")).toHaveLength(6);
    expect(readme).toContain(stdout.trim());
  });

  it("the command answers --json and exits 1 when the mix does not fit", async () => {
    const tsx = join(PROJECT_ROOT, "node_modules", ".bin", "tsx");
    const script = join(PROJECT_ROOT, "scripts", "plan.ts");
    const refused = await run(tsx, [script, "--vcpu", "8", "--ram-gb", "16", "--registre", "1", "--index", "1", "--acte", "2", "--json"], { env: { PATH: process.env["PATH"] } }).then(
      () => undefined,
      (error: { code: number; stdout: string }) => error,
    );
    expect(refused?.code).toBe(1);
    const report = JSON.parse(refused?.stdout.trim().split("\n").at(-1) ?? "{}") as { fits: boolean; vcpu: { used: number; available: number } };
    expect(report).toMatchObject({ fits: false, vcpu: { used: 6.5, available: 6.4 } });
    const { stdout } = await run(tsx, [script, "--vcpu", "16", "--ram-gb", "32", "--json"], { env: { PATH: process.env["PATH"] } });
    expect(JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}")).toMatchObject({ recommended: true, fits: true });
  });
});
