/**
 * SST's platform: the `.sst/platform` folder `sst install` writes (component
 * sources, their types, and the Pulumi packages from the npm registry). The
 * type check and the mocked evaluation of `sst.config.ts` both need it, and a
 * fresh clone does not have it (`.sst/` is git-ignored).
 *
 * `sst install` works on a machine that reaches only the npm registry when
 * it is told not to fetch its own tools (SST_SKIP_DEPENDENCY_CHECK) and is
 * given a bun binary, which it uses to install the platform's packages: the
 * npm `bun` package (a devDependency) ships one.
 *
 * Plain TypeScript without SST globals: the tests import it directly.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

export interface SstPlatformPaths {
  readonly root: string;
  readonly platform: string;
}

export function sstPlatformPaths(root: string): SstPlatformPaths {
  return { root, platform: join(root, ".sst", "platform") };
}

/**
 * The folder of an installed package: its package.json, or, for packages
 * that do not export it (`sst`), the folder above its main file that holds it.
 */
function packageDir(name: string): string {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    // Not exported: climb from the main file below.
  }
  let dir = dirname(require.resolve(name));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === name) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the folder of the ${name} package; run npm ci`);
    dir = parent;
  }
}

/** The sst CLI version in node_modules, which is what `.sst/platform/version` records after an install. */
export function installedSstVersion(): string {
  const packageJson: unknown = JSON.parse(readFileSync(join(packageDir("sst"), "package.json"), "utf8"));
  if (typeof packageJson !== "object" || packageJson === null || !("version" in packageJson) || typeof packageJson.version !== "string") {
    throw new Error("node_modules/sst/package.json has no version");
  }
  return packageJson.version;
}

/**
 * The aws provider version `sst.config.ts` pins, read back from the lock
 * `sst install` writes; undefined when the platform was never installed.
 */
function lockedProviderVersions(paths: SstPlatformPaths): Map<string, string> | undefined {
  const lockPath = join(paths.root, ".sst", "provider-lock.json");
  if (!existsSync(lockPath)) return undefined;
  const lock: unknown = JSON.parse(readFileSync(lockPath, "utf8"));
  if (!Array.isArray(lock)) return undefined;
  const versions = new Map<string, string>();
  for (const entry of lock as unknown[]) {
    if (typeof entry === "object" && entry !== null && "name" in entry && "version" in entry) {
      versions.set(String(entry.name), String(entry.version));
    }
  }
  return versions;
}

/**
 * Why the platform must be (re)installed, or undefined when the one in
 * `.sst/` matches this sst version and the pinned providers.
 */
export function platformStaleReason(paths: SstPlatformPaths, pinnedProviders: Readonly<Record<string, string>>): string | undefined {
  const versionFile = join(paths.platform, "version");
  if (!existsSync(versionFile)) return ".sst/platform is not installed";
  const version = readFileSync(versionFile, "utf8").trim();
  const wanted = installedSstVersion();
  if (version !== wanted) return `.sst/platform is for sst ${version}, node_modules has sst ${wanted}`;
  if (!existsSync(join(paths.platform, "node_modules", "@pulumi", "pulumi", "package.json"))) return ".sst/platform has no node_modules";
  const locked = lockedProviderVersions(paths);
  for (const [name, pinned] of Object.entries(pinnedProviders)) {
    const have = locked?.get(name);
    if (have !== pinned) return `provider ${name} is ${have ?? "not installed"}, sst.config.ts pins ${pinned}`;
  }
  return undefined;
}

/** The bun binary of the npm `bun` package, which `sst install` uses to install the platform's packages. */
export function bunBinary(): string {
  const binary = join(packageDir("bun"), "bin", "bun.exe");
  if (!existsSync(binary)) throw new Error(`the npm bun package has no binary at ${binary}; run npm ci`);
  return binary;
}

/** The sst CLI's launcher (it picks the binary of the platform package npm installed for this machine). */
function sstLauncher(): string {
  return join(packageDir("sst"), "bin", "sst.mjs");
}

/** Environment that lets `sst` run without fetching its own tools or phoning home. */
export function offlineSstEnvironment(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...base, SST_SKIP_DEPENDENCY_CHECK: "1", SST_TELEMETRY_DISABLED: "1", SST_BUN_PATH: bunBinary(), NO_COLOR: "1" };
}

/**
 * Runs `sst install` unless `.sst/platform` is already current. Resolves to
 * what was done, for the progress line. Throws with sst's own output when
 * the install fails.
 */
export async function ensureSstPlatform(
  paths: SstPlatformPaths,
  stage: string,
  pinnedProviders: Readonly<Record<string, string>>,
): Promise<{ installed: boolean; reason?: string }> {
  const reason = platformStaleReason(paths, pinnedProviders);
  if (reason === undefined) return { installed: false };
  const output = await run(process.execPath, [sstLauncher(), "install", "--stage", stage], paths.root, offlineSstEnvironment(process.env));
  const stillStale = platformStaleReason(paths, pinnedProviders);
  if (stillStale !== undefined) throw new Error(`sst install finished but ${stillStale}:\n${output}`);
  return { installed: true, reason };
}

function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${command} ${args.join(" ")} exited with ${code}:\n${output.trim()}`));
    });
  });
}
