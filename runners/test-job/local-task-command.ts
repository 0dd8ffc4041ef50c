import { join } from "node:path";
import type { LocalTaskCommand } from "../../infra/local/ecs-task-server.ts";
import { PROJECT_ROOT } from "../../infra/local/paths.ts";

/**
 * The local ECS endpoint's command for a task that runs the lifecycle test
 * handler whatever its family: for tests and benchmarks that measure the
 * scheduling and the lifecycle, not the registry or OCR work.
 */
export function lifecycleTestTaskCommand(): LocalTaskCommand {
  return { command: join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), args: [join(PROJECT_ROOT, "runners", "test-job", "main.ts")], cwd: PROJECT_ROOT };
}
