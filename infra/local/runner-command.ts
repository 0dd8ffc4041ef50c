import { join } from "node:path";
import type { LocalTaskCommand } from "./ecs-task-server.ts";
import { PROJECT_ROOT } from "./paths.ts";

/**
 * How the local stack and the tests start a runner entry: one Node process
 * with tsx as a loader, exactly as the images do
 * (`node --import tsx runners/<family>/main.ts`). Not the `tsx` CLI: it runs
 * the script in a second process and relays SIGTERM to it, and when the child
 * does not confirm the signal within 30 ms (a busy machine) it SIGKILLs it,
 * which cut the graceful drain short (exit 143) in CI.
 */
export function runnerEntryCommand(...entry: string[]): LocalTaskCommand {
  return { command: process.execPath, args: ["--import", "tsx", join(PROJECT_ROOT, ...entry)], cwd: PROJECT_ROOT };
}
