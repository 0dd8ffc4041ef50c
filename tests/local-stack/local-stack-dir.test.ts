/**
 * As root, Postgres runs as the `postgres` system user, which cannot pass
 * through a checkout under /root. The stack must then pick a state folder
 * that user can reach, say where, and work with no setting: these tests
 * build such a checkout for real (a parent closed to everyone but root) and
 * start a real cluster where the stack chose.
 */
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { freePort } from "../../infra/local/free-port.ts";
import { chooseLocalStackDir, firstClosedDirectory, postgresSystemUser, type SystemUser } from "../../infra/local/paths.ts";
import { startPostgresCluster } from "../../infra/local/postgres-cluster.ts";

let sandbox: string;
let closedCheckout: string;
let openCheckout: string;
/** The postgres user when installed (it is, for the test stack to run); a stranger otherwise. */
const postgresUser: SystemUser = postgresSystemUser() ?? { uid: 65534, gid: 65534 };

beforeAll(async () => {
  sandbox = await mkdtemp(join(tmpdir(), "local-stack-dir-"));
  // mkdtemp makes it 700; only the folder below stands for /root.
  await chmod(sandbox, 0o755);
  await mkdir(join(sandbox, "home-of-root"), { mode: 0o700 });
  closedCheckout = join(sandbox, "home-of-root", "registre-extraction");
  await mkdir(closedCheckout, { mode: 0o755 });
  openCheckout = join(sandbox, "srv", "registre-extraction");
  await mkdir(openCheckout, { recursive: true, mode: 0o755 });
});
afterAll(async () => {
  await rm(sandbox, { recursive: true, force: true });
});

describe("where the local stack keeps its state", () => {
  test("a checkout under a folder closed to the postgres user: a reachable folder of /var/tmp, and a message saying where and why", () => {
    const choice = chooseLocalStackDir({ env: {}, projectRoot: closedCheckout, postgresUser });

    expect(firstClosedDirectory(join(closedCheckout, ".local"), postgresUser)).toBe(join(sandbox, "home-of-root"));
    expect(choice.dir).toMatch(/^\/var\/tmp\/registre-extraction-[0-9a-f]{10}$/);
    expect(choice.reason).toBe(
      `the postgres system user cannot reach ${join(closedCheckout, ".local")} (${join(sandbox, "home-of-root")} is closed to it), ` +
        `so the local stack keeps its state in ${choice.dir}; set LOCAL_STACK_DIR to choose another folder`,
    );
    // The same checkout gets the same folder on every run, so its data survives restarts; another checkout gets its own.
    expect(chooseLocalStackDir({ env: {}, projectRoot: closedCheckout, postgresUser }).dir).toBe(choice.dir);
    expect(chooseLocalStackDir({ env: {}, projectRoot: join(closedCheckout, "..", "other"), postgresUser }).dir).not.toBe(choice.dir);
  });

  test("a checkout the postgres user can reach keeps its state in <repo>/.local, silently", () => {
    expect(chooseLocalStackDir({ env: {}, projectRoot: openCheckout, postgresUser })).toEqual({ dir: join(openCheckout, ".local") });
  });

  test("not root (Postgres runs as the caller), or LOCAL_STACK_DIR set: as asked, whatever the permissions", () => {
    expect(chooseLocalStackDir({ env: {}, projectRoot: closedCheckout, postgresUser: undefined })).toEqual({ dir: join(closedCheckout, ".local") });
    expect(chooseLocalStackDir({ env: { LOCAL_STACK_DIR: "/srv/state" }, projectRoot: closedCheckout, postgresUser })).toEqual({ dir: "/srv/state" });
    expect(chooseLocalStackDir({ env: { LOCAL_STACK_DIR: " " }, projectRoot: openCheckout, postgresUser })).toEqual({ dir: join(openCheckout, ".local") });
  });

  test("a cluster starts in the folder chosen for the closed checkout, with no setting", async () => {
    const { dir } = chooseLocalStackDir({ env: {}, projectRoot: closedCheckout, postgresUser });
    if (process.getuid?.() === 0) {
      // What happened before: the checkout's own .local, which the postgres user cannot reach.
      await expect(startPostgresCluster({ dataDir: join(closedCheckout, ".local", "postgres"), port: await freePort(), fast: true })).rejects.toThrow(
        /the postgres system user cannot write/,
      );
    }
    // The real folder of that checkout, started from scratch and removed after.
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const port = await freePort();
    const cluster = await startPostgresCluster({ dataDir: join(dir, "postgres"), port, fast: true });
    try {
      const sql = postgres(cluster.url(), { max: 1, onnotice: () => {} });
      const [row] = await sql<{ ok: number }[]>`select 1 as ok`;
      await sql.end();
      expect(row?.ok).toBe(1);
    } finally {
      await cluster.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("any command that reads the folder's path creates it: a fresh checkout has none yet", async () => {
    const fresh = join(sandbox, "fresh-checkout", "state");
    const { spawnSync } = await import("node:child_process");
    // A separate process, as `npm run status` or `npm run bench` would be: importing the path module is what they share.
    const child = spawnSync(process.execPath, ["--import", "tsx", "-e", `await import(${JSON.stringify(join(process.cwd(), "infra", "local", "paths.ts"))})`], {
      env: { ...process.env, LOCAL_STACK_DIR: fresh },
      encoding: "utf8",
    });
    expect(child.stderr).toBe("");
    expect(child.status).toBe(0);
    const { stat } = await import("node:fs/promises");
    const made = await stat(fresh);
    expect(made.isDirectory()).toBe(true);
    // Traversable by the postgres user when the stack runs as root.
    expect(made.mode & 0o755).toBe(0o755);
  });
});
