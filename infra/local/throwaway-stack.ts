import { chmod, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { freePort } from "./free-port.ts";
import { LOCAL_STACK_DIR } from "./paths.ts";
import { startLocalStack, type LocalStack, type LocalStackOptions } from "./stack.ts";

/**
 * A whole local stack on free ports in a fresh state folder, deleted when the
 * stack stops: for tests and benchmarks, which must never disturb a running
 * `npm start`.
 */
export async function startThrowawayStack(
  name: string,
  options: Omit<LocalStackOptions, "stateDir" | "ports" | "log"> & Partial<Pick<LocalStackOptions, "log">> = {},
): Promise<LocalStack> {
  // Under LOCAL_STACK_DIR rather than /tmp, and world-traversable: as root,
  // the postgres system user must reach the cluster's folder inside it.
  const stateDir = await mkdtemp(join(LOCAL_STACK_DIR, `${name}-`));
  await chmod(stateDir, 0o755);
  const ports = { functions: await freePort(), postgres: await freePort(), redis: await freePort(), upstash: await freePort(), ecs: await freePort() };
  try {
    const stack = await startLocalStack({ log: () => {}, ...options, stateDir, ports });
    return {
      ...stack,
      async stop() {
        await stack.stop();
        await rm(stateDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
}
