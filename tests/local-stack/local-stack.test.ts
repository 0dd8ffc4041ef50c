import { chmod, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { freePort } from "../../infra/local/free-port.ts";
import { LOCAL_STACK_DIR } from "../../infra/local/paths.ts";
import { startLocalStack } from "../../infra/local/stack.ts";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("the embedded local stack", () => {
  it("starts every part, answers, and leaves no stray process when stopped", async () => {
    // Under LOCAL_STACK_DIR rather than /tmp: as root, the postgres user must reach it.
    const stateDir = await mkdtemp(join(LOCAL_STACK_DIR, "stack-test-"));
    await chmod(stateDir, 0o755);
    const ports = { functions: await freePort(), postgres: await freePort(), redis: await freePort(), upstash: await freePort(), ecs: await freePort() };
    const stack = await startLocalStack({ stateDir, ports, log: () => {} });
    const pids = stack.pids();
    try {
      expect(pids.length).toBeGreaterThanOrEqual(3);
      const health = await fetch(`${stack.urls.functions}/functions/v1/health`);
      expect(await health.json()).toMatchObject({ ok: true, database: "postgres" });
      const runner = postgres(stack.urls.runnerDatabase, { max: 1 });
      await expect(runner`select current_user as role`).resolves.toEqual([{ role: "runner" }]);
      await runner.end();
    } finally {
      await stack.stop();
    }
    const groupsAlive = pids.filter((pid) => isAlive(pid) || groupAlive(pid));
    expect(groupsAlive).toEqual([]);
    await rm(stateDir, { recursive: true, force: true });
  }, 120_000);
});

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

