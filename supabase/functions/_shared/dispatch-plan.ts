import type { KindProfile } from "./capacity-config.ts";
import type { Environment } from "./environments.ts";
import { JOB_KINDS, type JobKind } from "./job-kinds.ts";

/**
 * How many tasks of each kind one dispatcher starts now: a pure function of
 * what it read (backlog, ledger, Gemini budget, other environments' demand),
 * so every rule is proven by table-driven tests.
 */

export type OcrKind = Exclude<JobKind, "registre">;
export const OCR_KINDS: readonly OcrKind[] = ["index-ocr", "acte-ocr"];

export type PerKind<T> = Record<JobKind, T>;

export interface KindBacklog {
  /** Rows of this kind a runner could claim now. */
  readonly waiting: number;
  /** Rows of this kind a runner holds (job lease not expired). */
  readonly running: number;
}

/** What another environment's dispatcher published about itself. */
export interface EnvironmentDemand {
  readonly environment: Environment;
  /** Share weight (prod > staging > dev by default). */
  readonly weight: number;
  /** vCPU its tasks hold now. */
  readonly allocatedVcpu: number;
  /** vCPU its waiting work could use on top of that. */
  readonly wantedVcpu: number;
}

export interface DispatchPlanInput {
  readonly environment: Environment;
  readonly weight: number;
  readonly backlog: PerKind<KindBacklog>;
  /** This environment's tasks holding a ledger lease (started, maybe still booting). */
  readonly tasks: PerKind<number>;
  /** Every environment's tasks, for the per-kind caps, which are global. */
  readonly tasksAllEnvironments: PerKind<number>;
  readonly profiles: PerKind<KindProfile>;
  readonly capacity: { readonly vcpu: number; readonly ramGb: number };
  /** Held by every environment together. */
  readonly allocated: { readonly vcpu: number; readonly ramGb: number };
  /** Held by this environment's tasks. */
  readonly allocatedHere: { readonly vcpu: number };
  /** The other environments with a fresh published demand. */
  readonly others: readonly EnvironmentDemand[];
  readonly gemini: {
    readonly cooldownMs: number;
    /** Tokens left in the current TPM window. */
    readonly tokensLeft: number;
    /** Tokens per minute one running task of the kind consumes. */
    readonly tokensPerTask: Record<OcrKind, number>;
  };
}

export interface DispatchPlan {
  readonly start: PerKind<number>;
  /** Tasks the backlog could keep busy on top of those running (before budgets). */
  readonly wanted: PerKind<number>;
  /** vCPU this environment may newly take: its fair share minus what it holds, within what is free. */
  readonly allowanceVcpu: number;
  /** Why fewer tasks start than are wanted, one line per cause. */
  readonly held: readonly string[];
}

/** One value per job kind. */
export function perKind<T>(value: (kind: JobKind) => T): PerKind<T> {
  return { registre: value("registre"), "index-ocr": value("index-ocr"), "acte-ocr": value("acte-ocr") };
}

const zero = (): PerKind<number> => perKind(() => 0);

export function planDispatch(input: DispatchPlanInput): DispatchPlan {
  const held: string[] = [];
  const wanted = zero();
  for (const kind of JOB_KINDS) {
    // A task that holds a lease but no job is booting or between jobs: it
    // will claim the next waiting row, so it counts against the backlog.
    const idleTasks = Math.max(0, input.tasks[kind] - input.backlog[kind].running);
    let want = Math.max(0, input.backlog[kind].waiting - idleTasks);
    const cap = input.profiles[kind].maxTasks;
    if (cap !== null && want > 0) {
      const room = Math.max(0, cap - input.tasksAllEnvironments[kind]);
      if (room < want) held.push(`${kind}: capped at ${cap} tasks, ${input.tasksAllEnvironments[kind]} running`);
      want = Math.min(want, room);
    }
    wanted[kind] = want;
  }

  const wantedVcpu = JOB_KINDS.reduce((sum, kind) => sum + wanted[kind] * input.profiles[kind].vcpu, 0);
  const participants = [
    { weight: input.weight, need: input.allocatedHere.vcpu + wantedVcpu },
    ...input.others.map((other) => ({ weight: other.weight, need: other.allocatedVcpu + other.wantedVcpu })),
  ];
  const [entitled = 0] = weightedFairShare(input.capacity.vcpu, participants);
  const freeVcpu = Math.max(0, input.capacity.vcpu - input.allocated.vcpu);
  const allowanceVcpu = round(Math.max(0, Math.min(freeVcpu, entitled - input.allocatedHere.vcpu)));
  if (wantedVcpu > 0 && allowanceVcpu < wantedVcpu && allowanceVcpu < freeVcpu) {
    held.push(`fair share: ${input.environment} may take ${allowanceVcpu} of ${round(freeVcpu)} free vCPU while other environments wait`);
  }

  const room = { vcpu: allowanceVcpu, ramGb: Math.max(0, input.capacity.ramGb - input.allocated.ramGb) };
  let tokensLeft = input.gemini.tokensLeft;
  const start = zero();

  const canStart = (kind: JobKind): boolean => {
    const profile = input.profiles[kind];
    if (start[kind] >= wanted[kind]) return false;
    if (profile.vcpu > room.vcpu + 1e-9 || profile.ramGb > room.ramGb + 1e-9) return false;
    if (kind !== "registre" && tokensLeft < input.gemini.tokensPerTask[kind]) return false;
    return true;
  };
  const take = (kind: JobKind) => {
    start[kind] += 1;
    room.vcpu -= input.profiles[kind].vcpu;
    room.ramGb -= input.profiles[kind].ramGb;
    if (kind !== "registre") tokensLeft -= input.gemini.tokensPerTask[kind];
  };

  const ocrWanted = OCR_KINDS.some((kind) => wanted[kind] > 0);
  if (ocrWanted && input.gemini.cooldownMs > 0) {
    held.push(`gemini: cooling down after a 429 for ${Math.ceil(input.gemini.cooldownMs / 1000)} s more; no OCR task starts`);
  }
  const ocrAllowed = input.gemini.cooldownMs <= 0;

  // Highest priority first; kinds of equal priority share what is left.
  const priorities = [...new Set(JOB_KINDS.map((kind) => input.profiles[kind].priority))].sort((a, b) => b - a);
  for (const priority of priorities) {
    const group = JOB_KINDS.filter((kind) => input.profiles[kind].priority === priority && (kind === "registre" || ocrAllowed));
    fillGroup(group, wanted, start, canStart, take);
  }

  for (const kind of JOB_KINDS) {
    if (start[kind] >= wanted[kind]) continue;
    if (kind !== "registre" && !ocrAllowed) continue;
    if (kind !== "registre" && tokensLeft < input.gemini.tokensPerTask[kind] && input.profiles[kind].vcpu <= room.vcpu) {
      held.push(`gemini: ${tokensLeft} tokens left this minute, a ${kind} task needs ${input.gemini.tokensPerTask[kind]}`);
    } else {
      held.push(`${kind}: ${wanted[kind] - start[kind]} more wanted, no room (${round(room.vcpu)} vCPU, ${round(room.ramGb)} GB left to this dispatch)`);
    }
  }
  return { start, wanted, allowanceVcpu, held };
}

/**
 * Kinds of one priority share the room in proportion to their backlogs, with
 * at least one task each while each has work (the seed's example: 50 index +
 * 5 acte waiting and room for 4 → 3 index, 1 acte). One task at a time goes
 * to the kind furthest below its proportional share.
 */
function fillGroup(
  group: readonly JobKind[],
  wanted: PerKind<number>,
  start: PerKind<number>,
  canStart: (kind: JobKind) => boolean,
  take: (kind: JobKind) => void,
): void {
  const totalWanted = group.reduce((sum, kind) => sum + wanted[kind], 0);
  if (totalWanted === 0) return;
  for (const kind of [...group].sort((a, b) => wanted[b] - wanted[a])) {
    if (start[kind] === 0 && canStart(kind)) take(kind);
  }
  for (;;) {
    const started = group.reduce((sum, kind) => sum + start[kind], 0);
    const next = group
      .filter(canStart)
      .map((kind) => ({ kind, deficit: (wanted[kind] / totalWanted) * (started + 1) - start[kind] }))
      .sort((a, b) => b.deficit - a.deficit)[0];
    if (!next) return;
    take(next.kind);
  }
}

/**
 * Weighted max-min fair share of `total` among participants that each need
 * some amount: everyone gets a share proportional to its weight, no one more
 * than it needs, and what a participant does not need goes to the others.
 * A flood in dev therefore takes only what prod and staging leave unused.
 */
export function weightedFairShare(total: number, participants: readonly { weight: number; need: number }[]): number[] {
  const share = participants.map(() => 0);
  let remaining = total;
  let active = participants.map((_, index) => index).filter((index) => (participants[index]?.need ?? 0) > 0);
  while (active.length > 0 && remaining > 1e-9) {
    const totalWeight = active.reduce((sum, index) => sum + (participants[index]?.weight ?? 0), 0);
    if (totalWeight <= 0) break;
    const satisfied: number[] = [];
    let given = 0;
    for (const index of active) {
      const participant = participants[index];
      if (!participant) continue;
      const offer = (remaining * participant.weight) / totalWeight;
      const stillNeeds = participant.need - (share[index] ?? 0);
      if (stillNeeds <= offer + 1e-9) {
        share[index] = participant.need;
        given += stillNeeds;
        satisfied.push(index);
      }
    }
    if (satisfied.length === 0) {
      for (const index of active) share[index] = (share[index] ?? 0) + (remaining * (participants[index]?.weight ?? 0)) / totalWeight;
      return share;
    }
    remaining -= given;
    active = active.filter((index) => !satisfied.includes(index));
  }
  return share;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
