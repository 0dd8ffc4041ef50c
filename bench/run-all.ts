/**
 * `npm run bench` with no name: every benchmark, one after another, each in
 * its own process (`npm run bench -- <name> --json`) so one's stacks and
 * timers never disturb the next. Shows each one's output as it runs, writes
 * `bench/results/<name>.json` (the benchmark's JSON when it prints one as its
 * last line, else its output lines, with the machine it ran on), and ends
 * with one table. Asserts nothing.
 */
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, freemem, totalmem } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { PROJECT_ROOT } from "../infra/local/paths.ts";

export interface BenchRun {
  readonly name: string;
  readonly seconds: number;
  readonly exitCode: number | null;
  /** The benchmark's last output line parsed as JSON, when it is one. */
  readonly result: unknown;
  readonly output: readonly string[];
}

export const RESULTS_DIR = join(PROJECT_ROOT, "bench", "results");

export function machine() {
  const cores = cpus();
  return {
    cpus: cores.length,
    cpuModel: cores[0]?.model ?? "unknown",
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    freeMemoryGb: Math.round((freemem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

export async function runAllBenchmarks(names: readonly string[]): Promise<BenchRun[]> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const runs: BenchRun[] = [];
  for (const [position, name] of names.entries()) {
    process.stdout.write(`\n━━ bench ${position + 1}/${names.length}: ${name} ━━\n`);
    const run = await runOne(name);
    runs.push(run);
    const file = join(RESULTS_DIR, `${name}.json`);
    await writeFile(
      file,
      `${JSON.stringify({ name, ranAt: new Date().toISOString(), machine: machine(), seconds: run.seconds, exitCode: run.exitCode, result: run.result ?? null, ...(run.result === undefined ? { output: run.output } : {}) }, null, 2)}\n`,
    );
    process.stdout.write(`━━ ${name}: ${run.exitCode === 0 ? "done" : `exit ${run.exitCode}`} in ${run.seconds} s; wrote ${file}\n`);
  }
  process.stdout.write(`\n${summaryTable(runs)}`);
  return runs;
}

async function runOne(name: string): Promise<BenchRun> {
  const startedAt = Date.now();
  const child = spawn(join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), [join(PROJECT_ROOT, "bench", "index.ts"), name, "--json"], {
    cwd: PROJECT_ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const output: string[] = [];
  const lines = createInterface({ input: child.stdout });
  lines.on("line", (line) => {
    output.push(line);
    process.stdout.write(`  ${line}\n`);
  });
  const exitCode = await new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  let result: unknown;
  const last = output.at(-1)?.trim();
  if (last?.startsWith("{")) {
    try {
      result = JSON.parse(last);
    } catch {
      result = undefined;
    }
  }
  return { name, seconds: Math.round((Date.now() - startedAt) / 100) / 10, exitCode, result, output };
}

/** One row per benchmark: its headline numbers (the top-level numbers of its JSON, or its last output line). */
export function summaryTable(runs: readonly BenchRun[]): string {
  const rows = runs.map((run) => [run.name, run.exitCode === 0 ? "ok" : `exit ${run.exitCode}`, `${run.seconds} s`, headline(run)]);
  const header = ["benchmark", "status", "took", "headline numbers (full results in bench/results/<name>.json)"];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd();
  return `${[line(header), widths.map((width) => "─".repeat(width)).join("  "), ...rows.map(line)].join("\n")}\n`;
}

function headline(run: BenchRun): string {
  if (run.result !== null && typeof run.result === "object") {
    const numbers = numericLeaves(run.result)
      .slice(0, 6)
      .map(([key, value]) => `${key}=${Number.isInteger(value) ? value : value.toFixed(2)}`);
    if (numbers.length > 0) return numbers.join(", ");
  }
  return (run.output.filter((line) => line.trim() !== "").at(-1) ?? "").trim().slice(0, 120);
}

/** The numbers in a JSON value, top level first, nested ones under dotted keys (arrays skipped: too long for a table). */
function numericLeaves(value: unknown, prefix = ""): [string, number][] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return [];
  const entries = Object.entries(value as Record<string, unknown>);
  const own = entries.filter((entry): entry is [string, number] => typeof entry[1] === "number").map(([key, number]): [string, number] => [`${prefix}${key}`, number]);
  const nested = entries.flatMap(([key, child]) => numericLeaves(child, `${prefix}${key}.`));
  return [...own, ...nested];
}
