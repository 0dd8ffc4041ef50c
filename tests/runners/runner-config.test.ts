import { describe, expect, test } from "vitest";
import { DEFAULT_JOB_LEASE_SECONDS, parseRunnerConfig, RunnerConfigError, secretValues } from "../../runners/lifecycle/runner-config.ts";
import { parseRegistreConfig, registreContexts } from "../../runners/registre/registre-config.ts";
import { RUNNER_TASK_ENV, runnerTaskEnvironment } from "../../supabase/functions/_shared/ecs-client.ts";

const TASK_ENV = {
  // Exactly what dispatch puts in the container environment.
  ...runnerTaskEnvironment({ kind: "index-ocr", environment: "staging", ledgerLeaseId: "0b6c1f5e-6f7a-4d7e-9d55-2f1f0f0c1a2b" }),
  DATABASE_URL: "postgres://runner.project:s%40cret-pass@pooler.example.com:6543/postgres",
  UPSTASH_REDIS_REST_URL: "https://eu1-example.upstash.io",
  UPSTASH_REDIS_REST_TOKEN: "AX-upstash-token",
};

function configError(env: Record<string, string | undefined>): RunnerConfigError {
  try {
    parseRunnerConfig(env);
  } catch (error) {
    if (error instanceof RunnerConfigError) return error;
    throw error;
  }
  throw new Error("expected a RunnerConfigError");
}

describe("parseRunnerConfig", () => {
  test("reads the task environment dispatch sets and applies the documented defaults", () => {
    const config = parseRunnerConfig(TASK_ENV);
    expect(config).toMatchObject({
      jobKind: "index-ocr",
      environment: "staging",
      ledgerLeaseId: "0b6c1f5e-6f7a-4d7e-9d55-2f1f0f0c1a2b",
      ledgerKeyPrefix: "ledger",
      idleExitMs: 60_000,
      jobLeaseSeconds: DEFAULT_JOB_LEASE_SECONDS["index-ocr"],
      shutdownGraceMs: 100_000,
      maxInfrastructureFailures: 3,
      logLevel: "info",
    });
    expect(config.workerId).toMatch(/-\d+$/);
    expect(config.capacity.leaseTtlMs).toBe(300_000);
  });

  test("defaults each kind's job lease to at least five minutes, and JOB_LEASE_SECONDS overrides it", () => {
    for (const lease of Object.values(DEFAULT_JOB_LEASE_SECONDS)) expect(lease).toBeGreaterThanOrEqual(300);
    expect(parseRunnerConfig({ ...TASK_ENV, JOB_LEASE_SECONDS: "45" }).jobLeaseSeconds).toBe(45);
  });

  test("puts the ledger under the same Redis key prefix as dispatch", () => {
    expect(parseRunnerConfig({ ...TASK_ENV, REDIS_KEY_PREFIX: "staging:" }).ledgerKeyPrefix).toBe("staging:ledger");
  });

  test("names every missing variable, using the names dispatch writes", () => {
    const error = configError({ [RUNNER_TASK_ENV.jobKind]: "registre" });
    expect(error.variables).toEqual([RUNNER_TASK_ENV.environment, RUNNER_TASK_ENV.ledgerLeaseId, "DATABASE_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"]);
    expect(error.message).toContain("LEDGER_LEASE_ID is missing");
  });

  test("refuses malformed values without echoing them", () => {
    const error = configError({ ...TASK_ENV, DATABASE_URL: "mysql://root:topsecret@db/x", JOB_KIND: "plans", SHUTDOWN_GRACE_SECONDS: "115", JOB_LEASE_SECONDS: "1.5" });
    expect(error.variables).toEqual(["JOB_KIND", "DATABASE_URL", "JOB_LEASE_SECONDS", "SHUTDOWN_GRACE_SECONDS"]);
    expect(error.message).not.toContain("topsecret");
    expect(error.message).toMatch(/SHUTDOWN_GRACE_SECONDS must be at most 110/);
  });

  test("lists the database password and the Upstash token as secrets to keep out of logs", () => {
    expect(secretValues(parseRunnerConfig(TASK_ENV)).sort()).toEqual(["AX-upstash-token", "s@cret-pass"]);
  });

  test("runs 3 registre jobs at once by default and 1 of each OCR kind; RUNNER_CONCURRENCY overrides, within 1 to 8", () => {
    expect(parseRunnerConfig(TASK_ENV).concurrency).toBe(1);
    expect(parseRunnerConfig({ ...TASK_ENV, JOB_KIND: "acte-ocr" }).concurrency).toBe(1);
    expect(parseRunnerConfig({ ...TASK_ENV, JOB_KIND: "registre" }).concurrency).toBe(3);
    expect(parseRunnerConfig({ ...TASK_ENV, RUNNER_CONCURRENCY: "2" }).concurrency).toBe(2);
    expect(configError({ ...TASK_ENV, RUNNER_CONCURRENCY: "9" }).message).toMatch(/RUNNER_CONCURRENCY must be at most 8/);
    expect(configError({ ...TASK_ENV, RUNNER_CONCURRENCY: "0" }).variables).toEqual(["RUNNER_CONCURRENCY"]);
  });

  test("REGISTRE_CONTEXTS sets the registre task's slots; set with a different RUNNER_CONCURRENCY it is refused, naming both", () => {
    const registre = { ...TASK_ENV, JOB_KIND: "registre" };
    const contexts = (env: Record<string, string>) => registreContexts(parseRegistreConfig(env), parseRunnerConfig(env).concurrency, env);
    expect(contexts(registre)).toBe(3);
    expect(contexts({ ...registre, REGISTRE_CONTEXTS: "4" })).toBe(4);
    expect(contexts({ ...registre, RUNNER_CONCURRENCY: "2" })).toBe(2);
    expect(contexts({ ...registre, RUNNER_CONCURRENCY: "2", REGISTRE_CONTEXTS: "2" })).toBe(2);
    expect(() => contexts({ ...registre, RUNNER_CONCURRENCY: "2", REGISTRE_CONTEXTS: "4" })).toThrow(/REGISTRE_CONTEXTS \(4\) and RUNNER_CONCURRENCY \(2\) differ/);
    expect(() => parseRegistreConfig({ REGISTRE_CONTEXTS: "three" })).toThrow(/REGISTRE_CONTEXTS must be a whole number/);
  });
});
