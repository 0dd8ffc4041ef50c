/**
 * infra:check's rule on Fargate Spot (issue 20 item 8): every family the
 * deploy puts on FARGATE_SPOT must fall back to FARGATE after a configured
 * wait. ECS does not do it for a RunTask strategy (aws/containers-roadmap#773);
 * dispatch does (supabase/functions/_shared/spot-fallback.ts), so the stage
 * needs: the ECS_SPOT_FALLBACK_SECONDS output (a whole number of seconds),
 * FARGATE on the cluster beside FARGATE_SPOT, and a dispatch policy whose
 * RunTask statement does not restrict ecs:capacity-provider to Spot alone.
 *
 * Plain TypeScript without SST globals: the scripts and tests import it.
 */
import { RUNNER_FAMILIES } from "../../supabase/functions/_shared/ecs-client.ts";
import { ON_DEMAND_PROVIDER, SPOT_PROVIDER } from "../../supabase/functions/_shared/spot-fallback.ts";
import type { InfraSummary } from "./infra-summary.ts";

export interface SpotFallbackSummary {
  /** Per family on Spot: what it falls back to and after how long. */
  readonly families: readonly { readonly family: string; readonly provider: string; readonly fallback: string; readonly afterSeconds: number | undefined }[];
}

export function checkSpotFallback(summary: InfraSummary, problems: string[]): SpotFallbackSummary {
  const values = summary.outputValues;
  const raw = values["ECS_SPOT_FALLBACK_SECONDS"];
  const afterSeconds = raw !== undefined && /^\d+$/.test(raw) && Number(raw) > 0 ? Number(raw) : undefined;
  const families = RUNNER_FAMILIES.filter((family) => values[`ECS_CAPACITY_PROVIDER_${family.toUpperCase()}`] === SPOT_PROVIDER).map((family) => ({
    family,
    provider: SPOT_PROVIDER,
    fallback: ON_DEMAND_PROVIDER,
    afterSeconds,
  }));
  if (families.length === 0) return { families };
  if (afterSeconds === undefined) problems.push(`spot: ${families.map((f) => f.family).join(", ")} run on ${SPOT_PROVIDER} but ECS_SPOT_FALLBACK_SECONDS is ${JSON.stringify(raw)}, not a positive whole number of seconds`);
  if (!summary.cluster.capacityProviders.includes(ON_DEMAND_PROVIDER)) problems.push(`spot: the cluster lacks ${ON_DEMAND_PROVIDER}, the fallback of ${families.map((f) => f.family).join(", ")}`);
  for (const statement of summary.dispatchPolicy) {
    if (statement.effect !== "Allow" || !statement.actions.includes("ecs:RunTask")) continue;
    for (const [test, variables] of Object.entries(statement.conditions)) {
      const providers = variables["ecs:capacity-provider"];
      if (providers !== undefined && !test.startsWith("ForAnyValue") && !providers.includes(ON_DEMAND_PROVIDER)) {
        problems.push(`spot: the dispatch policy's RunTask allows only ${providers.join(", ")} (${test} ecs:capacity-provider), so the fallback to ${ON_DEMAND_PROVIDER} would be refused`);
      }
    }
  }
  return { families };
}
