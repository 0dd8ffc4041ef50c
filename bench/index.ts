// `npm run bench -- <name>`: benchmarks that print numbers and assert nothing.
// `npm run bench` alone runs them all (run-all.ts): one table, one JSON each.
import { parseArgs } from "node:util";
import { runDispatchBench } from "./dispatch.ts";
import { runGeminiBudgetBench } from "./gemini-budget.ts";
import { runLedgerBench } from "./ledger.ts";
import { runOcrBench } from "./ocr.ts";
import { runRegistreBench } from "./registre.ts";
import { runAllBenchmarks } from "./run-all.ts";
import { runUtilizationBench, UTILIZATION_HELP } from "./utilization.ts";

const BENCHMARKS: Record<string, { describe: string; run: () => Promise<void>; help?: string }> = {
  ledger: { describe: "capacity ledger: acquire+release pairs/s with 1, 8, 32 clients; over-allocations", run: runLedgerBench },
  dispatch: { describe: "insert → RunTask latency (p50/p95/p99), claim+complete jobs/s with 8 runners", run: runDispatchBench },
  gemini: { describe: "drain OCR-like Gemini calls through the per-model budget against per-model quotas: calls/s, 429s, budget fractions (--json)", run: runGeminiBudgetBench },
  registre: { describe: "registre task against the registry replica: docs/min with 1 to 4 browser contexts (--contexts=3 for one count), peak Chromium PSS vs the 1 GB profile (--json)", run: runRegistreBench },
  ocr: { describe: "OCR: rasterize+upscale ms/page (p50/p95), offline engine s/page, OCR pool vs a scaled Gemini quota: TPM fraction, 429s (--json)", run: runOcrBench },
  utilization: { describe: "drain a mixed backlog: binding resource's utilization, over-allocations, docs/min, chart (SVG); options: utilization --help", run: runUtilizationBench, help: UTILIZATION_HELP },
};

// Not strict: a benchmark reads its own options (`--json`, `--docs=12`, …) from process.argv.
const { positionals, values } = parseArgs({ allowPositionals: true, strict: false, options: { help: { type: "boolean", default: false } } });
const helps = positionals.map((name) => BENCHMARKS[name]?.help);
if (values.help === true && positionals.length > 0 && helps.every((help) => help !== undefined)) {
  process.stdout.write(helps.join("\n"));
  process.exit(0);
}
if (values.help !== true && positionals.length === 0) {
  const runs = await runAllBenchmarks(Object.keys(BENCHMARKS));
  process.exit(runs.every((run) => run.exitCode === 0) ? 0 : 1);
}
if (values.help === true) {
  process.stdout.write(`Usage: npm run bench [-- <name> [<name> …]]   (no name: every benchmark, one table, bench/results/<name>.json each)\n\n${Object.entries(BENCHMARKS).map(([name, bench]) => `  ${name.padEnd(10)} ${bench.describe}`).join("\n")}\n`);
  process.exit(values.help ? 0 : 1);
}
for (const name of positionals) {
  const bench = BENCHMARKS[name];
  if (!bench) {
    process.stderr.write(`unknown benchmark "${name}"; known: ${Object.keys(BENCHMARKS).join(", ")}\n`);
    process.exit(1);
  }
}
for (const name of positionals) await BENCHMARKS[name]?.run();
