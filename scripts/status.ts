// `npm run status`: the state of everything in one screen: the queue of each
// environment, running tasks, capacity used against available, the Gemini
// budget, cooldowns, stuck jobs and the last errors.
import { parseArgs } from "node:util";
import { ENVIRONMENTS, type Environment } from "../supabase/functions/_shared/environments.ts";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";
import { JOB_KINDS } from "../supabase/functions/_shared/job-kinds.ts";
import { resolveStackTargets } from "./stack-targets.ts";
import { collectStatus, GEMINI_WARNING_FRACTION, type StatusReport } from "./status-report.ts";
import { bar, percent } from "./terminal-bar.ts";

const HELP = `Usage: npm run status -- [--env dev,prod] [--json] [--watch [--interval S]]

The state of the pipeline: queue per environment, status (by name) and
document source; running tasks per kind; capacity used against available
(the ledger on Upstash, all environments together); Gemini requests and
input tokens used in the current window per model, flagged at ${GEMINI_WARNING_FRACTION * 100} %; the
Gemini and registry cooldowns; stuck jobs; the last errors.

It reads the views a user queries in Supabase Studio (extraction_queue_by_status,
running_tasks_by_kind, extraction_queue_stuck_jobs, extraction_queue_recent_errors).

Target: DATABASE_URL or DATABASE_URL_DEV/_STAGING/_PROD, and
UPSTASH_REDIS_REST_URL/_TOKEN, when set; else the local stack of \`npm start\`.
  --env E[,E]     only these environments
  --json          one JSON object per report (the last line); its "queue" is
                  an array of { environment, status_id, status, document_source, jobs }
  --watch         refresh until Ctrl+C
  --interval S    seconds between refreshes with --watch (default 2)
Exit status: 0, or 3 when a database or Upstash could not be read.
`;

async function main(): Promise<number> {
  let values;
  try {
    values = parseArgs({
      options: {
        env: { type: "string" },
        json: { type: "boolean", default: false },
        watch: { type: "boolean", default: false },
        interval: { type: "string", default: "2" },
        help: { type: "boolean", default: false },
      },
    }).values;
  } catch (error) {
    process.stderr.write(`${errorMessage(error)}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  let environments: Environment[] | undefined;
  if (values.env !== undefined) {
    const names = values.env.split(",").map((name) => name.trim()).filter((name) => name !== "");
    const unknown = names.filter((name) => !(ENVIRONMENTS as readonly string[]).includes(name));
    if (unknown.length > 0) {
      process.stderr.write(`--env: unknown environment ${unknown.join(", ")}; use ${ENVIRONMENTS.join(", ")}\n`);
      return 2;
    }
    environments = names as Environment[];
  }
  const intervalSeconds = Number(values.interval);
  if (!Number.isFinite(intervalSeconds) || intervalSeconds < 0.2) {
    process.stderr.write("--interval must be a number of seconds, at least 0.2\n");
    return 2;
  }

  let targets;
  try {
    targets = resolveStackTargets(process.env);
  } catch (error) {
    process.stderr.write(`${errorMessage(error)}\n`);
    return 2;
  }
  const missing = (environments ?? []).filter((name) => !targets.databases.some((db) => db.environment === name));
  if (missing.length > 0) {
    process.stderr.write(`--env: no database for ${missing.join(", ")} (configured: ${targets.databases.map((db) => db.environment).join(", ")})\n`);
    return 2;
  }

  for (;;) {
    const report = await collectStatus(targets, environments);
    if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else process.stdout.write(`${values.watch ? "\x1b[2J\x1b[H" : ""}${render(report)}`);
    if (!values.watch) return report.unavailable.length > 0 ? 3 : 0;
    await new Promise((resolve) => setTimeout(resolve, intervalSeconds * 1000));
  }
}

function render(report: StatusReport): string {
  const out: string[] = [`status at ${report.takenAt} (${report.source}; environments: ${report.environments.join(", ") || "none"})`, ""];

  out.push("QUEUE");
  if (report.queue.length === 0) out.push("  empty");
  for (const environment of report.environments) {
    const groups = report.queue.filter((group) => group.environment === environment);
    if (groups.length === 0) continue;
    out.push(`  ${environment}`);
    for (const group of groups) out.push(`    ${String(group.status_id).padEnd(2)} ${group.status.padEnd(20)} ${group.document_source.padEnd(16)} ${String(group.jobs).padStart(7)}`);
  }

  out.push("", "RUNNING TASKS");
  if (report.runningTasks.length === 0) out.push("  none");
  for (const group of report.runningTasks) {
    out.push(`  ${group.environment.padEnd(8)} ${group.kind.padEnd(10)} ${String(group.tasks).padStart(3)} task(s)${group.booting > 0 ? ` (${group.booting} booting)` : ""}  ${group.vcpu} vCPU, ${group.ramGb} GB`);
  }

  out.push("", "CAPACITY (all environments)");
  if (report.capacity === null) out.push("  unavailable");
  else {
    const { capacity, allocated, byKind } = report.capacity;
    out.push(`  vCPU ${bar(allocated.vcpu, capacity.vcpu)} ${allocated.vcpu} of ${capacity.vcpu} (${percent(allocated.vcpu, capacity.vcpu)} %)`);
    out.push(`  RAM  ${bar(allocated.ramGb, capacity.ramGb)} ${allocated.ramGb} of ${capacity.ramGb} GB (${percent(allocated.ramGb, capacity.ramGb)} %)`);
    out.push(`  leases: ${JOB_KINDS.map((kind) => `${kind} ${byKind[kind].leases}`).join(", ")}`);
    const holding = ENVIRONMENTS.filter((environment) => report.capacity?.byEnvironment[environment].leases);
    out.push(`  by environment: ${holding.length === 0 ? "nothing held" : holding.map((environment) => `${environment} ${report.capacity?.byEnvironment[environment].vcpu} vCPU, ${report.capacity?.byEnvironment[environment].ramGb} GB`).join("; ")}`);
  }

  out.push("", `GEMINI (current ${report.gemini === null ? "" : `${report.gemini.windowMs / 1000} s `}window, per model)`);
  if (report.gemini === null) out.push("  unavailable");
  for (const model of report.gemini?.models ?? []) {
    const flag = (used: number, limit: number) => (used >= limit * GEMINI_WARNING_FRACTION ? "  ⚠ over 80 %" : "");
    out.push(`  ${model.model}`);
    out.push(`    requests ${bar(model.rpm.used, model.rpm.limit)} ${model.rpm.percent} % (${model.rpm.used} of ${model.rpm.limit})${flag(model.rpm.used, model.rpm.limit)}`);
    out.push(`    tokens   ${bar(model.tpm.used, model.tpm.limit)} ${model.tpm.percent} % (${model.tpm.used} of ${model.tpm.limit})${flag(model.tpm.used, model.tpm.limit)}`);
    out.push(`    today    ${bar(model.rpd.used, model.rpd.limit)} ${model.rpd.percent} % (${model.rpd.used} of ${model.rpd.limit} requests)${flag(model.rpd.used, model.rpd.limit)}`);
  }

  out.push("", "COOLDOWNS");
  const geminiCooling = Object.entries(report.cooldowns.geminiMs).filter(([, ms]) => ms > 0);
  out.push(`  Gemini   ${geminiCooling.length === 0 ? "none" : geminiCooling.map(([model, ms]) => `${model} ${Math.ceil(ms / 1000)} s`).join(", ")}`);
  out.push(`  registry ${report.cooldowns.registryMs === null ? "unknown" : report.cooldowns.registryMs > 0 ? `${Math.ceil(report.cooldowns.registryMs / 1000)} s` : "none"}`);

  out.push("", "STUCK JOBS");
  if (report.stuckJobs.length === 0) out.push("  none");
  for (const job of report.stuckJobs) out.push(`  ${job.environment} ${job.id} ${job.kind} ${job.status} for ${job.running_for}: ${job.why_stuck}`);

  out.push("", "LAST ERRORS");
  if (report.lastErrors.length === 0) out.push("  none in the last 7 days");
  for (const error of report.lastErrors) {
    out.push(`  ${error.error_at} ${error.environment} ${error.id} ${error.stage}${error.final ? " (final)" : ""}: ${error.error.slice(0, 160)}`);
  }

  if (report.warnings.length > 0) out.push("", "WARNINGS", ...report.warnings.map((warning) => `  ⚠ ${warning}`));
  if (report.unavailable.length > 0) out.push("", "UNAVAILABLE", ...report.unavailable.map((line) => `  ${line}`));
  return `${out.join("\n")}\n`;
}

process.exitCode = await main();
