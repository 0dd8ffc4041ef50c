import { mkdir, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, relative } from "node:path";
import { parseArgs } from "node:util";
import { Redis } from "@upstash/redis";
import postgres from "postgres";
import { PROJECT_ROOT } from "../infra/local/paths.ts";
import { startThrowawayStack } from "../infra/local/throwaway-stack.ts";
import { parseCapacityConfig } from "../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../supabase/functions/_shared/capacity-ledger.ts";
import { readBacklog } from "../supabase/functions/_shared/dispatch.ts";
import { GeminiRateBudget } from "../supabase/functions/_shared/gemini-rate-budget.ts";
import { JOB_KINDS, type JobKind } from "../supabase/functions/_shared/job-kinds.ts";
import { lifecycleTestTaskCommand } from "../infra/local/lifecycle-test-task-command.ts";
import { utilizationChartSvg } from "./utilization-chart.ts";

/**
 * `npm run bench -- utilization`: how busy the scheduler keeps the budget.
 * On a private local stack with the default budget (8 vCPU / 16 GB, 20 %
 * reserve), inserts a mixed backlog (registre rows of all three sources; the
 * index and acte rows then wait for OCR) and lets dispatch and the lifecycle
 * test runners drain it, each kind "working" for its real duration scaled
 * down. Samples the ledger and the backlog while it drains and prints:
 * - utilization of the binding resource while the backlog exceeds capacity
 *   (allocated / capacity, time-weighted; target ≥ 0.90);
 * - over-allocation moments seen in the ledger (must be 0);
 * - documents per minute and insert → terminal latency (p50, p95);
 * - the peak Gemini tokens in one window against the limit;
 * and writes an SVG chart of allocated vCPU, RAM and tokens over time.
 * Prints numbers; asserts nothing.
 */

export const UTILIZATION_HELP = `Usage: npm run bench -- utilization [--json] [--docs=N] [--registre-ms=MS] [--index-ms=MS] [--acte-ms=MS] [--out=PATH]

Drains a mixed backlog on a private local stack (default budget) and reports
the binding resource's utilization while the backlog exceeds capacity,
over-allocations, documents per minute, insert → terminal p50/p95, and
writes a chart (SVG) of allocated vCPU, RAM and tokens over time.

  --docs=N          rows per document source (index, acte, plan)   default 12
  --registre-ms=MS  simulated registre fetch per document          default 3000  (≈60 s ÷ 20)
  --index-ms=MS     simulated index OCR per document               default 9000  (≈3 min ÷ 20)
  --acte-ms=MS      simulated acte OCR per document                default 1250  (≈25 s ÷ 20)
  --index-tokens=N  Gemini input tokens per index document         default 8050  (≈161K ÷ 20)
  --acte-tokens=N   Gemini input tokens per acte document          default 5050  (≈101K ÷ 20)
                    (tokens scale with the durations, so each task's tokens per minute stay real;
                    spent through the shared budget, no model is called)
  --sample-ms=MS    ledger and backlog sampling interval           default 200
  --out=PATH        where the chart goes          default bench/results/utilization.svg
  --json            print one JSON object as the last line
`;

interface Sample {
  /** ms since the backlog was inserted */
  readonly t: number;
  readonly vcpu: number;
  readonly ramGb: number;
  readonly tasks: Record<JobKind, number>;
  /** vCPU / GB the backlog (waiting + running) could use with one task per row */
  readonly demandVcpu: number;
  readonly demandRamGb: number;
  readonly tokensUsed: number | null;
}

export async function runUtilizationBench(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    strict: false,
    options: {
      json: { type: "boolean", default: false },
      docs: { type: "string", default: "12" },
      "registre-ms": { type: "string", default: "3000" },
      "index-ms": { type: "string", default: "9000" },
      "acte-ms": { type: "string", default: "1250" },
      "index-tokens": { type: "string", default: "8050" },
      "acte-tokens": { type: "string", default: "5050" },
      "sample-ms": { type: "string", default: "200" },
      out: { type: "string", default: join("bench", "results", "utilization.svg") },
    },
  });
  const number = (name: string, value: unknown): number => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < 0) throw new Error(`--${name} must be a number ≥ 0, got ${String(value)}`);
    return parsed;
  };
  const docs = number("docs", values.docs);
  const durations: Record<JobKind, number> = {
    registre: number("registre-ms", values["registre-ms"]),
    "index-ocr": number("index-ms", values["index-ms"]),
    "acte-ocr": number("acte-ms", values["acte-ms"]),
  };
  const sampleMs = Math.max(20, number("sample-ms", values["sample-ms"]));
  const outPath = isAbsolute(String(values.out)) ? String(values.out) : join(PROJECT_ROOT, String(values.out));
  const json = values.json === true;
  const say = (line: string) => {
    if (!json) console.log(line);
    else process.stderr.write(`${line}\n`);
  };

  const capacityConfig = parseCapacityConfig({});
  // Runner timings scaled like the work: a 60 s idle period becomes 3 s, a 2 s poll 0.25 s.
  const runnerEnv = {
    TEST_JOB_DURATION_MS_REGISTRE: String(durations.registre),
    TEST_JOB_DURATION_MS_INDEX_OCR: String(durations["index-ocr"]),
    TEST_JOB_DURATION_MS_ACTE_OCR: String(durations["acte-ocr"]),
    TEST_JOB_GEMINI_TOKENS_INDEX_OCR: String(number("index-tokens", values["index-tokens"])),
    TEST_JOB_GEMINI_TOKENS_ACTE_OCR: String(number("acte-tokens", values["acte-tokens"])),
    RUNNER_IDLE_EXIT_SECONDS: "3",
    RUNNER_POLL_SECONDS: "0.25",
    RUNNER_HAND_BACK_SECONDS: "0.5",
  };
  say(`utilization bench: ${docs} rows per source, registre ${durations.registre} ms, index OCR ${durations["index-ocr"]} ms, acte OCR ${durations["acte-ocr"]} ms; starting a private local stack…`);
  const stack = await startThrowawayStack("bench-utilization", { budgetEnv: runnerEnv, taskCommand: lifecycleTestTaskCommand });
  const sql = postgres(stack.urls.database, { max: 2, onnotice: () => {} });
  const redis = new Redis({ url: stack.urls.upstash, token: stack.secrets.upstashToken, enableTelemetry: false });
  const ledger = new CapacityLedger(redis, capacityConfig);
  const geminiModel = capacityConfig.gemini.models.fast;
  const gemini = new GeminiRateBudget(redis, capacityConfig.gemini);
  let geminiWindow = { limit: 0, windowMs: 0 };
  const samples: Sample[] = [];
  let insertedAt = 0;
  try {
    await sql`
      insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre, acte_type)
      select source, (4000000 + n)::text, 'Montréal',
             case when source = 'acte' then null else 'Cadastre du Québec' end,
             case when source = 'acte' then 'Acte' end
      from generate_series(1, ${docs}) as n, unnest(array['index', 'acte', 'plan_cadastraux']) as source`;
    insertedAt = Date.now();
    const total = docs * 3;
    let lastProgress = 0;
    for (;;) {
      const t = Date.now() - insertedAt;
      const [snapshot, backlog, geminiStatus] = await Promise.all([ledger.snapshot(), readBacklog(sql), gemini.status([geminiModel])]);
      const tpm = geminiStatus.models[geminiModel]?.tpm;
      geminiWindow = { limit: tpm?.limit ?? 0, windowMs: geminiStatus.windowMs };
      const demand = JOB_KINDS.reduce(
        (sum, kind) => {
          const rows = backlog[kind].waiting + backlog[kind].running;
          return { vcpu: sum.vcpu + rows * capacityConfig.profiles[kind].vcpu, ramGb: sum.ramGb + rows * capacityConfig.profiles[kind].ramGb };
        },
        { vcpu: 0, ramGb: 0 },
      );
      samples.push({
        t,
        vcpu: snapshot.allocated.vcpu,
        ramGb: snapshot.allocated.ramGb,
        tasks: { registre: snapshot.byKind.registre.leases, "index-ocr": snapshot.byKind["index-ocr"].leases, "acte-ocr": snapshot.byKind["acte-ocr"].leases },
        demandVcpu: demand.vcpu,
        demandRamGb: demand.ramGb,
        tokensUsed: tpm?.used ?? null,
      });
      const [done] = await sql<{ terminal: number }[]>`select count(*)::int as terminal from extraction_queue where status_id in (4, 5)`;
      const terminal = done?.terminal ?? 0;
      if (t - lastProgress >= 5_000) {
        lastProgress = t;
        say(`  ${(t / 1000).toFixed(0)} s: ${terminal}/${total} documents done, ${snapshot.allocated.vcpu} of ${snapshot.capacity.vcpu} vCPU allocated (${JOB_KINDS.map((kind) => `${kind} ${snapshot.byKind[kind].leases}`).join(", ")})`);
      }
      if (terminal >= total) break;
      if (t > 15 * 60_000) throw new Error(`gave up after 15 minutes with ${terminal}/${total} documents done`);
      await new Promise((resolve) => setTimeout(resolve, sampleMs));
    }

    const rows = await sql<{ status_id: number; latency_ms: number; finished_ms: number }[]>`
      select status_id,
             (extract(epoch from coalesce(ocr_completed_at, extraction_completed_at, updated_at) - created_at) * 1000)::float8 as latency_ms,
             (extract(epoch from coalesce(ocr_completed_at, extraction_completed_at, updated_at)) * 1000)::float8 as finished_ms
      from extraction_queue`;
    const capacity = { vcpu: capacityConfig.capacity.vcpu, ramGb: capacityConfig.capacity.ramGb };
    const result = summarize(samples, capacity, rows, insertedAt, geminiWindow);

    const svg = utilizationChartSvg(
      `Utilization: ${docs} × (index, acte, plan), default budget — ${(result.utilization * 100).toFixed(1)} % of ${result.bindingResource === "vcpu" ? "vCPU" : "RAM"} while the backlog exceeds capacity`,
      [
        { title: "allocated vCPU", unit: "vCPU", limit: capacity.vcpu, points: samples.map((sample) => [sample.t / 1000, sample.vcpu] as const) },
        { title: "allocated RAM", unit: "GB", limit: capacity.ramGb, points: samples.map((sample) => [sample.t / 1000, sample.ramGb] as const) },
        { title: `Gemini input tokens in the current ${geminiWindow.windowMs / 1000} s window, ${geminiModel}`, unit: "tokens", limit: result.geminiTokenLimitPerWindow, points: samples.map((sample) => [sample.t / 1000, sample.tokensUsed ?? 0] as const) },
      ],
    );
    await mkdir(dirname(outPath), { recursive: true });
    await writeFile(outPath, svg);

    say(`documents: ${result.documents} in ${(result.drainMs / 1000).toFixed(1)} s (${result.failed} failed) → ${result.docsPerMinute.toFixed(1)} documents/minute`);
    say(`insert → terminal: p50 ${(result.insertToTerminalP50Ms / 1000).toFixed(1)} s, p95 ${(result.insertToTerminalP95Ms / 1000).toFixed(1)} s`);
    say(
      `utilization while the backlog exceeds capacity (${(result.saturatedMs / 1000).toFixed(1)} s): vCPU ${result.vcpuUtilization.toFixed(3)}, RAM ${result.ramUtilization.toFixed(3)} → ${result.bindingResource} binds: ${result.utilization.toFixed(3)} (target ≥ 0.90)`,
    );
    say(`task mixes while saturated (registre+index+acte: share of time): ${result.mixes.map((mix) => `${mix.mix} ${(mix.share * 100).toFixed(0)} %`).join(", ")}`);
    say(`over-allocations sampled from the ledger: ${result.overAllocations} of ${samples.length} samples (must be 0)`);
    say(
      `Gemini input tokens (${geminiModel}, simulated): peak ${result.geminiPeakTokensPerWindow} in one ${result.geminiWindowMs / 1000} s window; limit ${result.geminiTokenLimitPerWindow} (${((result.geminiPeakTokensPerWindow / Math.max(1, result.geminiTokenLimitPerWindow)) * 100).toFixed(1)} %)`,
    );
    say(`chart: ${relative(process.cwd(), outPath) || outPath}`);
    if (json) console.log(JSON.stringify({ benchmark: "utilization", docsPerSource: docs, durationsMs: durations, chart: outPath, ...result }));
  } finally {
    await sql.end({ timeout: 2 });
    await stack.stop();
  }
}

interface Summary {
  utilization: number;
  bindingResource: "vcpu" | "ram";
  vcpuUtilization: number;
  ramUtilization: number;
  saturatedMs: number;
  overAllocations: number;
  documents: number;
  failed: number;
  drainMs: number;
  docsPerMinute: number;
  insertToTerminalP50Ms: number;
  insertToTerminalP95Ms: number;
  geminiPeakTokensPerWindow: number;
  geminiTokenLimitPerWindow: number;
  geminiWindowMs: number;
  mixes: { mix: string; share: number }[];
}

function summarize(
  samples: readonly Sample[],
  capacity: { vcpu: number; ramGb: number },
  rows: readonly { status_id: number; latency_ms: number; finished_ms: number }[],
  insertedAt: number,
  geminiWindow: { limit: number; windowMs: number },
): Summary {
  // Time-weighted: each sample holds until the next one.
  let saturatedMs = 0;
  let vcpuMs = 0;
  let ramMs = 0;
  const mixMs = new Map<string, number>();
  let overAllocations = 0;
  samples.forEach((sample, index) => {
    if (sample.vcpu > capacity.vcpu + 1e-9 || sample.ramGb > capacity.ramGb + 1e-9) overAllocations += 1;
    const next = samples[index + 1];
    if (!next) return;
    // Saturated: the waiting and running work could use more than the whole budget.
    if (sample.demandVcpu <= capacity.vcpu && sample.demandRamGb <= capacity.ramGb) return;
    const span = next.t - sample.t;
    saturatedMs += span;
    vcpuMs += span * (sample.vcpu / capacity.vcpu);
    ramMs += span * (sample.ramGb / capacity.ramGb);
    const mix = JOB_KINDS.map((kind) => sample.tasks[kind]).join("+");
    mixMs.set(mix, (mixMs.get(mix) ?? 0) + span);
  });
  const vcpuUtilization = saturatedMs > 0 ? vcpuMs / saturatedMs : 0;
  const ramUtilization = saturatedMs > 0 ? ramMs / saturatedMs : 0;
  const bindingResource = vcpuUtilization >= ramUtilization ? "vcpu" : "ram";

  const finished = rows.filter((row) => row.status_id === 5 || row.status_id === 4);
  const latencies = rows.filter((row) => row.status_id === 5).map((row) => row.latency_ms).sort((a, b) => a - b);
  const lastFinished = Math.max(insertedAt, ...finished.map((row) => row.finished_ms));
  const drainMs = lastFinished - insertedAt;
  return {
    utilization: Math.max(vcpuUtilization, ramUtilization),
    bindingResource,
    vcpuUtilization,
    ramUtilization,
    saturatedMs,
    overAllocations,
    documents: finished.length,
    failed: rows.filter((row) => row.status_id === 4).length,
    drainMs,
    docsPerMinute: drainMs > 0 ? finished.length / (drainMs / 60_000) : 0,
    insertToTerminalP50Ms: percentile(latencies, 50),
    insertToTerminalP95Ms: percentile(latencies, 95),
    geminiPeakTokensPerWindow: Math.max(0, ...samples.map((sample) => sample.tokensUsed ?? 0)),
    geminiTokenLimitPerWindow: geminiWindow.limit,
    geminiWindowMs: geminiWindow.windowMs,
    mixes: [...mixMs.entries()].sort((a, b) => b[1] - a[1]).map(([mix, ms]) => ({ mix, share: saturatedMs > 0 ? ms / saturatedMs : 0 })),
  };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}
