import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";
import { lifecycleTestTaskCommand } from "../../infra/local/lifecycle-test-task-command.ts";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { isJobKind } from "../../supabase/functions/_shared/job-kinds.ts";

interface RunningRow {
  task_arn: string | null;
  lease_id: string;
  kind: string;
  state: string;
  vcpu: string;
  ram_gb: string;
}

describe("the running_tasks view", () => {
  it("lists exactly the tasks the local ECS endpoint runs, with what each holds, and records every exit", async () => {
    // The lifecycle test handler (the bookkeeping is the runner lifecycle's, whatever the job): jobs that
    // last long enough to watch the tasks while they run, runners that leave soon after.
    const stack = await startThrowawayStack("running-tasks", {
      budgetEnv: { TEST_JOB_DURATION_MS: "1500", RUNNER_IDLE_EXIT_SECONDS: "1" },
      taskCommand: lifecycleTestTaskCommand,
    });
    const sql = postgres(stack.urls.database, { max: 2, onnotice: () => {} });
    try {
      const profiles = parseCapacityConfig({}).profiles;
      await sql`
        insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type)
        values ('acte', '1 111 111', 'Laval', 'Acte'), ('acte', '2 222 222', 'Laval', 'Acte')`;

      const runningNow = () => stack.ecs.tasks().filter((task) => task.lastStatus === "RUNNING");
      // The view and the endpoint agree once each runner reported; both change as tasks come and go, so wait for a moment they agree with a task running.
      let matched: RunningRow[] = [];
      await waitFor(
        "running_tasks to match the ECS endpoint's running tasks",
        async () => {
          const before = runningNow().map((task) => task.arn).sort();
          const rows = await sql<RunningRow[]>`select task_arn, lease_id, kind, state, vcpu::text, ram_gb::text from running_tasks where state = 'running'`;
          const after = runningNow().map((task) => task.arn).sort();
          matched = rows;
          return before.length > 0 && JSON.stringify(before) === JSON.stringify(after) && JSON.stringify(rows.map((row) => row.task_arn).sort()) === JSON.stringify(before);
        },
        45_000,
      );
      for (const row of matched) {
        const task = stack.ecs.tasks().find((t) => t.arn === row.task_arn);
        expect(task?.clientToken).toBe(row.lease_id);
        expect(task?.environment["JOB_KIND"]).toBe(row.kind);
        expect(isJobKind(row.kind)).toBe(true);
        if (isJobKind(row.kind)) expect({ vcpu: Number(row.vcpu), ramGb: Number(row.ram_gb) }).toEqual({ vcpu: profiles[row.kind].vcpu, ramGb: profiles[row.kind].ramGb });
      }

      await waitFor("both requests done", async () => (await sql`select 1 from extraction_queue where status_id <> 5`).length === 0, 60_000);
      await waitFor("every task stopped", async () => stack.ecs.tasks().every((task) => task.lastStatus === "STOPPED"), 30_000);
      expect(await sql`select * from running_tasks`).toEqual([]);

      // Every task the endpoint ran has its row, finished with the exit code ECS saw.
      const recorded = await sql<{ lease_id: string; task_arn: string | null; exit_code: number | null; exit_reason: string | null; finished: boolean; heartbeat: boolean }[]>`
        select lease_id, task_arn, exit_code, exit_reason, finished_at is not null as finished, last_heartbeat_at is not null as heartbeat from runner_tasks order by lease_id`;
      const tasks = stack.ecs.tasks();
      expect(tasks.length).toBeGreaterThanOrEqual(2);
      expect(recorded.map((row) => row.lease_id).sort()).toEqual(tasks.map((task) => task.clientToken).sort());
      for (const task of tasks) {
        const row = recorded.find((r) => r.lease_id === task.clientToken);
        expect(row).toMatchObject({ task_arn: task.arn, exit_code: task.exitCode, finished: true, heartbeat: true });
        expect(row?.exit_reason).toMatch(/^done: /);
      }
    } finally {
      await sql.end();
      await stack.stop();
    }
  }, 120_000);
});
