// The dispatch function: called by the row-change hint (pg_net) and by the
// pg_cron tick. Authenticates the caller, runs one dispatch, answers with
// what was planned, started and refused. The logic lives in _shared/.
import { Redis } from "@upstash/redis";
import postgres from "postgres";
import { CapacityLedger } from "../_shared/capacity-ledger.ts";
import { dispatch, DispatchUnavailableError } from "../_shared/dispatch.ts";
import { parseDispatchConfig } from "../_shared/dispatch-config.ts";
import { EcsClient } from "../_shared/ecs-client.ts";
import { GeminiRateBudget } from "../_shared/gemini-rate-budget.ts";
import { SpotFallback } from "../_shared/spot-fallback.ts";
import { verifyHint } from "../_shared/hint-signature.ts";
import { redisKeyPrefixes } from "../_shared/redis-keys.ts";
import { errorMessage } from "../_shared/error-message.ts";

const config = parseDispatchConfig(Deno.env.toObject());
// prepare: false because hosted functions reach Postgres through the
// transaction pooler, which cannot keep prepared statements.
const sql = postgres(config.databaseUrl, { max: 2, prepare: false, connect_timeout: 5, idle_timeout: 20 });
// One quick retry: a dispatcher that cannot reach Upstash answers 503 and
// the next tick tries again, rather than waiting out the client's backoff.
const redis = new Redis({ url: config.upstash.url, token: config.upstash.token, retry: { retries: 1, backoff: () => 100 }, enableAutoPipelining: false });
const keys = redisKeyPrefixes(config.redisKeyPrefix);
const ledger = new CapacityLedger(redis, config.capacity, { keyPrefix: keys.ledger });
const gemini = new GeminiRateBudget(redis, config.capacity.gemini, { keyPrefix: keys.gemini });
// OCR on Fargate Spot falls back to FARGATE once Spot has refused it for ECS_SPOT_FALLBACK_SECONDS.
const ecs = new EcsClient(config.ecs, { spotFallback: new SpotFallback(redis, { keyPrefix: keys.spotRefused, waitMs: config.ecs.spotFallbackMs }) });
const log = (entry: Record<string, unknown>) => console.log(JSON.stringify({ time: new Date().toISOString(), function: "dispatch", environment: config.environment, ...entry }));

Deno.serve(async (request) => {
  if (request.method !== "POST") return Response.json({ error: "use POST" }, { status: 405 });
  // Signed, not a bearer secret: see hint-signature.ts.
  const rawBody = await request.text();
  const verdict = await verifyHint(config.dispatchSecret, request.headers, rawBody, Date.now());
  if (!verdict.ok) return Response.json({ error: verdict.reason }, { status: 401 });
  const reason = readReason(rawBody);
  try {
    const outcome = await dispatch({ config, sql, redis, ledger, gemini, ecs, log }, reason);
    return Response.json(outcome, { status: 200 });
  } catch (error) {
    if (error instanceof DispatchUnavailableError) {
      log({ level: "warn", msg: "dispatch unavailable; nothing started", reason, error: error.message });
      return Response.json({ error: error.message, started: [] }, { status: 503 });
    }
    log({ level: "error", msg: "dispatch failed", reason, error: errorMessage(error) });
    return Response.json({ error: "dispatch failed; see the function log" }, { status: 500 });
  }
});

function readReason(rawBody: string): string {
  try {
    const body: unknown = JSON.parse(rawBody);
    if (body && typeof body === "object" && "reason" in body && typeof body.reason === "string") return body.reason.slice(0, 64);
  } catch {
    // An empty or non-JSON body is still a valid trigger.
  }
  return "unspecified";
}
