import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";

/** The repository root (this file lives in infra/local/). */
export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export const MIGRATIONS_DIR = join(PROJECT_ROOT, "supabase", "migrations");
export const FUNCTIONS_DIR = join(PROJECT_ROOT, "supabase", "functions");

/** A uid and gid, as the kernel checks directory permissions with them. */
export interface SystemUser {
  readonly uid: number;
  readonly gid: number;
}

export interface LocalStackDirChoice {
  readonly dir: string;
  /** Set when the stack had to move away from the checkout: what it says to the user. */
  readonly reason?: string;
}

/**
 * Where the local stack keeps its state (Postgres data, storage, logs, lock
 * file): LOCAL_STACK_DIR when set, else `<repo>/.local`. As root, Postgres
 * runs as the `postgres` system user, which must be able to pass through
 * every parent of its data directory; a checkout under /root (mode 700) is
 * closed to it. Rather than fail, the stack then keeps its state in a folder
 * of /var/tmp named after the checkout (the same one every run, so the data
 * survives restarts) and says so.
 */
export function chooseLocalStackDir(options: {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly projectRoot: string;
  /** The user Postgres runs as: undefined when not root (Postgres runs as us). */
  readonly postgresUser: SystemUser | undefined;
}): LocalStackDirChoice {
  const configured = options.env["LOCAL_STACK_DIR"]?.trim();
  if (configured) return { dir: resolve(configured) };
  const inCheckout = join(options.projectRoot, ".local");
  if (options.postgresUser === undefined) return { dir: inCheckout };
  const closed = firstClosedDirectory(inCheckout, options.postgresUser);
  if (closed === undefined) return { dir: inCheckout };
  const checkoutId = createHash("sha256").update(resolve(options.projectRoot)).digest("hex").slice(0, 10);
  const dir = join("/var/tmp", `registre-extraction-${checkoutId}`);
  return {
    dir,
    reason: `the postgres system user cannot reach ${inCheckout} (${closed} is closed to it), so the local stack keeps its state in ${dir}; set LOCAL_STACK_DIR to choose another folder`,
  };
}

/**
 * The first existing directory on the way to `target` that `user` may not
 * pass through (no execute permission for it), or undefined when every one
 * is open. Ownership and mode only: the checkout's parents carry no ACLs on
 * the systems this runs on.
 */
export function firstClosedDirectory(target: string, user: SystemUser): string | undefined {
  const ancestors: string[] = [];
  for (let dir = resolve(target); ; dir = dirname(dir)) {
    ancestors.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of ancestors) {
    let stats;
    try {
      stats = statSync(dir);
    } catch {
      // Not created yet: the stack creates it world-traversable.
      return undefined;
    }
    const mode = stats.mode;
    const canPass = stats.uid === user.uid ? (mode & 0o100) !== 0 : stats.gid === user.gid ? (mode & 0o010) !== 0 : (mode & 0o001) !== 0;
    if (!canPass) return dir;
  }
  return undefined;
}

/** The `postgres` system user from /etc/passwd; undefined before postgresql is installed. */
export function postgresSystemUser(passwd = "/etc/passwd"): SystemUser | undefined {
  let text: string;
  try {
    text = readFileSync(passwd, "utf8");
  } catch {
    return undefined;
  }
  const fields = text.split("\n").find((line) => line.startsWith("postgres:"))?.split(":");
  const uid = Number(fields?.[2]);
  const gid = Number(fields?.[3]);
  return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
}

const choice = chooseLocalStackDir({
  env: process.env,
  projectRoot: PROJECT_ROOT,
  // Before postgresql is installed there is no such user; setup creates it
  // with a home under /var/lib, so only the checkout's parents matter then.
  postgresUser: process.getuid?.() === 0 ? (postgresSystemUser() ?? { uid: -1, gid: -1 }) : undefined,
});

/**
 * Where the local stack keeps its state: see chooseLocalStackDir.
 * @default "<repo>/.local"
 */
export const LOCAL_STACK_DIR = choice.dir;

/** Why LOCAL_STACK_DIR is not the checkout's `.local`, when it is not; printed by the commands that start a stack. */
export const LOCAL_STACK_DIR_REASON: string | undefined = choice.reason;

// Every command that keeps state (npm start, bench, status, plan, enqueue,
// mint-storage-key, the local runners, the tests) reads the folder from here,
// so here is where it comes into being, on a fresh checkout too. World-
// traversable: as root, the postgres user must pass through it.
mkdirSync(LOCAL_STACK_DIR, { recursive: true, mode: 0o755 });
if (LOCAL_STACK_DIR_REASON !== undefined) {
  // Once per process, on stderr, so `--json` output on stdout stays one object per line.
  process.stderr.write(`• ${LOCAL_STACK_DIR_REASON}\n`);
}
