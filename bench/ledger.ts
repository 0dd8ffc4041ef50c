import { randomBytes } from "node:crypto";
import { Redis } from "@upstash/redis";
import { freePort } from "../infra/local/free-port.ts";
import { startRedisServer } from "../infra/local/redis-server.ts";
import { startUpstashRestServer } from "../infra/local/upstash-rest-server.ts";
import { parseCapacityConfig } from "../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../supabase/functions/_shared/capacity-ledger.ts";
import { ENVIRONMENTS } from "../supabase/functions/_shared/environments.ts";

/**
 * `npm run bench -- ledger`: acquire+release pairs per second through the
 * local Upstash endpoint, with 1, 8 and 32 concurrent clients contending for
 * the default budget (6.4 vCPU: six acte-ocr leases at once), while an
 * observer snapshots the ledger and counts over-allocations (must stay 0).
 * Prints numbers; asserts nothing.
 */

const CLIENT_COUNTS = [1, 8, 32] as const;
const SECONDS_PER_ROUND = 3;

interface RoundResult {
  clients: number;
  seconds: number;
  pairs: number;
  refused: number;
  acquireP50Ms: number;
  acquireP99Ms: number;
  snapshots: number;
  overAllocations: number;
}

export async function runLedgerBench(): Promise<void> {
  const redisServer = await startRedisServer({ port: await freePort() });
  const token = randomBytes(24).toString("base64url");
  const endpoint = await startUpstashRestServer({ redisUrl: redisServer.url, token, port: 0 });
  try {
    const config = parseCapacityConfig({});
    const results: RoundResult[] = [];
    for (const clients of CLIENT_COUNTS) {
      console.log(`ledger bench: ${clients} client(s) for ${SECONDS_PER_ROUND} s…`);
      results.push(await runRound(clients, () => new Redis({ url: endpoint.url, token, enableTelemetry: false }), config));
    }
    printTable(results, config.capacity);
  } finally {
    await endpoint.close();
    await redisServer.stop();
  }
}

async function runRound(
  clients: number,
  client: () => Redis,
  config: ReturnType<typeof parseCapacityConfig>,
): Promise<RoundResult> {
  const keyPrefix = `bench:${randomBytes(6).toString("hex")}`;
  const until = Date.now() + SECONDS_PER_ROUND * 1000;
  const latencies: number[] = [];
  let pairs = 0;
  let refused = 0;
  let snapshots = 0;
  let overAllocations = 0;
  const capacity = config.capacity;

  const observer = new CapacityLedger(client(), config, { keyPrefix });
  const observing = (async () => {
    while (Date.now() < until) {
      const snapshot = await observer.snapshot();
      snapshots += 1;
      if (snapshot.allocated.vcpu > capacity.vcpu || snapshot.allocated.ramGb > capacity.ramGb) overAllocations += 1;
    }
  })();

  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      const ledger = new CapacityLedger(client(), config, { keyPrefix });
      const holder = { environment: ENVIRONMENTS[i % ENVIRONMENTS.length] ?? "dev", holder: `bench-${i}` };
      while (Date.now() < until) {
        const began = performance.now();
        const result = await ledger.acquire("acte-ocr", holder);
        latencies.push(performance.now() - began);
        if (!result.granted) {
          refused += 1;
          continue;
        }
        await ledger.release(result.lease.id);
        pairs += 1;
      }
    }),
  );
  const seconds = (performance.now() - startedAt) / 1000;
  await observing;

  latencies.sort((a, b) => a - b);
  const percentile = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  return { clients, seconds, pairs, refused, acquireP50Ms: percentile(0.5), acquireP99Ms: percentile(0.99), snapshots, overAllocations };
}

function printTable(results: readonly RoundResult[], capacity: { vcpu: number; ramGb: number }): void {
  console.log(`\ncapacity ledger through the local Upstash endpoint (capacity ${capacity.vcpu} vCPU / ${capacity.ramGb} GB; acte-ocr leases of 1 vCPU)\n`);
  const header = ["clients", "pairs/s", "pairs", "refused", "acquire p50 ms", "acquire p99 ms", "snapshots", "over-allocations"];
  const rows = results.map((r) => [
    String(r.clients),
    (r.pairs / r.seconds).toFixed(0),
    String(r.pairs),
    String(r.refused),
    r.acquireP50Ms.toFixed(1),
    r.acquireP99Ms.toFixed(1),
    String(r.snapshots),
    String(r.overAllocations),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padStart(widths[column] ?? 0)).join("  ");
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  const over = results.reduce((sum, r) => sum + r.overAllocations, 0);
  console.log(over === 0 ? "\nno over-allocation observed" : `\nOVER-ALLOCATION observed ${over} time(s): the ledger is broken`);
}
