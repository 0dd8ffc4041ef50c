// `npm run plan`: sizes a deployment. For a server (and optionally a mix of
// tasks) says whether the mix fits, what it uses of the vCPU, RAM and Gemini
// budgets, and, with no mix, which mix gives the most documents per hour.
import { z } from "zod";
import { readCommandLine } from "./command-line.ts";
import { JOB_KINDS, type JobKind } from "../supabase/functions/_shared/job-kinds.ts";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";
import { budgetFor, DOCUMENT_COSTS, evaluateMix, recommendMix, REQUEST_SHARES, workerRates, type MixEvaluation, type ServerSize } from "./capacity-plan.ts";
import { bar, percent } from "./terminal-bar.ts";

const HELP = `Usage: npm run plan -- [--vcpu N] [--ram-gb N] [--reserve PERCENT]
                     [--registre N --index N --acte N] [--json] [--table]

For a server of --vcpu and --ram-gb (defaults: SERVER_MAX_CPU, SERVER_MAX_RAM,
else 8 and 16) keeping --reserve percent of each unleased (default
SERVER_RESERVE_CPU_PERCENT, else 20):
  with a mix (--registre, --index, --acte; a kind left out counts 0):
    whether it fits, vCPU and RAM used of what is available, and the Gemini
    RPM and TPM it implies with every worker busy;
  without a mix: the recommended one, the most documents per hour within
    every budget.
Per-task vCPU and RAM are the ledger's profiles (REGISTRE_VCPU, …). Gemini
limits are per model (GEMINI_LIMITS, GEMINI_MODEL_FAST, GEMINI_MODEL_BOOST):
every call and token is counted against the smallest RPM and TPM among the
models OCR calls, the safe side since the seeds do not split calls by model.

  --table   the recommended mix for 4/8, 8/16, 16/32 and 32/64 servers (Markdown)
  --json    print one JSON object
  --help    this text

Exit status: 0 when the mix fits (or with no mix), 1 when it does not, 2 on bad input.
`;

const count = z.string().regex(/^\d+$/, { error: "must be a whole number such as 2" }).transform(Number);
const amount = z.string().regex(/^\d+(\.\d+)?$/, { error: "must be a number such as 8 or 0.75" }).transform(Number);
const argsSchema = z.object({
  vcpu: amount.pipe(z.number().positive({ error: "must be greater than 0" })).optional(),
  "ram-gb": amount.pipe(z.number().positive({ error: "must be greater than 0" })).optional(),
  reserve: amount.pipe(z.number().max(95, { error: "must be at most 95" })).optional(),
  registre: count.optional(),
  index: count.optional(),
  acte: count.optional(),
  json: z.boolean(),
  table: z.boolean(),
  help: z.boolean(),
});

const TABLE_SERVERS: readonly { vcpu: number; ramGb: number }[] = [
  { vcpu: 4, ramGb: 8 },
  { vcpu: 8, ramGb: 16 },
  { vcpu: 16, ramGb: 32 },
  { vcpu: 32, ramGb: 64 },
];

function main(): number {
  const commandLine = readCommandLine(
    {
      vcpu: { type: "string" },
      "ram-gb": { type: "string" },
      reserve: { type: "string" },
      registre: { type: "string" },
      index: { type: "string" },
      acte: { type: "string" },
      json: { type: "boolean", default: false },
      table: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    argsSchema,
    HELP,
  );
  if ("exitCode" in commandLine) return commandLine.exitCode;
  const args = commandLine.args;
  const reserve = args.reserve;
  if (args.table) {
    process.stdout.write(markdownTable(reserve));
    return 0;
  }

  const server: ServerSize = { vcpu: args.vcpu, ramGb: args["ram-gb"], reservePercent: reserve };
  let config;
  try {
    config = budgetFor(server, process.env);
  } catch (error) {
    process.stderr.write(`${errorMessage(error)}\n`);
    return 2;
  }
  const given = args.registre !== undefined || args.index !== undefined || args.acte !== undefined;
  const evaluation = given
    ? evaluateMix(config, { registre: args.registre ?? 0, "index-ocr": args.index ?? 0, "acte-ocr": args.acte ?? 0 })
    : recommendMix(config);
  const report = {
    server: { ...config.server, leasable: config.capacity },
    recommended: !given,
    ...evaluation,
    assumptions: assumptions(),
  };
  if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(readable(evaluation, config.server, !given));
  return evaluation.fits ? 0 : 1;
}

function assumptions() {
  const rates = workerRates();
  return {
    secondsPerDocument: Object.fromEntries(JOB_KINDS.map((kind) => [kind, DOCUMENT_COSTS[kind].seconds])),
    geminiPerWorker: Object.fromEntries(JOB_KINDS.map((kind) => [kind, { rpm: round1(rates[kind].geminiRpm), tpm: Math.round(rates[kind].geminiTpm) }])),
    requestShares: REQUEST_SHARES,
  };
}

const KIND_LABEL: Record<JobKind, string> = { registre: "registre", "index-ocr": "index OCR", "acte-ocr": "acte OCR" };

function mixText(evaluation: MixEvaluation): string {
  return JOB_KINDS.map((kind) => `${evaluation.mix[kind]} ${KIND_LABEL[kind]}`).join(" + ");
}

function readable(e: MixEvaluation, server: { maxVcpu: number; maxRamGb: number; reserveVcpuPercent: number; reserveRamPercent: number }, recommended: boolean): string {
  const rates = workerRates();
  const lines = [
    `server ${server.maxVcpu} vCPU / ${server.maxRamGb} GB, reserve ${server.reserveVcpuPercent} % / ${server.reserveRamPercent} % → ${e.vcpu.available} vCPU / ${e.ramGb.available} GB leasable`,
    `${recommended ? "recommended mix" : "mix"}: ${mixText(e)}`,
    e.fits ? "fits: yes" : `fits: NO (${e.overBy.join("; ")})`,
    `  vCPU        ${bar(e.vcpu.used, e.vcpu.available)} ${e.vcpu.used} of ${e.vcpu.available} (${percent(e.vcpu.used, e.vcpu.available)} %)`,
    `  RAM         ${bar(e.ramGb.used, e.ramGb.available)} ${e.ramGb.used} of ${e.ramGb.available} GB (${percent(e.ramGb.used, e.ramGb.available)} %)`,
    `  Gemini RPM  ${bar(e.gemini.rpm, e.gemini.rpmLimit)} ${e.gemini.rpm} of ${e.gemini.rpmLimit} (${percent(e.gemini.rpm, e.gemini.rpmLimit)} %, limit of ${e.gemini.model})`,
    `  Gemini TPM  ${bar(e.gemini.tpm, e.gemini.tpmLimit)} ${e.gemini.tpm.toLocaleString("en-US")} of ${e.gemini.tpmLimit.toLocaleString("en-US")} (${percent(e.gemini.tpm, e.gemini.tpmLimit)} %)`,
    e.documentsPerHour > 0
      ? `≈ ${e.documentsPerHour} requests/hour through every stage (limited by ${e.bottleneck === null ? "nothing" : KIND_LABEL[e.bottleneck]})`
      : "no request gets through every stage at once: OCR runs only while registre tasks are idle (dispatch gives registre priority)",
    "",
    "assumed per document (one busy worker):",
    `  registre   ${DOCUMENT_COSTS.registre.seconds} s a fetch (our assumption: search, slow result page, download; login reused)`,
    `  index OCR  ${DOCUMENT_COSTS["index-ocr"].seconds} s a 10-page index, ${DOCUMENT_COSTS["index-ocr"].geminiCalls} calls, ${DOCUMENT_COSTS["index-ocr"].geminiTokens.toLocaleString("en-US")} tokens → ${round1(rates["index-ocr"].geminiRpm)} RPM, ${Math.round(rates["index-ocr"].geminiTpm).toLocaleString("en-US")} TPM`,
    `  acte OCR   ${DOCUMENT_COSTS["acte-ocr"].seconds} s an acte, ${DOCUMENT_COSTS["acte-ocr"].geminiCalls} calls, ${DOCUMENT_COSTS["acte-ocr"].geminiTokens.toLocaleString("en-US")} tokens → ${round1(rates["acte-ocr"].geminiRpm)} RPM, ${Math.round(rates["acte-ocr"].geminiTpm).toLocaleString("en-US")} TPM`,
    "  requests: equal numbers of index, acte and plan (plans are not OCRed)",
  ];
  return `${lines.join("\n")}\n`;
}

function markdownTable(reservePercent: number | undefined): string {
  const rows = [
    "| server (vCPU / GB) | leasable | recommended mix (registre + index OCR + acte OCR) | vCPU used | RAM used (GB) | Gemini RPM | Gemini TPM | requests/hour |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const size of TABLE_SERVERS) {
    const config = budgetFor({ ...size, reservePercent }, process.env);
    const e = recommendMix(config);
    rows.push(
      `| ${size.vcpu} / ${size.ramGb} | ${e.vcpu.available} / ${e.ramGb.available} | ${JOB_KINDS.map((kind) => e.mix[kind]).join(" + ")} | ${e.vcpu.used} | ${e.ramGb.used} | ${e.gemini.rpm} | ${e.gemini.tpm.toLocaleString("en-US")} | ${e.documentsPerHour} |`,
    );
  }
  return `${rows.join("\n")}\n`;
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

process.exitCode = main();
