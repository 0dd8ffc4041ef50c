/**
 * `npm run registre:replay -- <folder>`: runs the runner's flows against the
 * recordings `npm run registre:record` made (routeFromHAR; nothing reaches
 * the network) and reports which paths still pass. Exit 0 when all pass, 1
 * when one does not, 2 on bad usage.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright";
import { CHROMIUM_ARGS } from "../runners/registre/registry-session.ts";
import { replayPath, type ReplayResult } from "./registre-recordings.ts";

const HELP = `Usage: npm run registre:replay -- <folder> [--json]

Replays every path recorded in <folder> (npm run registre:record) through the
runner's flows and prints, per path, PASS or FAIL with what the recording got
and what the runner gets now.
`;

export async function replayFolder(folder: string): Promise<ReplayResult[]> {
  const browser = await chromium.launch({ executablePath: process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium", args: [...CHROMIUM_ARGS] });
  try {
    const results: ReplayResult[] = [];
    for (const entry of (await readdir(folder, { withFileTypes: true })).filter((candidate) => candidate.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
      results.push(await replayPath(browser, join(folder, entry.name), 15_000));
    }
    return results;
  } finally {
    await browser.close();
  }
}

const describe = (outcome: ReplayResult["recorded"]) => ("pdfSha256" in outcome ? `PDF ${outcome.pdfSha256.slice(0, 12)}…` : `${outcome.kind}`);

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ options: { json: { type: "boolean" }, help: { type: "boolean" } }, allowPositionals: true });
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${HELP}`);
    return 2;
  }
  if (parsed.values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const [folder] = parsed.positionals;
  if (folder === undefined || parsed.positionals.length > 1) {
    process.stderr.write(HELP);
    return 2;
  }
  const results = await replayFolder(folder);
  if (parsed.values.json === true) process.stdout.write(`${JSON.stringify(results)}\n`);
  else for (const result of results) process.stdout.write(`${result.passed ? "PASS" : "FAIL"}  ${result.path.padEnd(16)} recorded ${describe(result.recorded)}, replayed ${describe(result.replayed)}\n`);
  return results.length > 0 && results.every((result) => result.passed) ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exit(await main());
