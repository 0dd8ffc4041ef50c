/**
 * The private cluster trusts no one (issue 19 item 13): every TCP login needs
 * its password (SCRAM), the superuser's included; the stack's URLs carry it;
 * a restart on the same data keeps it; a cluster an earlier version left
 * with `trust` is converted on start.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { freePort } from "../../infra/local/free-port.ts";
import { LOCAL_STACK_DIR } from "../../infra/local/paths.ts";
import { startPostgresCluster, type PostgresCluster } from "../../infra/local/postgres-cluster.ts";

let dir: string;
let port: number;
let cluster: PostgresCluster | undefined;

beforeAll(async () => {
  // Under LOCAL_STACK_DIR and world-traversable: as root, the postgres system user runs the cluster.
  dir = await mkdtemp(join(LOCAL_STACK_DIR, "cluster-passwords-"));
  await chmod(dir, 0o755);
  port = await freePort();
  cluster = await startPostgresCluster({ dataDir: join(dir, "postgres"), port, fast: true });
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function login(url: string): Promise<unknown> {
  const sql = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    const [row] = await sql<{ who: string }[]>`select current_user as who`;
    return row?.who;
  } catch (error) {
    return error;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

describe("the private cluster's logins", () => {
  test("the superuser with its password gets in; without it, or with another, it is refused", async () => {
    const url = cluster?.url() ?? "";
    expect(new URL(url).password.length).toBeGreaterThanOrEqual(16);
    expect(await login(url)).toBe("postgres");
    expect(await login(`postgres://postgres@127.0.0.1:${port}/postgres`)).toMatchObject({ message: expect.stringMatching(/password/) });
    expect(await login(`postgres://postgres:wrong-password@127.0.0.1:${port}/postgres`)).toMatchObject({ code: "28P01" });
    const hba = await readFile(join(dir, "postgres", "pg_hba.conf"), "utf8");
    expect(hba).toMatch(/scram-sha-256/);
    expect(hba).not.toMatch(/^\s*(host|local)\S*\s.*\btrust\b/m);
  });

  test("a role made with a password logs in with it, and is refused without", async () => {
    const admin = postgres(cluster?.url() ?? "", { max: 1, onnotice: () => {} });
    await admin.unsafe("create role password_probe login password 'probe-password-123'");
    await admin.end();
    expect(await login(cluster?.url("postgres", "password_probe", "probe-password-123") ?? "")).toBe("password_probe");
    expect(await login(cluster?.url("postgres", "password_probe") ?? "")).toMatchObject({ message: expect.stringMatching(/password/) });
  });

  test("a restart keeps the password, and a cluster left with trust is converted", async () => {
    await cluster?.stop();
    // As an earlier version left it: every login trusted.
    await writeFile(join(dir, "postgres", "pg_hba.conf"), "host all all 127.0.0.1/32 trust\n");
    cluster = await startPostgresCluster({ dataDir: join(dir, "postgres"), port, fast: true });
    expect(await login(cluster.url())).toBe("postgres");
    expect(await login(`postgres://postgres@127.0.0.1:${port}/postgres`)).toMatchObject({ message: expect.stringMatching(/password/) });
  }, 60_000);
});
