import { existsSync } from "node:fs";
import { run } from "./child-process.ts";

/**
 * Debian packages the local stack runs on, each with a file that proves it
 * is installed. Checked by `npm start` and `npm test` before anything starts.
 */
export const SYSTEM_PACKAGES = [
  { name: "postgresql-15", provides: "/usr/lib/postgresql/15/bin/postgres" },
  { name: "postgresql-15-cron", provides: "/usr/lib/postgresql/15/lib/pg_cron.so" },
  { name: "redis-server", provides: "/usr/bin/redis-server" },
  { name: "chromium", provides: "/usr/bin/chromium" },
  { name: "poppler-utils", provides: "/usr/bin/pdftoppm" },
] as const;

export function missingSystemPackages(): string[] {
  return SYSTEM_PACKAGES.filter((pkg) => !existsSync(pkg.provides)).map((pkg) => pkg.name);
}

export function installCommand(packages: readonly string[]): string {
  return `sudo apt-get update && sudo apt-get install -y ${packages.join(" ")}`;
}

/**
 * Installs what is missing when running as root; otherwise throws with the
 * exact command a person has to run.
 */
export async function ensureSystemPackages(log: (line: string) => void = console.error): Promise<void> {
  const missing = missingSystemPackages();
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`missing Debian packages: ${missing.join(", ")}. Run:\n  ${installCommand(missing)}`);
  }
  log(`installing Debian packages: ${missing.join(", ")} (apt-get, about a minute)`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  await run("apt-get", ["update", "-qq"], { env });
  await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { env });
  const still = missingSystemPackages();
  if (still.length > 0) throw new Error(`apt-get finished but these are still missing: ${still.join(", ")}`);
}
