import { join } from "node:path";
import type { LocalDoctorFile } from "../../scripts/doctor-target.ts";
import type { LocalStack } from "./stack.ts";

/** What `npm run doctor -- --local` reads of a running local stack (scripts/doctor-target.ts). */
export function localDoctorFile(stack: LocalStack, stateDir: string): LocalDoctorFile {
  return {
    runnerDatabaseUrl: stack.urls.runnerDatabase,
    adminDatabaseUrl: stack.urls.database,
    storageDir: join(stateDir, "storage"),
    functionsUrl: stack.urls.functions,
    dispatchSecret: stack.secrets.dispatchSecret,
    upstash: { url: stack.urls.upstash, token: stack.secrets.upstashToken },
    budgetEnv: {},
    ecsUrl: stack.urls.ecs,
    registryUrl: stack.registry.url,
  };
}
