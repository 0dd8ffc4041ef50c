// Where ECS places a runner task: Fargate on demand, or a capacity provider (FARGATE_SPOT, infra/runner-placement.ts).
export type EcsPlacement = { launchType: "FARGATE" } | { capacityProvider: string };
