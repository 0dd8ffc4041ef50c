/**
 * infra:check's rules on what a RunTask by the dispatch key may ask for
 * (issue 19 item 3). IAM can judge the cluster, the capacity provider, ECS
 * Exec and the task's cpu and memory (the ECS condition keys; cpu and memory
 * on RunTask since 2026-09), never a container override's environment or
 * command. So:
 *
 * - each Allow of ecs:RunTask names one family's task definitions and
 *   requires that family's Fargate size (NumericEqualsIfExists
 *   ecs:task-cpu / ecs:task-memory) and Fargate or Fargate Spot
 *   (ForAllValues:StringEquals ecs:capacity-provider);
 * - a Deny refuses every RunTask with ECS Exec on;
 * - what IAM cannot see is covered by the images (ENTRYPOINT: a command
 *   override only adds arguments; image-rules.ts) and by the runners, which
 *   ignore endpoint overrides in production (production-endpoints.ts).
 *
 * Plain TypeScript without SST globals: the scripts and tests import it.
 */
import type { InfraSummary, PolicyStatement } from "./infra-summary.ts";

export interface RunTaskGuards {
  readonly families: readonly { readonly family: string; readonly cpu: string[]; readonly memory: string[]; readonly capacityProviders: string[] }[];
  readonly denyEcsExec: boolean;
}

function values(statement: PolicyStatement, test: string, variable: string): string[] {
  return statement.conditions[test]?.[variable] ?? [];
}

export function checkRunTaskGuards(summary: InfraSummary, problems: string[]): RunTaskGuards {
  const allows = summary.dispatchPolicy.filter((statement) => statement.effect === "Allow" && statement.actions.includes("ecs:RunTask"));
  const families: RunTaskGuards["families"][number][] = [];
  for (const task of summary.tasks) {
    const resource = `${task.arnWithoutRevision}:*`;
    const family = task.runnerFamily ?? task.family;
    const statements = allows.filter((statement) => statement.resources.includes(resource));
    if (statements.length === 0) continue;
    for (const statement of statements) {
      const where = statement.sid ?? family;
      const cpu = values(statement, "NumericEqualsIfExists", "ecs:task-cpu");
      const memory = values(statement, "NumericEqualsIfExists", "ecs:task-memory");
      const providers = values(statement, "ForAllValues:StringEquals", "ecs:capacity-provider");
      if (cpu.length !== 1 || cpu[0] !== String(task.cpu)) problems.push(`dispatch: ${where} lets RunTask ask ${family} for cpu ${cpu.join(", ") || "of any size"}; its task definition has ${task.cpu}`);
      if (memory.length !== 1 || memory[0] !== String(task.memory)) problems.push(`dispatch: ${where} lets RunTask ask ${family} for memory ${memory.join(", ") || "of any size"}; its task definition has ${task.memory}`);
      if (providers.length === 0 || providers.some((provider) => provider !== "FARGATE" && provider !== "FARGATE_SPOT")) {
        problems.push(`dispatch: ${where} does not limit RunTask to FARGATE and FARGATE_SPOT (ForAllValues:StringEquals ecs:capacity-provider)`);
      }
      families.push({ family, cpu, memory, capacityProviders: providers });
    }
  }
  const denyEcsExec = summary.dispatchPolicy.some(
    (statement) => statement.effect === "Deny" && statement.actions.includes("ecs:RunTask") && values(statement, "StringEquals", "ecs:enable-execute-command").includes("true"),
  );
  if (!denyEcsExec) problems.push("dispatch: no Deny of ecs:RunTask with ecs:enable-execute-command true, so the key could open a shell in a runner");
  return { families, denyEcsExec };
}
