/**
 * Fargate runs a task only at fixed CPU/memory pairs, while the capacity
 * ledger counts what a kind of job needs (capacity-config.ts: registre
 * 3 vCPU / 1 GB, index OCR 1.5 vCPU / 0.75 GB, …). This picks the smallest
 * pair that covers a need, so the task sizes in infra/tasks.ts follow the
 * ledger profiles instead of being copied by hand.
 *
 * Plain TypeScript without SST globals: the tests import it directly.
 */

/** vCPU values Fargate accepts, as `sst.aws.Task` spells them. */
export type FargateCpu = "0.25 vCPU" | "0.5 vCPU" | "1 vCPU" | "2 vCPU" | "4 vCPU" | "8 vCPU" | "16 vCPU";

export interface FargateSize {
  readonly cpu: FargateCpu;
  readonly memory: `${number} GB`;
}

interface CpuOption {
  readonly cpu: FargateCpu;
  readonly vcpu: number;
  /** Memory this CPU accepts, in GB, smallest first. */
  readonly memoryGb: readonly number[];
}

function range(fromGb: number, toGb: number, stepGb: number): number[] {
  const values: number[] = [];
  for (let gb = fromGb; gb <= toGb; gb += stepGb) values.push(gb);
  return values;
}

/**
 * The Linux task sizes of the Fargate documentation ("Task CPU and memory"),
 * the same table `sst.aws.Task` validates against.
 */
export const FARGATE_CPU_OPTIONS: readonly CpuOption[] = [
  { cpu: "0.25 vCPU", vcpu: 0.25, memoryGb: [0.5, 1, 2] },
  { cpu: "0.5 vCPU", vcpu: 0.5, memoryGb: range(1, 4, 1) },
  { cpu: "1 vCPU", vcpu: 1, memoryGb: range(2, 8, 1) },
  { cpu: "2 vCPU", vcpu: 2, memoryGb: range(4, 16, 1) },
  { cpu: "4 vCPU", vcpu: 4, memoryGb: range(8, 30, 1) },
  { cpu: "8 vCPU", vcpu: 8, memoryGb: range(16, 60, 4) },
  { cpu: "16 vCPU", vcpu: 16, memoryGb: range(32, 120, 8) },
];

/**
 * The cheapest Fargate size with at least `vcpu` vCPU and `ramGb` GB: the
 * smallest CPU that covers the need and still offers enough memory, then the
 * least memory that fits. A vCPU-hour costs about nine GB-hours, so rounding
 * memory up is always cheaper than rounding CPU up. Throws when no Fargate
 * size is large enough.
 */
export function fargateSizeCovering(need: { vcpu: number; ramGb: number }): FargateSize {
  if (!(need.vcpu > 0) || !(need.ramGb > 0)) {
    throw new RangeError(`a task needs more than 0 vCPU and 0 GB, got ${need.vcpu} vCPU / ${need.ramGb} GB`);
  }
  for (const option of FARGATE_CPU_OPTIONS) {
    if (option.vcpu < need.vcpu) continue;
    const memoryGb = option.memoryGb.find((gb) => gb >= need.ramGb);
    if (memoryGb !== undefined) return { cpu: option.cpu, memory: `${memoryGb} GB` };
  }
  throw new RangeError(`no Fargate size covers ${need.vcpu} vCPU / ${need.ramGb} GB (the largest is 16 vCPU / 120 GB)`);
}
