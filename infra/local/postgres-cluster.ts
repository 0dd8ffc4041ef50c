import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import postgres from "postgres";
import { GiveUpWaiting, run, startProcess, waitFor, type ManagedProcess } from "./child-process.ts";
import { localPostgresBinaries, type PostgresBinaries } from "./postgres-binaries.ts";

export interface PostgresClusterOptions {
  /** Where the cluster's files live; created (initdb) when absent. */
  dataDir: string;
  port: number;
  /**
   * Trade durability for speed: fsync and synchronous commit off. Right for a
   * throwaway test cluster, never for data anyone keeps.
   * @default false
   */
  fast?: boolean;
  onLine?: (line: string) => void;
  /** More `name=value` server settings (a test's TLS files, more listen addresses), after the defaults. */
  settings?: readonly string[];
  /**
   * The `postgres` superuser's password (SCRAM on TCP). @default read from, or
   * generated into, `<dataDir>.superuser-password` beside the data directory
   * (mode 0600), so a restart on the same data keeps it.
   */
  superuserPassword?: string;
  /** Which PostgreSQL to run. @default localPostgresBinaries(process.env): Debian's 15 unless LOCAL_POSTGRES_MAJOR=17 */
  binaries?: PostgresBinaries;
}

export interface PostgresCluster {
  readonly port: number;
  readonly major: 15 | 17;
  readonly process: ManagedProcess;
  /** Its data directory: a test restarts the cluster on it to play a database restart. */
  readonly dataDir: string;
  /** URL for one of the cluster's databases; the `postgres` role's carries the superuser password unless another is given. */
  url(database?: string, role?: string, password?: string): string;
  stop(): Promise<void>;
}

/**
 * A private PostgreSQL cluster (15 with pg_cron preloaded by default; see
 * postgres-binaries.ts), listening on
 * 127.0.0.1 only. initdb and postgres refuse to run as root, so as root they
 * run as the `postgres` system user.
 */
export async function startPostgresCluster(options: PostgresClusterOptions): Promise<PostgresCluster> {
  const { dataDir, port, fast = false, onLine } = options;
  const binaries = options.binaries ?? localPostgresBinaries(process.env);
  const BIN_DIR = binaries.binDir;
  const asUser = process.getuid?.() === 0 ? "postgres" : undefined;
  const command = (binary: string, args: string[]): [string, string[]] =>
    asUser ? ["runuser", ["-u", asUser, "--", `${BIN_DIR}/${binary}`, ...args]] : [`${BIN_DIR}/${binary}`, args];

  if (!existsSync(`${dataDir}/PG_VERSION`)) {
    await rm(dataDir, { recursive: true, force: true });
    // Parents stay world-traversable: the postgres user must pass through them.
    await mkdir(dirname(dataDir), { recursive: true, mode: 0o755 });
    await mkdir(dataDir, { mode: 0o700 });
    if (asUser) await chownToPostgres(dataDir);
    await run(...command("initdb", ["-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]));
  }

  const settings = [
    "listen_addresses=127.0.0.1",
    // No Unix socket: its path length limit and directory permissions bite
    // in deep checkouts, and every client here uses TCP anyway.
    "unix_socket_directories=",
    ...(binaries.pgCron ? ["shared_preload_libraries=pg_cron", "cron.database_name=postgres"] : []),
    "max_connections=200",
    // A commit returns before its WAL reaches the disk: a machine crash may
    // lose the last fraction of a second of local work, never corrupt it.
    // Hosted Supabase keeps its own, durable, settings.
    "synchronous_commit=off",
    ...(fast ? ["fsync=off", "full_page_writes=off"] : []),
    ...(options.settings ?? []),
  ];
  const args = ["-D", dataDir, "-p", String(port), ...settings.flatMap((s) => ["-c", s])];
  const postmaster = startProcess(...command("postgres", args), {
    name: "postgres",
    // SIGINT is postgres's "fast" shutdown: SIGTERM would wait for every
    // client to disconnect first.
    stopSignal: "SIGINT",
    ...(onLine ? { onLine } : {}),
  });
  const superuserPassword = options.superuserPassword ?? (await superuserPasswordBeside(dataDir));
  const url = (database = "postgres", role = "postgres", password: string | undefined = role === "postgres" ? superuserPassword : undefined) =>
    `postgres://${encodeURIComponent(role)}${password ? `:${encodeURIComponent(password)}` : ""}@127.0.0.1:${port}/${database}`;

  await waitFor(`PostgreSQL on port ${port}`, async () => {
    if (postmaster.child.exitCode !== null) throw new GiveUpWaiting(`postgres exited with ${postmaster.child.exitCode}; see its log`);
    const sql = postgres(url(), { max: 1, connect_timeout: 1, onnotice: () => {} });
    try {
      await sql`select 1`;
      return true;
    } finally {
      await sql.end({ timeout: 1 });
    }
  }, 30_000);

  await requirePasswords(dataDir, url(), superuserPassword);
  return { port, major: binaries.major, process: postmaster, dataDir, url, stop: () => postmaster.stop(10_000) };
}

/** The postgres user must be able to reach the data directory through every parent. */
async function chownToPostgres(dataDir: string): Promise<void> {
  await run("chown", ["-R", "postgres:postgres", dataDir]);
  try {
    await run("runuser", ["-u", "postgres", "--", "test", "-w", dataDir]);
  } catch {
    throw new Error(
      `the postgres system user cannot write ${dataDir} (a parent directory is closed to it, e.g. /root). ` +
        `Set LOCAL_STACK_DIR to a directory it can reach, e.g. LOCAL_STACK_DIR=/var/tmp/registre-extraction`,
    );
  }
}


/**
 * No trust (issue 19 item 13: the cluster trusted every OS user who could
 * reach 127.0.0.1): password (SCRAM) for every TCP login, peer on the socket
 * (which the cluster does not open: unix_socket_directories is empty). A
 * cluster initdb'ed with --auth=trust (a fresh one, or one an earlier version
 * made) is converted while trust still lets the superuser in: its password is
 * set, pg_hba.conf rewritten, the configuration reloaded. Idempotent.
 */
async function requirePasswords(dataDir: string, superuserUrl: string, password: string): Promise<void> {
  const hbaFile = join(dataDir, "pg_hba.conf");
  const hba = await readFile(hbaFile, "utf8");
  if (hba === HBA) return;
  const sql = postgres(superuserUrl, { max: 1, onnotice: () => {} });
  try {
    // password_encryption is scram-sha-256 by default since PostgreSQL 14: the role's verifier is SCRAM.
    await sql.unsafe(`alter role postgres password ${quoteLiteral(password)}`);
    await writeFile(hbaFile, HBA);
    await sql`select pg_reload_conf()`;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

const HBA = [
  "# Written by infra/local/postgres-cluster.ts: a password (SCRAM) for every TCP login, no trust.",
  "# TYPE  DATABASE  USER  ADDRESS       METHOD",
  "local   all       all                 peer",
  "host    all       all   127.0.0.1/32  scram-sha-256",
  "host    all       all   ::1/128       scram-sha-256",
  "",
].join("\n");

function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** The superuser password kept beside the data directory (never inside it: initdb wants that folder to itself). */
async function superuserPasswordBeside(dataDir: string): Promise<string> {
  const file = join(dirname(dataDir), `${basename(dataDir)}.superuser-password`);
  if (existsSync(file)) {
    const kept = (await readFile(file, "utf8")).trim();
    if (kept.length >= 16) return kept;
  }
  const password = randomBytes(24).toString("base64url");
  await writeFile(file, password, { mode: 0o600 });
  return password;
}
