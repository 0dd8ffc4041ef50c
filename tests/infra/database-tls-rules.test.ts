import { describe, expect, it } from "vitest";
import { checkDatabaseTls } from "../../infra/check/database-tls-rules.ts";
import type { TaskSummary } from "../../infra/check/infra-summary.ts";

/** Only what the TLS rules read of a task definition. */
function task(runnerFamily: "registre" | "ocr", secrets: string[]): TaskSummary {
  return { runnerFamily, secrets } as Partial<TaskSummary> as TaskSummary;
}

const BOTH_WITH_CERT = [task("registre", ["DATABASE_URL", "DATABASE_SSL_ROOT_CERT"]), task("ocr", ["DATABASE_URL", "DATABASE_SSL_ROOT_CERT"])];
const POOLER = "postgresql://runner.abcdefghijklmnopqrst:pw@aws-0-ca-central-1.pooler.supabase.com:6543/postgres";

function problemsOf(tasks: TaskSummary[], env: Record<string, string> = {}): { problems: string[]; mode: string | undefined } {
  const problems: string[] = [];
  const summary = checkDatabaseTls(tasks, env, problems);
  return { problems, mode: summary.shellUrlMode };
}

describe("infra:check's database TLS rules", () => {
  it("pass tasks that receive the root certificate, and report the shell URL's mode without its value", () => {
    expect(problemsOf(BOTH_WITH_CERT)).toEqual({ problems: [], mode: undefined });
    expect(problemsOf(BOTH_WITH_CERT, { RUNNER_DATABASE_URL: POOLER })).toEqual({ problems: [], mode: "require" });
    expect(problemsOf(BOTH_WITH_CERT, { RUNNER_DATABASE_URL: `${POOLER}?sslmode=verify-full` }).mode).toBe("verify-full");
  });

  it("report a task without the root certificate", () => {
    expect(problemsOf([task("registre", ["DATABASE_URL"]), BOTH_WITH_CERT[1] as TaskSummary]).problems).toEqual([
      "registre: no DATABASE_SSL_ROOT_CERT from SSM, so the runner cannot verify the pooler (TLS would be unverified)",
    ]);
  });

  it.each([
    ["sslmode=disable", `${POOLER}?sslmode=disable`, /sslmode=disable/],
    ["a loopback host", "postgresql://runner:pw@localhost:54322/postgres", /loopback host/],
  ])("report a shell RUNNER_DATABASE_URL with %s, never printing its password", (_name, url, message) => {
    const { problems } = problemsOf(BOTH_WITH_CERT, { RUNNER_DATABASE_URL: url });
    expect(problems.join("\n")).toMatch(message);
    expect(problems.join("\n")).not.toContain(":pw@");
  });
});
