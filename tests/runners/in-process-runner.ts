/**
 * The real runner lifecycle (runRunner) in the test's own process, with a
 * handler the test writes: for the cases where the handler must do real I/O
 * a child process could not be scripted into (a real Gemini client meeting
 * a 429, a real Storage client meeting an outage, a result held back until
 * the test has stopped Postgres). Everything else is production code: the
 * claim, the heartbeat, the report, the ledger lease on the local Upstash.
 */
import { inject } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import type { JobKind } from "../../supabase/functions/_shared/job-kinds.ts";
import { parseRunnerConfig, secretValues } from "../../runners/lifecycle/runner-config.ts";
import { runRunner, type JobHandler, type RunnerExitCode } from "../../runners/lifecycle/run-runner.ts";
import { createLogger } from "../../runners/lifecycle/structured-log.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";
import type { LogLine } from "./lifecycle-test-runner.ts";

/** Room for many leases, so one a failed test leaves behind never blocks the next. */
const CAPACITY_ENV = { SERVER_MAX_CPU: "100", SERVER_MAX_RAM: "100" } as const;

export interface InProcessRun {
  /** Resolves with the exit code runRunner returned. */
  readonly exited: Promise<RunnerExitCode>;
  /** Every log line so far, parsed. */
  logs(): LogLine[];
  /** Every log line so far, as written. */
  readonly output: string[];
  /** Frees the runner's capacity lease behind its back, as an expiry would: the runner must drain. */
  revokeLedgerLease(): Promise<boolean>;
}

/** Takes a ledger lease as dispatch would, then runs one runner of `kind` against `databaseUrl` until it exits. */
export async function runInProcess(options: {
  name: string;
  kind: JobKind;
  databaseUrl: string;
  handle: JobHandler;
  env?: Record<string, string>;
}): Promise<InProcessRun> {
  const keyPrefix = `${randomKeyPrefix(options.name)}:`;
  const env: Record<string, string> = {
    JOB_KIND: options.kind,
    ENVIRONMENT: "dev",
    DATABASE_URL: options.databaseUrl,
    UPSTASH_REDIS_REST_URL: inject("upstashUrl"),
    UPSTASH_REDIS_REST_TOKEN: inject("upstashToken"),
    REDIS_KEY_PREFIX: keyPrefix,
    WORKER_ID: options.name,
    RUNNER_IDLE_EXIT_SECONDS: "1",
    RUNNER_POLL_SECONDS: "0.1",
    ...CAPACITY_ENV,
    ...options.env,
  };
  const ledger = new CapacityLedger(upstashClient(), parseCapacityConfig(env), { keyPrefix: `${keyPrefix}ledger` });
  const grant = await ledger.acquire(options.kind, { environment: "dev", holder: "dispatch@dev" });
  if (!grant.granted) throw new Error(`test lease refused: ${grant.reason}`);
  const config = parseRunnerConfig({ ...env, LEDGER_LEASE_ID: grant.lease.id });

  const output: string[] = [];
  const log = createLogger({
    base: { kind: config.jobKind, environment: config.environment, worker_id: config.workerId },
    secrets: secretValues(config),
    write: (line) => output.push(line.trimEnd()),
  });
  const exited = runRunner({ config, handle: options.handle, log, handleSignals: false });
  return {
    exited,
    output,
    logs: () => output.map((line) => JSON.parse(line) as LogLine),
    revokeLedgerLease: () => ledger.release(grant.lease.id),
  };
}
