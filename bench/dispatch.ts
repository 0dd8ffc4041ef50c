import { fork } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { Redis } from "@upstash/redis";
import postgres from "postgres";
import { PROJECT_ROOT } from "../infra/local/paths.ts";
import type { LocalStack } from "../infra/local/stack.ts";
import { startThrowawayStack } from "../infra/local/throwaway-stack.ts";
import { parseCapacityConfig } from "../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../supabase/functions/_shared/capacity-ledger.ts";
import { connectJobDatabase, JobQueue } from "../runners/lifecycle/job-queue.ts";

/**
 * `npm run bench -- dispatch`, on a private local stack:
 * 1. latency from a single-row INSERT to the local ECS endpoint receiving
 *    RunTask (trigger → NOTIFY → bridge → Deno dispatch → Upstash → RunTask),
 *    over 200 inserts one after another;
 * 2. claim + complete throughput of 8 concurrent runners (the runner's own
 *    JobQueue, as the `runner` role) over a 10,000-row backlog.
 * Prints numbers; asserts nothing. Targets: p50 < 150 ms, p99 < 500 ms, ≥ 1,000 jobs/s.
 */

const LATENCY_SAMPLES = Number(process.env["BENCH_LATENCY_SAMPLES"] ?? 200);
const BACKLOG = 10_000;
const RUNNERS = 8;

export async function runDispatchBench(): Promise<void> {
  console.log("dispatch bench: starting a private local stack…");
  // Tasks exit at once: the benchmark measures dispatch, not runners.
  const stack = await startThrowawayStack("bench-dispatch", { taskCommand: () => ({ command: process.execPath, args: ["-e", ""] }) });
  try {
    await measureLatency(stack);
    await measureThroughput(stack);
  } finally {
    await stack.stop();
  }
}

async function measureLatency(stack: LocalStack): Promise<void> {
  const sql = postgres(stack.urls.database, { max: 1, onnotice: () => {} });
  const ledger = new CapacityLedger(new Redis({ url: stack.urls.upstash, token: stack.secrets.upstashToken }), parseCapacityConfig({}));
  const latencies: number[] = [];
  try {
    // One warm-up insert: Deno compiles the function's code paths on first use.
    for (let i = -1; i < LATENCY_SAMPLES; i += 1) {
      const before = stack.ecs.tasks().length;
      const insertedAt = performance.timeOrigin + performance.now();
      await sql`insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type)
                values ('acte', ${String(2_000_000 + i)}, 'Montréal', 'Acte')`;
      const task = await waitFor(() => stack.ecs.tasks()[before]);
      if (i >= 0) latencies.push(task.runTaskReceivedAt - insertedAt);
      // Back to an empty queue and a free ledger before the next sample.
      await sql`delete from extraction_queue`;
      await ledger.release(task.clientToken ?? "");
      if ((i + 1) % 50 === 0) console.log(`  latency: ${i + 1}/${LATENCY_SAMPLES} inserts`);
    }
  } finally {
    await sql.end();
  }
  latencies.sort((a, b) => a - b);
  console.log(
    `insert → RunTask received, ${latencies.length} single-row inserts: ` +
      `p50 ${percentile(latencies, 50).toFixed(1)} ms, p95 ${percentile(latencies, 95).toFixed(1)} ms, ` +
      `p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${(latencies.at(-1) ?? 0).toFixed(1)} ms (targets: p50 < 150, p99 < 500)`,
  );
}

/**
 * Two ways to run the 8 runners, both 8 database sessions claiming at once:
 * as 8 loops in this process, and as 8 processes. In production each runner
 * has its own container; on a 2-core machine that also hosts Postgres, 8
 * extra Node processes mostly measure the scheduler, so both are printed.
 */
async function measureThroughput(stack: LocalStack): Promise<void> {
  for (const mode of ["loops in one process", "processes"] as const) {
    const admin = postgres(stack.urls.database, { max: 1, onnotice: () => {} });
    await admin`delete from extraction_queue`;
    await admin`insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type)
                select 'acte', (3000000 + n)::text, 'Laval', 'Acte' from generate_series(1, ${BACKLOG}) as n`;
    await admin`vacuum analyze extraction_queue`;
    console.log(`  throughput: ${BACKLOG} rows waiting, ${RUNNERS} runner ${mode} claiming…`);
    const { completed, seconds } = mode === "processes" ? await runProcesses(stack) : await runLoops(stack);
    const total = completed.reduce((sum, count) => sum + count, 0);
    const [check] = await admin<{ done: number }[]>`select count(*) filter (where status_id = 3)::int as done from extraction_queue`;
    await admin.end();
    console.log(
      `claim + complete, ${RUNNERS} runner ${mode} over ${BACKLOG} rows: ${total} jobs in ${seconds.toFixed(2)} s = ` +
        `${Math.round(total / seconds)} jobs/s (target ≥ 1,000); rows completed ${check?.done ?? 0}, per runner ${completed.join("/")}`,
    );
  }
}

async function runLoops(stack: LocalStack): Promise<{ completed: number[]; seconds: number }> {
  const pools = Array.from({ length: RUNNERS }, () => connectJobDatabase(stack.urls.runnerDatabase, { max: 1 }));
  await Promise.all(pools.map((sql) => sql`select 1`));
  const started = performance.now();
  const completed = await Promise.all(
    pools.map(async (sql, index) => {
      const queue = new JobQueue(sql, { kind: "registre", workerId: `bench-${index}`, leaseSeconds: 300 });
      let count = 0;
      // As the runner lifecycle does: each completion claims the next job.
      for (let job = await queue.claim(); job; count += 1) {
        job = (await queue.completeExtractionAndClaimNext(job, `actes/bench-${job.id}.pdf`)).next;
      }
      return count;
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(pools.map((sql) => sql.end()));
  return { completed, seconds };
}

async function runProcesses(stack: LocalStack): Promise<{ completed: number[]; seconds: number }> {
  const runners = await Promise.all(
    Array.from({ length: RUNNERS }, async (_, index) => {
      const child = fork(join(PROJECT_ROOT, "bench", "claim-complete-runner.ts"), {
        execArgv: ["--import", "tsx"],
        env: { ...process.env, BENCH_DATABASE_URL: stack.urls.runnerDatabase, BENCH_WORKER_ID: `bench-${index}` },
      });
      await once(child, "message");
      return child;
    }),
  );
  const started = performance.now();
  const completed = await Promise.all(
    runners.map(async (child) => {
      const done = once(child, "message");
      child.send("go");
      const [message] = (await done) as [{ completed: number }];
      return message.completed;
    }),
  );
  return { completed, seconds: (performance.now() - started) / 1000 };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting for RunTask");
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
