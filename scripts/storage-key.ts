import { createHmac } from "node:crypto";

/**
 * The runners' Storage credential, SUPABASE_STORAGE_KEY: a JWT whose `role`
 * claim is `storage_runner` (see the migration that creates that role),
 * signed HS256 with the project's JWT secret, as Supabase signs its own anon
 * and service-role keys. Storage switches to that role, whose only policies
 * cover the buckets index, actes and plans-cadastraux; it can read nothing
 * else, so a leaked runner environment exposes no registry password and no
 * way around the job functions.
 */
export const STORAGE_RUNNER_ROLE = "storage_runner";

export interface StorageKeyOptions {
  /** The project's JWT secret (Supabase dashboard: Project Settings → JWT Keys, legacy JWT secret). */
  jwtSecret: string;
  /** Lifetime in days. @default 365 */
  days?: number;
  /** @default Date.now() */
  now?: number;
}

export function mintStorageKey(options: StorageKeyOptions): { token: string; expiresAt: Date } {
  if (options.jwtSecret.length < 32) throw new RangeError("the JWT secret must be at least 32 characters (Supabase's is 40 or more)");
  const days = options.days ?? 365;
  if (!(days > 0)) throw new RangeError("days must be greater than 0");
  const issuedAt = Math.floor((options.now ?? Date.now()) / 1000);
  const expiresAt = issuedAt + Math.round(days * 86_400);
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode({ iss: "supabase", role: STORAGE_RUNNER_ROLE, iat: issuedAt, exp: expiresAt })}`;
  const signature = createHmac("sha256", options.jwtSecret).update(unsigned).digest("base64url");
  return { token: `${unsigned}.${signature}`, expiresAt: new Date(expiresAt * 1000) };
}
