import { randomBytes } from "node:crypto";
import { GoogleGenAI } from "@google/genai";
import { Redis } from "@upstash/redis";
import { freePort } from "../infra/local/free-port.ts";
import { startRedisServer } from "../infra/local/redis-server.ts";
import { startUpstashRestServer } from "../infra/local/upstash-rest-server.ts";
import { formatGeminiBudget } from "../supabase/functions/_shared/gemini-budget-summary.ts";
import { parseGeminiConfig } from "../supabase/functions/_shared/gemini-config.ts";
import { estimateInputTokens, GeminiDailyBudgetExhaustedError, GeminiRateLimitedError, withGeminiBudget } from "../supabase/functions/_shared/gemini-call.ts";
import { GeminiRateBudget, type GeminiBudgetStatus } from "../supabase/functions/_shared/gemini-rate-budget.ts";
import { startGeminiTestServer, type GeminiModelQuota } from "../tests/helpers/gemini-test-server.ts";

/**
 * `npm run bench -- gemini`: drains a backlog of OCR-like calls (a fast
 * extraction per job, a strong boost every fourth) through the per-model
 * budget and `@google/genai` against the Gemini test server, whose quotas
 * are per model over a sliding window (a second here instead of a minute, so
 * a run takes seconds). Prints calls/s per model, the 429s the server
 * answered (our own sending should cause none), the busiest rolling window
 * as a share of each quota, and the budget's per-model fractions while it
 * drains. `--json` prints the numbers as one JSON object. Asserts nothing.
 */

const WINDOW_MS = 1_000;
const WORKERS = 16;
const JOBS = 400;
const FAST = "gemini-3.5-flash-lite";
const STRONG = "gemini-3.8-flash";
/** The project's quota per one-second window, as the server enforces it. */
const QUOTA: Record<string, Required<GeminiModelQuota>> = {
  [FAST]: { rpm: 100, tpm: 50_000, rpd: 100_000 },
  [STRONG]: { rpm: 20, tpm: 100_000, rpd: 100_000 },
};

interface ModelNumbers {
  model: string;
  calls: number;
  callsPerSecond: number;
  rateLimited: number;
  /** Most requests and input tokens the server saw in one rolling window, as fractions of the quota. */
  busiestRpmFraction: number;
  busiestTpmFraction: number;
}

export async function runGeminiBudgetBench(): Promise<void> {
  const json = process.argv.includes("--json");
  // With --json, stdout carries only the result; progress goes to stderr.
  const say = (line: string) => (json ? process.stderr.write(`${line}\n`) : console.log(line));
  const redisServer = await startRedisServer({ port: await freePort() });
  const token = randomBytes(24).toString("base64url");
  const endpoint = await startUpstashRestServer({ redisUrl: redisServer.url, token, port: 0 });
  const server = await startGeminiTestServer({ windowMs: WINDOW_MS, quotas: QUOTA, latencyMs: 30, respond: () => ({ text: "OK", candidatesTokenCount: 2_000 }) });
  try {
    // 80 % of each quota, as the defaults take 80 % of Tier 3.
    const GEMINI_LIMITS = JSON.stringify(
      Object.fromEntries(Object.entries(QUOTA).map(([model, quota]) => [model, { rpm: quota.rpm * 0.8, tpm: quota.tpm * 0.8, rpd: quota.rpd * 0.8 }])),
    );
    const config = parseGeminiConfig({ GEMINI_LIMITS, GEMINI_FAST_MODEL: FAST, GEMINI_BOOST_MODEL: STRONG });
    const keyPrefix = `bench:gemini:${randomBytes(6).toString("hex")}`;
    const budgets = Array.from({ length: WORKERS }, () => new GeminiRateBudget(new Redis({ url: endpoint.url, token, enableTelemetry: false }), config, { keyPrefix, windowMs: WINDOW_MS }));
    const ai = new GoogleGenAI({ apiKey: "bench-key", httpOptions: { baseUrl: server.url } });
    const observer = budgets[0];
    if (!observer) throw new Error("no budget");

    say(`gemini bench: ${JOBS} jobs, ${WORKERS} workers, quotas per ${WINDOW_MS} ms window: ${JSON.stringify(QUOTA)}; budget at 80 %…`);
    const jobs = Array.from({ length: JOBS }, (_, i) => i);
    let done = 0;
    let paused = 0;
    const snapshots: GeminiBudgetStatus[] = [];
    const startedAt = Date.now();
    const progress = setInterval(() => {
      void observer.status().then((status) => {
        snapshots.push(status);
        const fast = status.models[FAST];
        const strong = status.models[STRONG];
        say(
          `  ${((Date.now() - startedAt) / 1000).toFixed(1)} s: ${done}/${JOBS} jobs; ${FAST} rpm ${pct(fast?.rpm.fraction)} tpm ${pct(fast?.tpm.fraction)} rpd ${pct(fast?.rpd.fraction)}; ` +
            `${STRONG} rpm ${pct(strong?.rpm.fraction)} tpm ${pct(strong?.tpm.fraction)} rpd ${pct(strong?.rpd.fraction)}`,
        );
      });
    }, 1_000);
    try {
      await Promise.all(
        budgets.map(async (budget) => {
          for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) {
            const page = `page ${job} `.padEnd(1_600, "x");
            // A 429 is counted (the server's log has it) and the call retried after the model's cooldown, as a runner would.
            const send = async (model: string, contents: string) => {
              for (;;) {
                try {
                  return await withGeminiBudget(budget, { model, estimatedTokens: estimateInputTokens({ textChars: contents.length }) }, () => ai.models.generateContent({ model, contents }));
                } catch (error) {
                  if (!(error instanceof GeminiRateLimitedError) || error.pausedUntil !== null) throw error;
                }
              }
            };
            try {
              await send(FAST, page);
              if (job % 4 === 0) await send(STRONG, `boost ${job} `.padEnd(8_000, "y"));
            } catch (error) {
              if (!(error instanceof GeminiDailyBudgetExhaustedError)) throw error;
              paused += 1;
            }
            done += 1;
          }
        }),
      );
    } finally {
      clearInterval(progress);
    }
    const seconds = (Date.now() - startedAt) / 1000;
    const generate = server.requests.filter((request) => request.kind === "generateContent");
    const models: ModelNumbers[] = [FAST, STRONG].map((model) => {
      const served = generate.filter((request) => request.model === model && request.status === 200);
      const busiest = (measure: (request: (typeof served)[number]) => number) =>
        Math.max(0, ...served.map((first) => served.filter((r) => r.receivedAt >= first.receivedAt && r.receivedAt < first.receivedAt + WINDOW_MS).reduce((sum, r) => sum + measure(r), 0)));
      return {
        model,
        calls: served.length,
        callsPerSecond: round(served.length / seconds),
        rateLimited: generate.filter((request) => request.model === model && request.status === 429).length,
        busiestRpmFraction: round(busiest(() => 1) / (QUOTA[model]?.rpm ?? 1)),
        busiestTpmFraction: round(busiest((request) => request.promptTokenCount) / (QUOTA[model]?.tpm ?? 1)),
      };
    });
    const final = await observer.status();
    if (json) {
      console.log(JSON.stringify({ jobs: JOBS, workers: WORKERS, windowMs: WINDOW_MS, seconds: round(seconds), pausedForTheDay: paused, models, budget: final, snapshots: snapshots.length }));
      return;
    }
    console.log(`\ngemini bench: ${JOBS} jobs in ${seconds.toFixed(1)} s (${paused} paused for the day)`);
    console.log("  model              calls  calls/s  429s  busiest window: requests / input tokens (share of quota)");
    for (const numbers of models) {
      console.log(
        `  ${numbers.model.padEnd(17)} ${String(numbers.calls).padStart(6)} ${String(numbers.callsPerSecond).padStart(8)} ${String(numbers.rateLimited).padStart(5)}  ${pct(numbers.busiestRpmFraction)} / ${pct(numbers.busiestTpmFraction)}`,
      );
    }
    console.log(formatGeminiBudget(final));
  } finally {
    await server.close();
    await endpoint.close();
    await redisServer.stop();
  }
}

function pct(fraction: number | undefined): string {
  return fraction === undefined ? "-" : `${(fraction * 100).toFixed(0)}%`;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
