import { describe, expect, it } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { planDispatch, weightedFairShare, type DispatchPlanInput, type PerKind } from "../../supabase/functions/_shared/dispatch-plan.ts";
import { geminiHeadroom } from "../gemini/gemini-headroom.ts";

const defaults = parseCapacityConfig({});
const equalSizes = parseCapacityConfig({ INDEX_OCR_VCPU: "1", INDEX_OCR_RAM_GB: "0.5" });

function input(overrides: Partial<DispatchPlanInput> & { waiting?: Partial<PerKind<number>> }): DispatchPlanInput {
  const { waiting = {}, ...rest } = overrides;
  const backlog = {
    registre: { waiting: waiting.registre ?? 0, running: 0 },
    "index-ocr": { waiting: waiting["index-ocr"] ?? 0, running: 0 },
    "acte-ocr": { waiting: waiting["acte-ocr"] ?? 0, running: 0 },
  };
  return {
    environment: "prod",
    weight: 3,
    backlog,
    tasks: { registre: 0, "index-ocr": 0, "acte-ocr": 0 },
    tasksAllEnvironments: { registre: 0, "index-ocr": 0, "acte-ocr": 0 },
    profiles: defaults.profiles,
    capacity: defaults.capacity,
    allocated: { vcpu: 0, ramGb: 0 },
    allocatedHere: { vcpu: 0 },
    others: [],
    gemini: geminiHeadroom(),
    ...rest,
  };
}

describe("planDispatch", () => {
  it.each([
    {
      name: "nothing waiting starts nothing",
      given: input({}),
      start: { registre: 0, "index-ocr": 0, "acte-ocr": 0 },
    },
    {
      name: "all three kinds waiting on the default budget (6.4 vCPU) → 1 registre + 1 index + 1 acte (5.5), not 2 registre",
      given: input({ waiting: { registre: 5, "index-ocr": 5, "acte-ocr": 5 } }),
      start: { registre: 1, "index-ocr": 1, "acte-ocr": 1 },
      held: /registre: 4 more wanted, no room \(0\.9 vCPU/,
    },
    {
      name: "only registre waiting takes the room: 2 registre (6 of 6.4)",
      given: input({ waiting: { registre: 5 } }),
      start: { registre: 2, "index-ocr": 0, "acte-ocr": 0 },
      held: /^registre: 3 more wanted, no room \(0\.4 vCPU, 10\.8 GB left to this dispatch\)$/,
    },
    {
      name: "registre priority never takes the room a waiting OCR kind's first task needs: 1 registre running, 3.4 free → 1 acte, not a second registre",
      given: input({
        backlog: { registre: { waiting: 5, running: 1 }, "index-ocr": { waiting: 0, running: 0 }, "acte-ocr": { waiting: 3, running: 0 } },
        tasks: { registre: 1, "index-ocr": 0, "acte-ocr": 0 },
        tasksAllEnvironments: { registre: 1, "index-ocr": 0, "acte-ocr": 0 },
        allocated: { vcpu: 3, ramGb: 1 },
        allocatedHere: { vcpu: 3 },
      }),
      start: { registre: 0, "index-ocr": 0, "acte-ocr": 3 },
    },
    {
      name: "pool full of index tasks, acte waiting with no task: the room freed by one index task goes to acte",
      given: input({
        backlog: { registre: { waiting: 0, running: 0 }, "index-ocr": { waiting: 40, running: 3 }, "acte-ocr": { waiting: 10, running: 0 } },
        tasks: { registre: 0, "index-ocr": 3, "acte-ocr": 0 },
        tasksAllEnvironments: { registre: 0, "index-ocr": 3, "acte-ocr": 0 },
        allocated: { vcpu: 4.5, ramGb: 2.25 },
        allocatedHere: { vcpu: 4.5 },
      }),
      // 1.9 free: acte's first task (1) before index's fourth (1.5).
      start: { registre: 0, "index-ocr": 0, "acte-ocr": 1 },
    },
    {
      name: "pool full of index tasks, acte waiting: nothing starts, and the room acte needs is kept from index",
      given: input({
        backlog: { registre: { waiting: 0, running: 0 }, "index-ocr": { waiting: 40, running: 4 }, "acte-ocr": { waiting: 10, running: 0 } },
        tasks: { registre: 0, "index-ocr": 4, "acte-ocr": 0 },
        tasksAllEnvironments: { registre: 0, "index-ocr": 4, "acte-ocr": 0 },
        allocated: { vcpu: 6, ramGb: 3 },
        allocatedHere: { vcpu: 6 },
      }),
      start: { registre: 0, "index-ocr": 0, "acte-ocr": 0 },
      held: /acte-ocr: its first task waits for 1 vCPU/,
    },
    {
      name: "the OCR split counts tasks already running: 3 index running, 10 index + 10 acte waiting, room for 3 equal tasks → 3 acte",
      given: input({
        profiles: equalSizes.profiles,
        capacity: { vcpu: 6, ramGb: 16 },
        backlog: { registre: { waiting: 0, running: 0 }, "index-ocr": { waiting: 10, running: 3 }, "acte-ocr": { waiting: 10, running: 0 } },
        tasks: { registre: 0, "index-ocr": 3, "acte-ocr": 0 },
        tasksAllEnvironments: { registre: 0, "index-ocr": 3, "acte-ocr": 0 },
        allocated: { vcpu: 3, ramGb: 1.5 },
        allocatedHere: { vcpu: 3 },
      }),
      start: { registre: 0, "index-ocr": 0, "acte-ocr": 3 },
    },
    {
      name: "OCR packs the room before splitting it: 3.4 vCPU free, 1 index + 1 acte running, 20 + 20 waiting → 2 index (3.0), not 1 + 1 (2.5)",
      given: input({
        backlog: { registre: { waiting: 0, running: 1 }, "index-ocr": { waiting: 20, running: 1 }, "acte-ocr": { waiting: 20, running: 1 } },
        tasks: { registre: 1, "index-ocr": 1, "acte-ocr": 1 },
        tasksAllEnvironments: { registre: 1, "index-ocr": 1, "acte-ocr": 1 },
        allocated: { vcpu: 5.5, ramGb: 2.25 },
        allocatedHere: { vcpu: 5.5 },
        capacity: { vcpu: 8.9, ramGb: 12.8 },
      }),
      // 2 index (3.0) and 3 acte (3.0) fill the room best; with the held tasks they make 3 + 1 or 1 + 4,
      // and 3 + 1 is nearer the even split that 20 + 20 asks for.
      start: { registre: 0, "index-ocr": 2, "acte-ocr": 0 },
    },
    {
      name: "seed rebalancing: 50 index + 5 acte, room for 4 → 3 index, 1 acte",
      given: input({ profiles: equalSizes.profiles, capacity: { vcpu: 4, ramGb: 16 }, waiting: { "index-ocr": 50, "acte-ocr": 5 } }),
      start: { registre: 0, "index-ocr": 3, "acte-ocr": 1 },
    },
    {
      name: "a minimum of one each while both have work: 100 index + 1 acte, room for 4 → 3 + 1",
      given: input({ profiles: equalSizes.profiles, capacity: { vcpu: 4, ramGb: 16 }, waiting: { "index-ocr": 100, "acte-ocr": 1 } }),
      start: { registre: 0, "index-ocr": 3, "acte-ocr": 1 },
    },
    {
      name: "even backlogs split evenly: 10 + 10, room for 4 → 2 + 2",
      given: input({ profiles: equalSizes.profiles, capacity: { vcpu: 4, ramGb: 16 }, waiting: { "index-ocr": 10, "acte-ocr": 10 } }),
      start: { registre: 0, "index-ocr": 2, "acte-ocr": 2 },
    },
    {
      name: "only acte waiting takes the whole room",
      given: input({ profiles: equalSizes.profiles, capacity: { vcpu: 4, ramGb: 16 }, waiting: { "acte-ocr": 9 } }),
      start: { registre: 0, "index-ocr": 0, "acte-ocr": 4 },
    },
    {
      name: "never more tasks than the backlog keeps busy: 2 waiting, 1 task already booting → 1",
      given: input({ waiting: { "acte-ocr": 2 }, tasks: { registre: 0, "index-ocr": 0, "acte-ocr": 1 } }),
      start: { registre: 0, "index-ocr": 0, "acte-ocr": 1 },
    },
    {
      name: "busy tasks do not count against the backlog: 2 waiting, 1 task holding a job → 2",
      given: input({
        waiting: { "acte-ocr": 2 },
        backlog: { registre: { waiting: 0, running: 0 }, "index-ocr": { waiting: 0, running: 0 }, "acte-ocr": { waiting: 2, running: 1 } },
        tasks: { registre: 0, "index-ocr": 0, "acte-ocr": 1 },
        allocated: { vcpu: 1, ramGb: 0.5 },
        allocatedHere: { vcpu: 1 },
      }),
      start: { registre: 0, "index-ocr": 0, "acte-ocr": 2 },
    },
    {
      name: "a Gemini cooldown starts no OCR task, registre still starts",
      given: input({ waiting: { registre: 1, "acte-ocr": 3 }, gemini: geminiHeadroom({ cooldownMs: 12_000 }) }),
      start: { registre: 1, "index-ocr": 0, "acte-ocr": 0 },
      held: /cooling down after a 429 for 12 s/,
    },
    {
      name: "TPM left feeds one acte task, not two",
      given: input({ waiting: { "acte-ocr": 3 }, gemini: geminiHeadroom({ tokensLeft: 300_000 }) }),
      start: { registre: 0, "index-ocr": 0, "acte-ocr": 1 },
      held: /tokens left this minute/,
    },
    {
      name: "per-kind cap counts every environment's tasks",
      given: input({
        profiles: parseCapacityConfig({ MAX_REGISTRE_TASKS: "2", SERVER_MAX_CPU: "32", SERVER_MAX_RAM: "64" }).profiles,
        capacity: { vcpu: 25.6, ramGb: 51.2 },
        waiting: { registre: 10 },
        tasksAllEnvironments: { registre: 1, "index-ocr": 0, "acte-ocr": 0 },
      }),
      start: { registre: 1, "index-ocr": 0, "acte-ocr": 0 },
      held: /capped at 2 tasks, 1 running/,
    },
  ])("$name", ({ given, start, held }) => {
    const plan = planDispatch(given);
    expect(plan.start).toEqual(start);
    if (held) expect(plan.held.join("\n")).toMatch(held);
  });

  it("a registre task fetching 3 documents at once takes 3 waiting rows: 7 rows want 3 tasks, and a task's idle slots count against the backlog", () => {
    const big = parseCapacityConfig({ SERVER_MAX_CPU: "64", SERVER_MAX_RAM: "128" });
    const slots = { registre: 3, "index-ocr": 1, "acte-ocr": 1 };
    const fresh = planDispatch(input({ waiting: { registre: 7 }, profiles: big.profiles, capacity: big.capacity, jobsPerTask: slots }));
    expect(fresh.wanted.registre).toBe(3);
    expect(fresh.start.registre).toBe(3);
    // One task running 1 job has 2 idle slots: 7 − 2 = 5 rows → 2 more tasks.
    const running = input({ profiles: big.profiles, capacity: big.capacity, jobsPerTask: slots, tasks: { registre: 1, "index-ocr": 0, "acte-ocr": 0 }, tasksAllEnvironments: { registre: 1, "index-ocr": 0, "acte-ocr": 0 } });
    const oneRunning = planDispatch({ ...running, backlog: { ...running.backlog, registre: { waiting: 7, running: 1 } } });
    expect(oneRunning.wanted.registre).toBe(2);
    // Without slots (one job per task), as before: one task per row.
    expect(planDispatch(input({ waiting: { registre: 7 }, profiles: big.profiles, capacity: big.capacity })).wanted.registre).toBe(7);
  });

  it("the seed's sizing: 16 vCPU / 32 GB with everything waiting fills 12.8 vCPU, registre first", () => {
    const config = parseCapacityConfig({ SERVER_MAX_CPU: "16", SERVER_MAX_RAM: "32" });
    const plan = planDispatch(input({ profiles: config.profiles, capacity: config.capacity, waiting: { registre: 2, "index-ocr": 20, "acte-ocr": 20 } }));
    expect(plan.start.registre).toBe(2);
    const vcpu = plan.start.registre * 3 + plan.start["index-ocr"] * 1.5 + plan.start["acte-ocr"] * 1;
    expect(vcpu).toBeLessThanOrEqual(12.8);
    expect(12.8 - vcpu).toBeLessThan(1); // no task that would still fit is left unstarted
    expect(plan.start["index-ocr"]).toBeGreaterThanOrEqual(1);
    expect(plan.start["acte-ocr"]).toBeGreaterThanOrEqual(1);
  });
});

describe("across environments", () => {
  const shared = { profiles: equalSizes.profiles, capacity: { vcpu: 12, ramGb: 48 } };

  it("a flood in dev cannot starve prod: prod gets its weighted share even when dev's backlog is 100×", () => {
    const prod = planDispatch(
      input({ ...shared, environment: "prod", weight: 3, waiting: { "acte-ocr": 50 }, others: [{ environment: "dev", weight: 1, allocatedVcpu: 0, wantedVcpu: 5_000 }] }),
    );
    expect(prod.start["acte-ocr"]).toBe(9); // 12 × 3/4
    const dev = planDispatch(
      input({ ...shared, environment: "dev", weight: 1, waiting: { "acte-ocr": 5_000 }, others: [{ environment: "prod", weight: 3, allocatedVcpu: 0, wantedVcpu: 50 }] }),
    );
    expect(dev.start["acte-ocr"]).toBe(3); // 12 × 1/4
    expect(dev.held.join("\n")).toMatch(/fair share: dev may take 3 of 12 free vCPU/);
  });

  it("what prod does not need goes to dev", () => {
    const dev = planDispatch(
      input({ ...shared, environment: "dev", weight: 1, waiting: { "acte-ocr": 5_000 }, others: [{ environment: "prod", weight: 3, allocatedVcpu: 0, wantedVcpu: 2 }] }),
    );
    expect(dev.start["acte-ocr"]).toBe(10);
  });

  it("an environment already holding its share starts nothing more while others wait", () => {
    const dev = planDispatch(
      input({
        ...shared,
        environment: "dev",
        weight: 1,
        waiting: { "acte-ocr": 100 },
        allocated: { vcpu: 3, ramGb: 1.5 },
        allocatedHere: { vcpu: 3 },
        tasks: { registre: 0, "index-ocr": 0, "acte-ocr": 3 },
        backlog: { registre: { waiting: 0, running: 0 }, "index-ocr": { waiting: 0, running: 0 }, "acte-ocr": { waiting: 100, running: 3 } },
        others: [{ environment: "prod", weight: 3, allocatedVcpu: 0, wantedVcpu: 40 }],
      }),
    );
    expect(dev.start["acte-ocr"]).toBe(0);
  });

  it.each([
    { total: 12, parts: [{ weight: 3, need: 100 }, { weight: 1, need: 100 }], share: [9, 3] },
    { total: 12, parts: [{ weight: 3, need: 2 }, { weight: 1, need: 100 }], share: [2, 10] },
    { total: 12, parts: [{ weight: 3, need: 0 }, { weight: 2, need: 3 }, { weight: 1, need: 100 }], share: [0, 3, 9] },
    { total: 12, parts: [{ weight: 3, need: 4 }, { weight: 2, need: 4 }, { weight: 1, need: 4 }], share: [4, 4, 4] },
  ])("weightedFairShare($total, $parts) = $share", ({ total, parts, share }) => {
    expect(weightedFairShare(total, parts).map((value) => Math.round(value * 1000) / 1000)).toEqual(share);
  });
});
