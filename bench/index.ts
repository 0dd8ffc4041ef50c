// `npm run bench -- <name>`: benchmarks that print numbers and assert nothing.
import { parseArgs } from "node:util";
import { runDispatchBench } from "./dispatch.ts";
import { runLedgerBench } from "./ledger.ts";

const BENCHMARKS: Record<string, { describe: string; run: () => Promise<void> }> = {
  ledger: { describe: "capacity ledger: acquire+release pairs/s with 1, 8, 32 clients; over-allocations", run: runLedgerBench },
  dispatch: { describe: "insert → RunTask latency (p50/p95/p99), claim+complete jobs/s with 8 runners", run: runDispatchBench },
};

const { positionals, values } = parseArgs({ allowPositionals: true, options: { help: { type: "boolean", default: false } } });
if (values.help || positionals.length === 0) {
  process.stdout.write(`Usage: npm run bench -- <name> [<name> …]\n\n${Object.entries(BENCHMARKS).map(([name, bench]) => `  ${name.padEnd(10)} ${bench.describe}`).join("\n")}\n`);
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
