/**
 * Issue 19 item 3: whoever holds the dispatch AWS key can RunTask a runner
 * with container overrides, and no IAM condition key looks at a container
 * override's environment (the ECS condition keys cover the cluster, the
 * capacity provider, ECS Exec and, since 2026-09, the task's cpu and memory:
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html).
 * An override of REGISTRY_BASE_URL, GEMINI_BASE_URL, SUPABASE_URL or
 * UPSTASH_REDIS_REST_URL would send the registry passwords, the Gemini key,
 * the Storage credential or the Upstash token to another host. So a runner
 * started from the production image (the image writes PRODUCTION_MARKER; no
 * environment variable can remove a file) ignores the endpoint overrides the
 * local stack needs and accepts only the hosts of the real services:
 *
 * - REGISTRY_BASE_URL, GEMINI_BASE_URL and STORAGE_LOCAL_DIR are dropped, so
 *   the runner uses the registry's and Gemini's real addresses and Storage;
 * - SUPABASE_URL must be https://<ref>.supabase.co, UPSTASH_REDIS_REST_URL
 *   https://<db>.upstash.io, DATABASE_URL a *.supabase.com or *.supabase.co
 *   host; and when DATABASE_URL's user is `runner.<ref>` (the pooler's
 *   form), its ref must be SUPABASE_URL's.
 *
 * Outside the image (the local stack, the tests) nothing changes.
 */
import { existsSync } from "node:fs";
import { ConfigurationError } from "./job-errors.ts";

/** Written by both runner Dockerfiles; infra:check makes sure they do. */
export const PRODUCTION_MARKER = "/etc/registre-extraction/production-image";

/** Endpoint overrides a production runner ignores (the local stack's stand-ins use them). */
export const IGNORED_IN_PRODUCTION = ["REGISTRY_BASE_URL", "GEMINI_BASE_URL", "STORAGE_LOCAL_DIR"] as const;

const SUPABASE_URL = /^https:\/\/([a-z0-9]{20})\.supabase\.co\/?$/;
const UPSTASH_URL = /^https:\/\/[a-z0-9-]+\.upstash\.io\/?$/;
const DATABASE_HOST = /(^|\.)supabase\.(com|co)$/;

function refused(variable: string, expected: string): ConfigurationError {
  // The value is left out: these variables carry secrets or point at them.
  return new ConfigurationError(`${variable} must be ${expected} in the production image (endpoint overrides are ignored or refused; see runners/lifecycle/production-endpoints.ts)`);
}

/**
 * In the production image, drops the endpoint overrides from `env` (in
 * place: every later reader sees the same values) and refuses hosts other
 * than the real services'. Returns the names it dropped, for a log line.
 */
export function enforceProductionEndpoints(env: Record<string, string | undefined>, production = existsSync(PRODUCTION_MARKER)): string[] {
  if (!production) return [];
  const dropped = IGNORED_IN_PRODUCTION.filter((name) => env[name] !== undefined);
  for (const name of dropped) delete env[name];
  const supabaseUrl = env["SUPABASE_URL"]?.trim();
  const supabaseRef = supabaseUrl === undefined ? undefined : SUPABASE_URL.exec(supabaseUrl)?.[1];
  if (supabaseUrl !== undefined && supabaseRef === undefined) throw refused("SUPABASE_URL", "https://<project ref>.supabase.co");
  const upstashUrl = env["UPSTASH_REDIS_REST_URL"]?.trim();
  if (upstashUrl !== undefined && !UPSTASH_URL.test(upstashUrl)) throw refused("UPSTASH_REDIS_REST_URL", "https://<database>.upstash.io");
  const databaseUrl = env["DATABASE_URL"]?.trim();
  if (databaseUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(databaseUrl);
    } catch {
      throw refused("DATABASE_URL", "a postgresql:// URL");
    }
    if (!DATABASE_HOST.test(url.hostname)) throw refused("DATABASE_URL", "a Supabase pooler host (*.pooler.supabase.com)");
    const userRef = /^[^.]+\.([a-z0-9]{20})$/.exec(decodeURIComponent(url.username))?.[1];
    if (userRef !== undefined && supabaseRef !== undefined && userRef !== supabaseRef) throw refused("DATABASE_URL", "the pooler URL of the project SUPABASE_URL names (user runner.<same ref>)");
  }
  return dropped;
}
