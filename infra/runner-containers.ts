/**
 * The container in each runner task definition that receives dispatch's
 * per-task environment (RunTask's containerOverrides name it). infra/tasks.ts
 * names the containers with it, dispatch-access.ts outputs it as
 * ECS_CONTAINER_NAME_*, and infra:check checks both.
 *
 * Plain TypeScript without SST globals: the scripts and tests import it.
 */
import type { RunnerFamily } from "../supabase/functions/_shared/ecs-client.ts";

export const RUNNER_CONTAINER_NAMES = {
  registre: "registre-runner",
  ocr: "ocr-runner",
} as const satisfies Record<RunnerFamily, string>;
