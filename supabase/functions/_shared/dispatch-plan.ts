import { fromMilli, toMilli, type KindProfile } from "./capacity-config.ts";
import type { Environment } from "./environments.ts";
import { geminiGate, type GeminiGateInput } from "./gemini-gate.ts";
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
  /** What each Gemini model the OCR kinds call has left (gemini-gate.ts). */
  readonly gemini: GeminiGateInput;
  /** Jobs one task runs at once (its slots). @default one per task for every kind */
  readonly jobsPerTask?: PerKind<number>;
}

export interface DispatchPlan {
  readonly start: PerKind<number>;
  /** Tasks the backlog could keep busy on top of those running (before budgets). */
  readonly wanted: PerKind<number>;
  /** vCPU this environment may newly take: its fair share minus what it holds, within what is free. */
  readonly allowanceVcpu: number;
  /**
   * Kinds that wanted more tasks than start because vCPU or RAM ran out (not
   * Gemini, not a cap): the unmet demand an idle runner hands its lease back for.
   */
  readonly waitingForRoom: readonly JobKind[];
  /** Why fewer tasks start than are wanted, one line per cause. */
  readonly held: readonly string[];
}

/** One value per job kind. */
export function perKind<T>(value: (kind: JobKind) => T): PerKind<T> {
  return { registre: value("registre"), "index-ocr": value("index-ocr"), "acte-ocr": value("acte-ocr") };
}

const zero = (): PerKind<number> => perKind(() => 0);

/** Above this many combinations a group is filled one task at a time instead of searched. */
const MAX_PACKING_COMBINATIONS = 200_000;

/**
 * The plan works over the whole pool: the tasks this environment already
 * holds (running or still booting) count as much as the ones it starts now.
 * 1. First tasks: every waiting kind with no task gets one, highest priority
 *    first, before any kind gets a second. A first task that does not fit
 *    keeps its room: nothing else takes the room it needs, so the next room
 *    freed goes to it (registre priority never starves a waiting OCR kind).
 * 2. Then priority groups, highest first: registre takes what it can use of
 *    what is left; kinds of equal priority (index and acte OCR) share the
 *    rest, packed to use as much of the room as possible and, among equally
 *    full packings, split in proportion to their backlogs.
 */
export function planDispatch(input: DispatchPlanInput): DispatchPlan {
  const held: string[] = [];
  const wanted = zero();
  for (const kind of JOB_KINDS) {
    // A slot of a task that holds a lease but no job (booting or between
    // jobs) will claim the next waiting row, so it counts against the
    // backlog; a new task takes `slots` rows at once.
    const slots = Math.max(1, input.jobsPerTask?.[kind] ?? 1);
    const idleSlots = Math.max(0, input.tasks[kind] * slots - input.backlog[kind].running);
    let want = Math.ceil(Math.max(0, input.backlog[kind].waiting - idleSlots) / slots);
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
  if (wantedVcpu > 0 && allowanceVcpu < wantedVcpu && allowanceVcpu < round(freeVcpu)) {
    held.push(`fair share: ${input.environment} may take ${allowanceVcpu} of ${round(freeVcpu)} free vCPU while other environments wait`);
  }

  // Room in thousandths (capacity-config.ts): 6.4 − 3 − 1.5 − 1 is exactly 0.9.
  const room = { vcpu: toMilli(allowanceVcpu), ram: Math.max(0, toMilli(input.capacity.ramGb) - toMilli(input.allocated.ramGb)) };
  const reserved = { vcpu: 0, ram: 0 };
  const gate = geminiGate(input.gemini);
  const start = zero();

  const fits = (kind: JobKind, count = 1, keepReserved = true): boolean => {
    const profile = input.profiles[kind];
    return (
      toMilli(profile.vcpu) * count <= room.vcpu - (keepReserved ? reserved.vcpu : 0) &&
      toMilli(profile.ramGb) * count <= room.ram - (keepReserved ? reserved.ram : 0)
    );
  };
  const take = (kind: JobKind, count = 1) => {
    start[kind] += count;
    room.vcpu -= toMilli(input.profiles[kind].vcpu) * count;
    room.ram -= toMilli(input.profiles[kind].ramGb) * count;
    gate.take(kind, count);
  };
  const mayStart = (kind: JobKind) => wanted[kind] > 0 && gate.allows(kind, 1) !== "blocked";

  for (const kind of OCR_KINDS) {
    const blocked = wanted[kind] > 0 ? gate.blocked(kind) : null;
    if (blocked !== null) held.push(blocked);
  }

  const byPriority = [...JOB_KINDS].sort((a, b) => input.profiles[b].priority - input.profiles[a].priority || wanted[b] - wanted[a]);

  // 1. First tasks, before any kind gets a second.
  for (const kind of byPriority) {
    if (!mayStart(kind) || input.tasks[kind] > 0) continue;
    if (gate.allows(kind, 1) !== "yes") continue;
    if (fits(kind, 1, false)) {
      take(kind);
      continue;
    }
    // Keep its room only if it could ever get it: a kind bigger than this
    // environment's whole entitlement would otherwise block everything.
    const profile = input.profiles[kind];
    if (profile.vcpu <= Math.min(entitled, input.capacity.vcpu) + 1e-9 && profile.ramGb <= input.capacity.ramGb + 1e-9) {
      reserved.vcpu += toMilli(profile.vcpu);
      reserved.ram += toMilli(profile.ramGb);
      held.push(`${kind}: its first task waits for ${profile.vcpu} vCPU / ${profile.ramGb} GB; that room is kept for it`);
    }
  }

  // 2. Priority groups, highest first.
  const priorities = [...new Set(JOB_KINDS.map((kind) => input.profiles[kind].priority))].sort((a, b) => b - a);
  for (const priority of priorities) {
    const group = JOB_KINDS.filter((kind) => input.profiles[kind].priority === priority && mayStart(kind));
    if (group.length === 0) continue;
    const more = perKind((kind) => {
      if (!group.includes(kind)) return 0;
      const profile = input.profiles[kind];
      const byVcpu = Math.floor((room.vcpu - reserved.vcpu) / Math.max(1, toMilli(profile.vcpu)));
      const byRam = Math.floor((room.ram - reserved.ram) / Math.max(1, toMilli(profile.ramGb)));
      return Math.max(0, Math.min(wanted[kind] - start[kind], byVcpu, byRam, gate.most(kind)));
    });
    const counts = packGroup(group, more, input, start, room, reserved, gate);
    for (const kind of group) if (counts[kind] > 0) take(kind, counts[kind]);
  }

  const waitingForRoom: JobKind[] = [];
  for (const kind of JOB_KINDS) {
    if (start[kind] >= wanted[kind]) continue;
    const verdict = gate.allows(kind, 1);
    if (verdict === "blocked") continue;
    if (verdict === "tokens" && fits(kind, 1, false)) {
      held.push(gate.shortage(kind));
    } else {
      waitingForRoom.push(kind);
      held.push(`${kind}: ${wanted[kind] - start[kind]} more wanted, no room (${round(fromMilli(room.vcpu))} vCPU, ${round(fromMilli(room.ram))} GB left to this dispatch)`);
    }
  }
  return { start, wanted, allowanceVcpu, waitingForRoom, held };
}

/**
 * How many more tasks of each kind of one priority group to start: the
 * combination that uses the most vCPU (then RAM) of the room, and among those
 * the one closest to splitting the group's tasks — held and new — in
 * proportion to each kind's backlog (the seed's example: 50 index + 5 acte
 * waiting and room for 4 equal tasks → 3 index, 1 acte). Packing first
 * because a split that leaves 0.9 vCPU unused when another fills it wastes
 * capacity the whole time the backlog lasts.
 */
function packGroup(
  group: readonly JobKind[],
  most: PerKind<number>,
  input: DispatchPlanInput,
  start: PerKind<number>,
  room: { vcpu: number; ram: number },
  reserved: { vcpu: number; ram: number },
  gate: ReturnType<typeof geminiGate>,
): PerKind<number> {
  const demand = perKind((kind) => (group.includes(kind) ? input.backlog[kind].waiting + input.backlog[kind].running : 0));
  const totalDemand = group.reduce((sum, kind) => sum + demand[kind], 0);
  const held = perKind((kind) => input.tasks[kind] + start[kind]);
  const limit = { vcpu: room.vcpu - reserved.vcpu, ram: room.ram - reserved.ram };

  const score = (counts: PerKind<number>) => {
    const vcpu = group.reduce((sum, kind) => sum + toMilli(input.profiles[kind].vcpu) * counts[kind], 0);
    const ram = group.reduce((sum, kind) => sum + toMilli(input.profiles[kind].ramGb) * counts[kind], 0);
    const tasks = group.reduce((sum, kind) => sum + held[kind] + counts[kind], 0);
    const deviation = totalDemand === 0 ? 0 : group.reduce((sum, kind) => sum + (held[kind] + counts[kind] - (demand[kind] / totalDemand) * tasks) ** 2, 0);
    return { vcpu, ram, deviation };
  };
  const better = (a: ReturnType<typeof score>, b: ReturnType<typeof score>) =>
    a.vcpu !== b.vcpu ? a.vcpu > b.vcpu : a.ram !== b.ram ? a.ram > b.ram : a.deviation < b.deviation - 1e-9;

  const combinations = group.reduce((product, kind) => product * (most[kind] + 1), 1);
  let best = zero();
  if (combinations <= MAX_PACKING_COMBINATIONS) {
    let bestScore = score(best);
    const counts = zero();
    const visit = (index: number, vcpu: number, ram: number) => {
      const kind = group[index];
      if (kind === undefined) {
        if (!gate.fitsTogether(counts)) return;
        const candidate = score(counts);
        if (better(candidate, bestScore)) {
          best = { ...counts };
          bestScore = candidate;
        }
        return;
      }
      const profile = input.profiles[kind];
      for (let n = 0; n <= most[kind]; n += 1) {
        const v = vcpu + toMilli(profile.vcpu) * n;
        const r = ram + toMilli(profile.ramGb) * n;
        if (v > limit.vcpu || r > limit.ram) break;
        counts[kind] = n;
        visit(index + 1, v, r);
      }
      counts[kind] = 0;
    };
    visit(0, 0, 0);
    return best;
  }

  // Too many combinations to search: one task at a time to the kind furthest
  // below its proportional share.
  const used = { vcpu: 0, ram: 0 };
  for (;;) {
    const tasks = group.reduce((sum, kind) => sum + held[kind] + best[kind], 0);
    const next = group
      .filter((kind) => {
        const profile = input.profiles[kind];
        const after = { ...best, [kind]: best[kind] + 1 };
        return (
          best[kind] < most[kind] &&
          used.vcpu + toMilli(profile.vcpu) <= limit.vcpu &&
          used.ram + toMilli(profile.ramGb) <= limit.ram &&
          gate.fitsTogether(after)
        );
      })
      .map((kind) => ({ kind, deficit: totalDemand === 0 ? 0 : (demand[kind] / totalDemand) * (tasks + 1) - (held[kind] + best[kind]) }))
      .sort((a, b) => b.deficit - a.deficit)[0];
    if (!next) return best;
    best[next.kind] += 1;
    used.vcpu += toMilli(input.profiles[next.kind].vcpu);
    used.ram += toMilli(input.profiles[next.kind].ramGb);
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
