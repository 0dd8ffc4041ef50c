import { join } from "node:path";
import { z } from "zod";
import { LOCAL_STATE_DIR } from "./local-connections.ts";
import type { LocalStack } from "./stack.ts";

/** Where `npm start` writes what `npm run doctor -- --local` checks (scripts/doctor-target.ts reads it). */
export const LOCAL_DOCTOR_FILE = join(LOCAL_STATE_DIR, "doctor.json");

/** What `npm start` writes for `doctor --local` (secrets included, hence mode 0600). */
export const localDoctorFileSchema = z.object({
  runnerDatabaseUrl: z.string(),
  adminDatabaseUrl: z.string(),
  storageDir: z.string(),
  functionsUrl: z.string(),
  dispatchSecret: z.string(),
  upstash: z.object({ url: z.string(), token: z.string() }),
  budgetEnv: z.record(z.string(), z.string()),
  ecsUrl: z.string(),
  registryUrl: z.string(),
});
export type LocalDoctorFile = z.infer<typeof localDoctorFileSchema>;

/** The file's content for a running local stack. */
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
