/**
 * `npm run test:load` (issue 19, Load): LOAD_ROWS mixed rows (default
 * 10,000: index, acte and plan in turn) inserted one statement per row from
 * 8 connections, on a private local stack with the real dispatch function,
 * the real hints (the pg_net stand-in: NOTIFY → bridge), the real capacity
 * ledger on Redis behind the Upstash endpoint, and lifecycle test runners
 * whose work is a simulated duration. Asserts: every row terminal, none lost,
 * none completed twice (one attempt per stage), no over-allocation in any
 * ledger sample. Prints: time to drain, peak Upstash commands per second
 * (Redis's own command counter), peak hints (pg_net calls) per second.
 */
import { Redis as IoRedis } from "ioredis";
import { Redis } from "@upstash/redis";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { lifecycleTestTaskCommand } from "../../infra/local/lifecycle-test-task-command.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";

const ROWS = Number(process.env["LOAD_ROWS"] ?? "10000");
const CONNECTIONS = 8;
const SOURCES = ["index", "acte", "plan_cadastraux"] as const;

describe("the queue under load", () => {
  it(`drains ${ROWS} rows inserted one by one from ${CONNECTIONS} connections: all terminal, none lost or done twice, never over-allocated`, async () => {
    const runnerEnv = {
      TEST_JOB_DURATION_MS_REGISTRE: "20",
      TEST_JOB_DURATION_MS_INDEX_OCR: "40",
      TEST_JOB_DURATION_MS_ACTE_OCR: "30",
      RUNNER_IDLE_EXIT_SECONDS: "3",
      RUNNER_POLL_SECONDS: "0.25",
      RUNNER_HAND_BACK_SECONDS: "0.5",
      // Fewer task restarts on 2 cores; the fair-share re-plan is not what this measures.
      RUNNER_MAX_JOBS: "500",
    };
    const stack = await startThrowawayStack("load", { budgetEnv: runnerEnv, taskCommand: lifecycleTestTaskCommand });
    const admin = postgres(stack.urls.database, { max: 2, onnotice: () => {} });
    const inserters = postgres(stack.urls.database, { max: CONNECTIONS, onnotice: () => {} });
    const redisStats = new IoRedis(stack.urls.redis);
    const ledger = new CapacityLedger(new Redis({ url: stack.urls.upstash, token: stack.secrets.upstashToken, enableTelemetry: false }), parseCapacityConfig({}));
    const hintsPerSecond = new Map<number, number>();
    const listener = await admin.listen("edge_function_calls", () => {
      const second = Math.floor(Date.now() / 1000);
      hintsPerSecond.set(second, (hintsPerSecond.get(second) ?? 0) + 1);
    });
    let overAllocations = 0;
    let samples = 0;
    let peakCommandsPerSecond = 0;
    let peakVcpu = 0;
    const startedAt = Date.now();
    let sampling = true;
    const sampler = (async () => {
      let lastCommands = Number(/total_commands_processed:(\d+)/.exec(await redisStats.info("stats"))?.[1] ?? 0);
      let lastAt = Date.now();
      while (sampling) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const commands = Number(/total_commands_processed:(\d+)/.exec(await redisStats.info("stats"))?.[1] ?? 0);
        const now = Date.now();
        peakCommandsPerSecond = Math.max(peakCommandsPerSecond, ((commands - lastCommands) * 1000) / (now - lastAt));
        lastCommands = commands;
        lastAt = now;
        const snapshot = await ledger.snapshot();
        samples += 1;
        peakVcpu = Math.max(peakVcpu, snapshot.allocated.vcpu);
        if (snapshot.allocated.vcpu > snapshot.capacity.vcpu + 1e-9 || snapshot.allocated.ramGb > snapshot.capacity.ramGb + 1e-9) overAllocations += 1;
      }
    })();
    try {
      // One statement per row, 8 connections at once.
      await Promise.all(
        Array.from({ length: CONNECTIONS }, async (_, connection) => {
          for (let n = connection; n < ROWS; n += CONNECTIONS) {
            const source = SOURCES[n % SOURCES.length] ?? "index";
            await inserters`
              insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre, acte_type)
              values (${source}, ${String(5_000_000 + n)}, 'Montréal', ${source === "acte" ? null : "Cadastre du Québec"}, ${source === "acte" ? "Acte" : null})`;
          }
        }),
      );
      const insertedMs = Date.now() - startedAt;
      let terminal = 0;
      let lastLog = 0;
      while (terminal < ROWS) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        terminal = (await admin<{ n: number }[]>`select count(*)::int as n from extraction_queue where status_id in (4, 5)`)[0]?.n ?? 0;
        if (Date.now() - lastLog > 15_000) {
          lastLog = Date.now();
          console.log(`load: ${terminal}/${ROWS} terminal after ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
        }
        if (Date.now() - startedAt > 50 * 60_000) throw new Error(`gave up after 50 minutes with ${terminal}/${ROWS} terminal`);
      }
      const drainMs = Date.now() - startedAt;
      sampling = false;
      await sampler;

      const [check] = await admin<{ total: number; done: number; failed: number; twice: number }[]>`
        select count(*)::int as total,
               count(*) filter (where status_id = 5)::int as done,
               count(*) filter (where status_id = 4)::int as failed,
               count(*) filter (where attempts > 1 or ocr_attempts > 1)::int as twice
        from extraction_queue`;
      const peakHints = Math.max(0, ...hintsPerSecond.values());
      const figures = {
        rows: ROWS,
        connections: CONNECTIONS,
        insert_seconds: insertedMs / 1000,
        drain_seconds: drainMs / 1000,
        done: check?.done,
        failed: check?.failed,
        more_than_one_attempt: check?.twice,
        over_allocation_samples: overAllocations,
        ledger_samples: samples,
        peak_allocated_vcpu: peakVcpu,
        peak_upstash_commands_per_second: Math.round(peakCommandsPerSecond),
        peak_hints_per_second: peakHints,
        hints_total: [...hintsPerSecond.values()].reduce((a, b) => a + b, 0),
      };
      console.log(`load figures: ${JSON.stringify(figures)}`);
      expect(check?.total).toBe(ROWS);
      expect(check?.done).toBe(ROWS);
      expect(check?.twice).toBe(0);
      expect(overAllocations).toBe(0);
    } finally {
      sampling = false;
      await sampler.catch(() => {});
      await listener.unlisten().catch(() => {});
      redisStats.disconnect();
      await inserters.end({ timeout: 2 });
      await admin.end({ timeout: 2 });
      await stack.stop();
    }
  });
});
