/**
 * The file `npm start` writes so the operator commands (`npm run status`,
 * `npm run enqueue`) find the running local stack: its shape, and where it is.
 * It lives with the stack that writes it; scripts/ reads it from here.
 */
import { join } from "node:path";
import { z } from "zod";
import { ENVIRONMENTS } from "../../supabase/functions/_shared/environments.ts";
import { LOCAL_STACK_DIR } from "./paths.ts";

/** What `npm start` writes next to its lock file (`<LOCAL_STACK_DIR>/dev/connections.json`, mode 0600). */
export const localConnectionsSchema = z.object({
  databases: z.array(z.object({ environment: z.enum(ENVIRONMENTS), url: z.string() })).min(1),
  upstash: z.object({ url: z.string(), token: z.string() }),
  redisKeyPrefix: z.string(),
  budgetEnv: z.record(z.string(), z.string()),
});
export type LocalConnections = z.infer<typeof localConnectionsSchema>;

export const LOCAL_STATE_DIR = join(LOCAL_STACK_DIR, "dev");
export const LOCAL_CONNECTIONS_FILE = join(LOCAL_STATE_DIR, "connections.json");
