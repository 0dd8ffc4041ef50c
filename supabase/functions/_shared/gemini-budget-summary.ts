import type { BudgetUse, GeminiBudgetStatus, ModelBudgetStatus } from "./gemini-rate-budget.ts";

/**
 * The Gemini budget as people read it: per model, the requests and input
 * tokens of the current slice of the minute and the requests of the day, each
 * as used / limit and a percentage, plus cooldowns, pauses and the day's
 * statistics. `npm run status` and the benchmarks print this; `--json`
 * callers print `GeminiRateBudget.status()` itself.
 */

export function formatGeminiBudget(status: GeminiBudgetStatus, now: number = Date.now()): string {
  const rows = Object.values(status.models).map((model) => row(model, now));
  const per = `per ${status.windowMs / 1000} s ${status.minuteAdmission === "rolling" ? "rolling window" : "slice"}`;
  const header = ["model", `RPM (${per})`, `TPM in (${per})`, `RPD (${status.day})`, "waits", "today: in / out tokens, 429s"];
  const table = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...table.map((cells) => (cells[column] ?? "").length)));
  const lines = table.map((cells) => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd());
  return [`Gemini budget (day resets ${new Date(status.dayResetsAt).toISOString()}):`, ...lines.map((line) => `  ${line}`)].join("\n");
}

function row(model: ModelBudgetStatus, now: number): string[] {
  const waits: string[] = [];
  if (model.cooldownRemainingMs > 0) waits.push(`429 cooldown ${Math.ceil(model.cooldownRemainingMs / 1000)} s`);
  if (model.pausedUntil !== null) waits.push(`paused ${Math.ceil((model.pausedUntil - now) / 60_000)} min, to ${new Date(model.pausedUntil).toISOString()}`);
  return [
    model.model,
    use(model.rpm),
    use(model.tpm),
    use(model.rpd),
    waits.length > 0 ? waits.join(", ") : "-",
    `${compact(model.today.inputTokens)} / ${compact(model.today.outputTokens)}, ${model.today.rateLimited}`,
  ];
}

function use(budget: BudgetUse): string {
  return `${compact(budget.used)}/${compact(budget.limit)} ${(budget.fraction * 100).toFixed(1)}%`;
}

function compact(value: number): string {
  if (value >= 1_000_000) return `${Number((value / 1_000_000).toFixed(2))}M`;
  if (value >= 10_000) return `${Number((value / 1_000).toFixed(1))}K`;
  return String(value);
}
