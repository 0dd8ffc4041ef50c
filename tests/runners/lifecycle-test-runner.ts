/**
 * Starts the lifecycle test runner (runners/test-job/main.ts) as a real child
 * process, the way the local task server does, and keeps what it printed so
 * tests can read its JSON log lines.
 */
import { randomBytes } from "node:crypto";
import { startProcess, type ManagedProcess } from "../../infra/local/child-process.ts";
import { lifecycleTestTaskCommand } from "../../infra/local/lifecycle-test-task-command.ts";
import type { FreshDatabase } from "../helpers/fresh-database.ts";

export interface LogLine {
  readonly time: string;
  readonly level: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface LifecycleTestRunner {
  readonly process: ManagedProcess;
  /** Everything the process wrote so far, one entry per line (stdout and stderr). */
  readonly output: string[];
  /** The output parsed as JSON; throws on the first line that is not a JSON object. */
  logs(): LogLine[];
  /** Sends `signal` to the runner's process group (tsx and the node process it starts). */
  signal(signal: NodeJS.Signals): void;
  /** Resolves with the exit code, or null when a signal killed it. */
  readonly exited: Promise<number | null>;
}

/** Starts `node --import tsx runners/test-job/main.ts` with only `env` (plus PATH and HOME), as a container would. */
export function startLifecycleTestRunner(name: string, env: Record<string, string>): LifecycleTestRunner {
  const output: string[] = [];
  const { command, args, cwd } = lifecycleTestTaskCommand();
  const child = startProcess(command, args, {
    name,
    cwd,
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/tmp", ...env },
    onLine: (line) => output.push(line),
  });
  return {
    process: child,
    output,
    logs: () =>
      output.map((line) => {
        const parsed: unknown = JSON.parse(line);
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error(`not a JSON object: ${line}`);
        return parsed as LogLine;
      }),
    signal(signal) {
      if (child.child.pid !== undefined) process.kill(-child.child.pid, signal);
    },
    exited: child.exited,
  };
}

export interface RunnerLogin {
  /** DATABASE_URL for a runner: a login with exactly the `runner` role's privileges. */
  readonly url: string;
  readonly password: string;
  drop(): Promise<void>;
}

/**
 * A throwaway login role that is a member of `runner`. Roles are cluster-wide,
 * so giving `runner` itself a password would race with other test files;
 * a member role per database cannot.
 */
export async function createRunnerLogin(database: FreshDatabase): Promise<RunnerLogin> {
  const role = `${database.name}_runner_login`;
  const password = randomBytes(18).toString("base64url");
  await database.sql.unsafe(`create role ${role} login inherit password '${password}' in role runner`);
  return {
    url: database.urlAs(role, password),
    password,
    async drop() {
      // The runner processes are gone by now; end any backend they left behind before dropping.
      await database.sql`select pg_terminate_backend(pid) from pg_stat_activity where usename = ${role}`;
      await database.sql.unsafe(`drop role if exists ${role}`);
    },
  };
}
