import type { LocalTaskCommand } from "../../infra/local/ecs-task-server.ts";
import { runnerEntryCommand } from "../../infra/local/runner-command.ts";

/**
 * The local ECS endpoint's command for a task that runs the lifecycle test
 * handler whatever its family: for tests and benchmarks that measure the
 * scheduling and the lifecycle, not the registry or OCR work.
 */
export function lifecycleTestTaskCommand(): LocalTaskCommand {
  return runnerEntryCommand("runners", "test-job", "main.ts");
}
