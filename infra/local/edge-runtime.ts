import { join } from "node:path";
import { GiveUpWaiting, startProcess, waitFor, type ManagedProcess } from "./child-process.ts";
import { FUNCTIONS_DIR, PROJECT_ROOT } from "./paths.ts";

export interface EdgeRuntime {
  /** Base URL, as SUPABASE_URL: functions answer at `${url}/functions/v1/<name>`. */
  readonly url: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * Deno (from the npm `deno` package) serving every function under
 * supabase/functions/ with the environment a hosted function receives.
 * Offline: bare imports resolve through deno.json to npm: specifiers, which
 * Deno reads from node_modules.
 */
export async function startEdgeRuntime(options: {
  port: number;
  /** SUPABASE_URL, SUPABASE_DB_URL, … and the functions' secrets. */
  env: Record<string, string>;
  onLine?: (line: string) => void;
}): Promise<EdgeRuntime> {
  const { port, env, onLine } = options;
  const deno = join(PROJECT_ROOT, "node_modules", ".bin", "deno");
  const runtime = startProcess(
    deno,
    // --node-modules-dir=manual here rather than in deno.json: offline, npm:
    // imports must come from node_modules, while a hosted deploy resolves
    // them from the registry as usual.
    ["run", "--config", join(FUNCTIONS_DIR, "deno.json"), "--node-modules-dir=manual", "--allow-net", "--allow-env", "--allow-read", "--allow-sys", join(PROJECT_ROOT, "infra", "local", "edge-runtime", "main.ts")],
    {
      name: "edge-runtime",
      cwd: FUNCTIONS_DIR,
      // Only what a hosted function would see, plus what Deno itself needs.
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/tmp", DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...env, EDGE_RUNTIME_PORT: String(port) },
      ...(onLine ? { onLine } : {}),
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`the edge runtime on port ${port}`, async () => {
    if (runtime.child.exitCode !== null) throw new GiveUpWaiting(`deno exited with ${runtime.child.exitCode}; see its log`);
    const response = await fetch(`${url}/functions/v1/`);
    await response.body?.cancel();
    return response.status === 404;
  }, 60_000);
  return { url, process: runtime, stop: () => runtime.stop() };
}
