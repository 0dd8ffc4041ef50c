/**
 * One size truth for the runner tasks. Each family's Fargate size is the
 * cheapest valid CPU/memory pair covering the ledger profiles of the job
 * kinds it runs (fargate-sizes.ts), and the deployed ledger counts exactly
 * that size: `billedCapacity` rounds every kind's profile up to its family's
 * Fargate size. The deploy writes the result into both task definitions
 * (infra/tasks.ts) and into the dispatch function's secrets
 * (deploy-secrets), so in production the ledger's budget, SERVER_MAX_CPU /
 * SERVER_MAX_RAM, means what AWS bills and what the account's Fargate vCPU
 * quota allows, and a kind never counts less than its task occupies.
 *
 * With the defaults of capacity-config.ts:
 *
 *   family    kinds                 ledger profile (local)     Fargate size = deployed profile
 *   registre  registre              3 vCPU / 1 GB              4 vCPU / 8 GB  (4096 CPU units / 8192 MiB)
 *   ocr       index-ocr, acte-ocr   1.5 vCPU / 0.75 GB,        2 vCPU / 4 GB  (2048 CPU units / 4096 MiB)
 *                                   1 vCPU / 0.5 GB
 *
 * Locally (`npm start`) runners are processes on one machine and the ledger
 * counts the measured profiles; only the deploy rounds up.
 *
 * Plain TypeScript without SST globals: the scripts and tests import it.
 */
import type { CapacityConfig, KindProfile } from "../supabase/functions/_shared/capacity-config.ts";
import { runnerFamilyFor, RUNNER_FAMILIES, type RunnerFamily } from "../supabase/functions/_shared/ecs-client.ts";
import { JOB_KINDS, type JobKind } from "../supabase/functions/_shared/job-kinds.ts";
import { FARGATE_CPU_OPTIONS, fargateSizeCovering, type FargateSize } from "./fargate-sizes.ts";

export interface RunnerFamilySize extends FargateSize {
  readonly family: RunnerFamily;
  readonly kinds: readonly JobKind[];
  readonly vcpu: number;
  readonly memoryGb: number;
  /** What the task definition says: CPU units (1024 per vCPU) and MiB. */
  readonly cpuUnits: number;
  readonly memoryMiB: number;
}

export function kindsOf(family: RunnerFamily): JobKind[] {
  return JOB_KINDS.filter((kind) => runnerFamilyFor(kind) === family);
}

/** The Fargate size of each family: the cheapest pair covering every profile of its kinds. */
export function runnerFamilySizes(config: CapacityConfig): Record<RunnerFamily, RunnerFamilySize> {
  const sizes = {} as Record<RunnerFamily, RunnerFamilySize>;
  for (const family of RUNNER_FAMILIES) {
    const kinds = kindsOf(family);
    const size = fargateSizeCovering({
      vcpu: Math.max(...kinds.map((kind) => config.profiles[kind].vcpu)),
      ramGb: Math.max(...kinds.map((kind) => config.profiles[kind].ramGb)),
    });
    const vcpu = FARGATE_CPU_OPTIONS.find((option) => option.cpu === size.cpu)?.vcpu;
    if (vcpu === undefined) throw new Error(`unknown Fargate CPU ${size.cpu}`);
    const memoryGb = Number.parseFloat(size.memory);
    sizes[family] = { ...size, family, kinds, vcpu, memoryGb, cpuUnits: vcpu * 1024, memoryMiB: memoryGb * 1024 };
  }
  return sizes;
}

/**
 * The capacity configuration a deploy runs with: every kind's profile is its
 * family's Fargate size, so the ledger counts what AWS bills. Priorities,
 * caps, the budget and the Gemini limits are unchanged.
 */
export function billedCapacity(config: CapacityConfig): CapacityConfig {
  const sizes = runnerFamilySizes(config);
  const profiles = {} as Record<JobKind, KindProfile>;
  for (const kind of JOB_KINDS) {
    const size = sizes[runnerFamilyFor(kind)];
    profiles[kind] = { ...config.profiles[kind], vcpu: size.vcpu, ramGb: size.memoryGb };
  }
  return { ...config, profiles };
}
