import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../infra/local/free-port.ts";
import { LOCAL_STACK_DIR } from "../../infra/local/paths.ts";
import { startPostgresCluster, type PostgresCluster } from "../../infra/local/postgres-cluster.ts";
import { parseDatabaseTls } from "../../runners/lifecycle/database-tls.ts";
import { connectJobDatabase } from "../../runners/lifecycle/job-queue.ts";
import { parseRunnerConfig, RunnerConfigError } from "../../runners/lifecycle/runner-config.ts";

/**
 * The runner's database connection against a real PostgreSQL with TLS on,
 * reached at 127.0.0.2 as a remote pooler would be (not a loopback name the
 * runner exempts): with the server's root certificate it verifies and
 * encrypts, without it it still encrypts, with another CA it refuses, and a
 * URL that would allow plain text is refused before any connection.
 */
const folder = join(LOCAL_STACK_DIR, "tls-test", `${process.pid}-${randomBytes(3).toString("hex")}`);
const REMOTE_HOST = "127.0.0.2";
let cluster: PostgresCluster;
let ca: string;
let otherCa: string;

function openssl(args: string[]): void {
  execFileSync("openssl", args, { cwd: folder, stdio: "ignore" });
}

/** A CA, and a server certificate it signs for 127.0.0.2 (an IP SAN, checked as verify-full checks a host name). */
function makeCertificates(): void {
  mkdirSync(folder, { recursive: true, mode: 0o755 });
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test root CA"]);
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.crt", "-days", "2", "-subj", "/CN=another CA"]);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=pooler"]);
  writeFileSync(join(folder, "san.ext"), `subjectAltName=IP:${REMOTE_HOST}\n`);
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext"]);
  // Postgres refuses a key others can read; as root the server runs as `postgres`.
  if (process.getuid?.() === 0) execFileSync("chown", ["postgres:postgres", join(folder, "server.key"), join(folder, "server.crt")]);
  execFileSync("chmod", ["600", join(folder, "server.key")]);
  ca = readFileSync(join(folder, "ca.crt"), "utf8");
  otherCa = readFileSync(join(folder, "other.crt"), "utf8");
}

beforeAll(async () => {
  makeCertificates();
  cluster = await startPostgresCluster({
    dataDir: join(folder, "data"),
    port: await freePort(),
    fast: true,
    settings: [`listen_addresses=127.0.0.1,${REMOTE_HOST}`, "ssl=on", `ssl_cert_file=${join(folder, "server.crt")}`, `ssl_key_file=${join(folder, "server.key")}`],
    // The runner role's password travels over this connection in production; here, the superuser's.
    superuserPassword: "tls-test-password",
  });
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  rmSync(folder, { recursive: true, force: true });
});

function remoteUrl(query = ""): string {
  return `postgres://postgres:tls-test-password@${REMOTE_HOST}:${cluster.port}/postgres${query}`;
}

/** Connects as the runner does and asks the server whether this session is encrypted. */
async function sessionSsl(url: string, env: Record<string, string>): Promise<boolean> {
  const sql = connectJobDatabase(url, { max: 1, connectTimeoutSeconds: 5, tls: parseDatabaseTls(url, env) });
  try {
    const [row] = await sql<{ ssl: boolean }[]>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`;
    return row?.ssl === true;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

describe("the runner's connection to a remote pooler", () => {
  it("verifies the server with DATABASE_SSL_ROOT_CERT and encrypts the session", async () => {
    expect(parseDatabaseTls(remoteUrl(), { DATABASE_SSL_ROOT_CERT: ca })).toEqual({ mode: "verify-full", ca: ca.trim() });
    expect(await sessionSsl(remoteUrl(), { DATABASE_SSL_ROOT_CERT: ca })).toBe(true);
  });

  it("refuses a server whose certificate another CA signed", async () => {
    await expect(sessionSsl(remoteUrl(), { DATABASE_SSL_ROOT_CERT: otherCa })).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });

  it("still encrypts without the root certificate (require), which the doctor reports as unverified", async () => {
    expect(parseDatabaseTls(remoteUrl(), {})).toEqual({ mode: "require" });
    expect(await sessionSsl(remoteUrl(), {})).toBe(true);
    expect(await sessionSsl(remoteUrl("?sslmode=require"), {})).toBe(true);
  });

  it("refuses sslmode values that fall back to plain text, naming DATABASE_URL and never its password", () => {
    for (const mode of ["disable", "allow", "prefer"]) {
      const env = { JOB_KIND: "registre", ENVIRONMENT: "dev", LEDGER_LEASE_ID: "lease-1", DATABASE_URL: remoteUrl(`?sslmode=${mode}`), UPSTASH_REDIS_REST_URL: "https://example.upstash.io", UPSTASH_REDIS_REST_TOKEN: "t" };
      let caught: unknown;
      try {
        parseRunnerConfig(env);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(RunnerConfigError);
      expect((caught as RunnerConfigError).variables).toEqual(["DATABASE_URL"]);
      expect((caught as Error).message).toContain(`sslmode=${mode}`);
      expect((caught as Error).message).not.toContain("tls-test-password");
    }
  });

  it("refuses a DATABASE_SSL_ROOT_CERT that is not a PEM certificate", () => {
    expect(() => parseDatabaseTls(remoteUrl(), { DATABASE_SSL_ROOT_CERT: "not a certificate" })).toThrow(/DATABASE_SSL_ROOT_CERT must be a PEM certificate/);
  });

  it("keeps the local stack's loopback URL plain, as its cluster has no certificate", async () => {
    expect(parseDatabaseTls(cluster.url(), {})).toEqual({ mode: "disable" });
    expect(await sessionSsl(cluster.url(), {})).toBe(false);
  });
});
