import type { LocalTaskCommand } from "./ecs-task-server.ts";
import { runnerEntryCommand } from "./runner-command.ts";

/**
 * The local ECS endpoint's command for a task that runs the lifecycle test
 * handler whatever its family: for tests and benchmarks that measure the
 * scheduling and the lifecycle, not the registry or OCR work. It lives with
 * the stand-in that runs it, so nothing under runners/ reaches infra/local/.
 */
export function lifecycleTestTaskCommand(): LocalTaskCommand {
  return runnerEntryCommand("runners", "test-job", "main.ts");
}
