/**
 * Which databases and which Upstash the operator commands (`enqueue`,
 * `status`) talk to: the variables when set, else the local stack that
 * `npm start` runs, as described by the connections file it writes.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { DEFAULT_LOCAL_PORTS } from "../infra/local/local-ports.ts";
import { LOCAL_CONNECTIONS_FILE, LOCAL_STATE_DIR, localConnectionsSchema } from "../infra/local/local-connections.ts";
import { setValues } from "../supabase/functions/_shared/env-values.ts";
import { ENVIRONMENTS, type Environment } from "../supabase/functions/_shared/environments.ts";

export interface StackTargets {
  /** Where the targets came from, for messages. */
  readonly source: "variables" | "local stack";
  /** One database (Supabase project) per environment. */
  readonly databases: readonly { readonly environment: Environment; readonly url: string }[];
  /** The shared budgets; undefined when no Upstash is configured. */
  readonly upstash: { readonly url: string; readonly token: string } | undefined;
  readonly redisKeyPrefix: string;
  /** Capacity and budget variables the stack runs with (SERVER_MAX_CPU, …), so figures match the dispatcher's. */
  readonly budgetEnv: Record<string, string>;
}

export class StackTargetsError extends Error {
  override readonly name = "StackTargetsError";
}

/**
 * DATABASE_URL (with ENVIRONMENT naming it, default dev) and/or
 * DATABASE_URL_DEV, DATABASE_URL_STAGING, DATABASE_URL_PROD select hosted
 * databases; UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN the shared
 * budgets. With none of the database variables set, the local stack.
 */
export function resolveStackTargets(env: Readonly<Record<string, string | undefined>>): StackTargets {
  const values = setValues(env);
  const databases: { environment: Environment; url: string }[] = [];
  for (const environment of ENVIRONMENTS) {
    const url = values[`DATABASE_URL_${environment.toUpperCase()}`];
    if (url !== undefined) databases.push({ environment, url });
  }
  if (values["DATABASE_URL"] !== undefined) {
    const environment = values["ENVIRONMENT"] ?? "dev";
    if (!(ENVIRONMENTS as readonly string[]).includes(environment)) {
      throw new StackTargetsError(`ENVIRONMENT=${JSON.stringify(environment)} must be one of ${ENVIRONMENTS.join(", ")}`);
    }
    if (!databases.some((db) => db.environment === environment)) databases.unshift({ environment: environment as Environment, url: values["DATABASE_URL"] });
  }
  if (databases.length > 0) {
    const url = values["UPSTASH_REDIS_REST_URL"];
    const token = values["UPSTASH_REDIS_REST_TOKEN"];
    return {
      source: "variables",
      databases,
      upstash: url !== undefined && token !== undefined ? { url, token } : undefined,
      redisKeyPrefix: values["REDIS_KEY_PREFIX"] ?? "",
      budgetEnv: {},
    };
  }
  return localStackTargets();
}

function localStackTargets(): StackTargets {
  if (existsSync(LOCAL_CONNECTIONS_FILE)) {
    const parsed = localConnectionsSchema.safeParse(JSON.parse(readFileSync(LOCAL_CONNECTIONS_FILE, "utf8")));
    if (parsed.success) return { source: "local stack", ...parsed.data };
  }
  // A stack started before the connections file existed: its fixed ports and generated token.
  const secretsFile = join(LOCAL_STATE_DIR, "secrets.json");
  let token: string | undefined;
  if (existsSync(secretsFile)) {
    const secrets = z.object({ upstashToken: z.string() }).safeParse(JSON.parse(readFileSync(secretsFile, "utf8")));
    if (secrets.success) token = secrets.data.upstashToken;
  }
  return {
    source: "local stack",
    databases: [{ environment: "dev", url: `postgres://postgres@127.0.0.1:${DEFAULT_LOCAL_PORTS.postgres}/postgres` }],
    upstash: token === undefined ? undefined : { url: `http://127.0.0.1:${DEFAULT_LOCAL_PORTS.upstash}`, token },
    redisKeyPrefix: "",
    budgetEnv: {},
  };
}

/** The one database of `environment`, or the first one when none is named. */
export function databaseFor(targets: StackTargets, environment: string | undefined): { environment: Environment; url: string } {
  const chosen = environment === undefined ? targets.databases[0] : targets.databases.find((db) => db.environment === environment);
  if (chosen === undefined) {
    const known = targets.databases.map((db) => db.environment).join(", ");
    throw new StackTargetsError(`no database for environment ${JSON.stringify(environment)} (${targets.source}: ${known})`);
  }
  return chosen;
}

/** A connection failure as advice: start the stack, or check the variable. */
export function unreachableHint(targets: StackTargets): string {
  return targets.source === "local stack"
    ? "is the local stack running? Start it with `npm start`, or set DATABASE_URL"
    : "check DATABASE_URL (or DATABASE_URL_<ENV>)";
}
