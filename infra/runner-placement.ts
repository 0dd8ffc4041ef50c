/**
 * Which Fargate capacity each runner family starts on. OCR runs on Fargate
 * Spot (about 70 % cheaper; a reclaimed task gets SIGTERM and two minutes,
 * the runner releases its job without spending an attempt, and an OCR job is
 * cheap to redo); registre stays on demand, because a registry session that
 * is cut loses a login and a queue position on the site. dispatch-access.ts
 * outputs the choice as ECS_CAPACITY_PROVIDER_<FAMILY>, deploy:secrets hands
 * it to the function (ecs-client.ts), and an operator can override either
 * by exporting the variable before deploy:secrets.
 *
 * Plain TypeScript without SST globals: the scripts and tests import it.
 */
import type { RunnerFamily } from "../supabase/functions/_shared/ecs-client.ts";

export type FargateCapacityProvider = "FARGATE" | "FARGATE_SPOT";

/**
 * How long Fargate Spot may refuse OCR tasks ("Capacity is unavailable at
 * this time") before dispatch starts them on FARGATE instead, and for how
 * long it then stays on demand before trying Spot again: the same duration
 * (supabase/functions/_shared/spot-fallback.ts). Five minutes: a job waits at
 * most a few ticks for Spot; on-demand costs about three times as much.
 * Output as ECS_SPOT_FALLBACK_SECONDS; an operator may override it by
 * exporting the variable before deploy:secrets.
 */
export const RUNNER_SPOT_FALLBACK_SECONDS = 300;

export const RUNNER_CAPACITY_PROVIDERS = {
  registre: "FARGATE",
  ocr: "FARGATE_SPOT",
} as const satisfies Record<RunnerFamily, FargateCapacityProvider>;
