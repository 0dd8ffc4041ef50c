/**
 * Whether a request carries one of the project's API keys, for functions
 * that run with `verify_jwt = false`. The platform's verify_jwt check only
 * validates JWTs: it is "incompatible with the new JWT Signing Keys", and
 * the new API keys are not JWTs, so they go in the `apikey` header
 * (https://supabase.com/docs/guides/functions/auth,
 * https://supabase.com/docs/guides/functions/auth-headers). Functions get
 * the keys by default as SUPABASE_PUBLISHABLE_KEYS / SUPABASE_SECRET_KEYS
 * (JSON dictionaries) and the legacy SUPABASE_ANON_KEY
 * (https://supabase.com/docs/guides/functions/secrets); a single
 * SUPABASE_PUBLISHABLE_KEY is accepted too, as on self-hosted setups.
 *
 * With no key configured at all (the local stack), every caller passes:
 * there is nothing to compare with, and the local stack is not exposed.
 * Runs in Deno and Node: web APIs only.
 */
import { secretsMatch } from "./constant-time.ts";

/** Every key value the environment names, from the JSON dictionaries and the single-key variables. */
export function projectApiKeys(env: Readonly<Record<string, string | undefined>>): string[] {
  const keys: string[] = [];
  for (const name of ["SUPABASE_PUBLISHABLE_KEYS", "SUPABASE_SECRET_KEYS"]) {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === "") continue;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed === "object" && parsed !== null) {
        for (const value of Object.values(parsed)) if (typeof value === "string" && value !== "") keys.push(value);
      }
    } catch {
      // Not JSON: a single key.
      keys.push(raw);
    }
  }
  for (const name of ["SUPABASE_PUBLISHABLE_KEY", "SUPABASE_ANON_KEY"]) {
    const value = env[name]?.trim();
    if (value !== undefined && value !== "") keys.push(value);
  }
  return keys;
}

/** True when the request's `apikey` (or, for the legacy anon JWT, its bearer) is one of the project's keys, or when none is configured. */
export async function hasProjectApiKey(request: Request, keys: readonly string[]): Promise<boolean> {
  if (keys.length === 0) return true;
  const candidates = [request.headers.get("apikey"), request.headers.get("authorization")?.replace(/^Bearer\s+/i, "")].filter(
    (value): value is string => value !== null && value !== undefined && value !== "",
  );
  for (const candidate of candidates) {
    for (const key of keys) if (await secretsMatch(candidate, key)) return true;
  }
  return false;
}
