/**
 * Where fetched PDFs live. The registre runner uploads, the OCR runner
 * downloads; both name an object by the row's `supabase_path`
 * (`bucket/filename`). Two implementations: Supabase Storage in production,
 * a local directory on the embedded stack. Both report the same two
 * failures, so the runners' one classification (job-errors.ts) applies:
 * storage unreachable is `InfrastructureError` (no attempt spent), a missing
 * object is `StorageObjectNotFoundError`.
 */
import { z } from "zod";
import { setValues } from "../../supabase/functions/_shared/env-values.ts";

export interface DocumentStorage {
  /** Stores `bytes` at `path` ("bucket/filename"), replacing what was there. */
  upload(path: string, bytes: Uint8Array, contentType: string): Promise<void>;
  /** The bytes at `path` ("bucket/filename"). */
  download(path: string): Promise<Uint8Array>;
}

/** The object does not exist: the row points at a file nobody stored (or someone deleted). */
export class StorageObjectNotFoundError extends Error {
  override readonly name = "StorageObjectNotFoundError";
  constructor(readonly path: string) {
    super(`storage object ${path} does not exist`);
  }
}

/** The three private buckets of the domain brief, one per document source. */
export const DOCUMENT_BUCKETS = ["index", "actes", "plans-cadastraux"] as const;
export type DocumentBucket = (typeof DOCUMENT_BUCKETS)[number];

export type StorageConfig =
  | { readonly kind: "local-directory"; readonly root: string }
  | { readonly kind: "supabase"; readonly url: string; readonly key: string }
  /** The runner family's Auth user (storage-session.ts): works with the new API keys; least privilege per family. */
  | { readonly kind: "supabase-user"; readonly url: string; readonly publishableKey: string; readonly email: string; readonly password: string };

export class StorageConfigError extends Error {
  override readonly name = "StorageConfigError";
}

const storageEnvSchema = z.object({
  /** The embedded stack: objects are files at `<root>/<supabase_path>`. Wins over the Supabase variables. */
  STORAGE_LOCAL_DIR: z.string().startsWith("/", { error: "must be an absolute path" }).optional(),
  /** `https://<ref>.supabase.co`. */
  SUPABASE_URL: z.url({ error: "must be an https:// URL" }).optional(),
  /**
   * The runners' narrow Storage credential: a JWT whose role may only read
   * and write the three document buckets (see docs/deploy.md). Never the
   * service-role key.
   */
  SUPABASE_STORAGE_KEY: z.string().min(20, { error: "must be a JWT" }).optional(),
  /** The project's publishable key (sb_publishable_…), sent as apikey with the runner user's session. */
  SUPABASE_PUBLISHABLE_KEY: z.string().min(20, { error: "must be the project's publishable key (sb_publishable_…)" }).optional(),
  /** The runner family's Auth user (npm run storage-users). Wins over SUPABASE_STORAGE_KEY. */
  SUPABASE_RUNNER_EMAIL: z.email({ error: "must be the runner user's email" }).optional(),
  SUPABASE_RUNNER_PASSWORD: z.string().min(16, { error: "must be the runner user's password (16+ characters)" }).optional(),
});

/** Reads which storage to use; fails naming the variable, never printing a value. */
export function parseStorageConfig(env: Readonly<Record<string, string | undefined>>): StorageConfig {
  const parsed = storageEnvSchema.safeParse(setValues(env));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${String(issue.path[0])} ${issue.message}`);
    throw new StorageConfigError(`Invalid storage configuration: ${problems.join("; ")}`);
  }
  const { STORAGE_LOCAL_DIR, SUPABASE_URL, SUPABASE_STORAGE_KEY, SUPABASE_PUBLISHABLE_KEY, SUPABASE_RUNNER_EMAIL, SUPABASE_RUNNER_PASSWORD } = parsed.data;
  if (STORAGE_LOCAL_DIR !== undefined) return { kind: "local-directory", root: STORAGE_LOCAL_DIR };
  const user = [SUPABASE_PUBLISHABLE_KEY, SUPABASE_RUNNER_EMAIL, SUPABASE_RUNNER_PASSWORD];
  if (user.some((value) => value !== undefined)) {
    if (SUPABASE_URL !== undefined && SUPABASE_PUBLISHABLE_KEY !== undefined && SUPABASE_RUNNER_EMAIL !== undefined && SUPABASE_RUNNER_PASSWORD !== undefined) {
      return { kind: "supabase-user", url: SUPABASE_URL, publishableKey: SUPABASE_PUBLISHABLE_KEY, email: SUPABASE_RUNNER_EMAIL, password: SUPABASE_RUNNER_PASSWORD };
    }
    const names = ["SUPABASE_URL", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_RUNNER_EMAIL", "SUPABASE_RUNNER_PASSWORD"] as const;
    const absent = names.filter((name) => parsed.data[name] === undefined);
    throw new StorageConfigError(`Invalid storage configuration: ${absent.join(" and ")} missing (the runner user's session needs all four)`);
  }
  if (SUPABASE_URL !== undefined && SUPABASE_STORAGE_KEY !== undefined) return { kind: "supabase", url: SUPABASE_URL, key: SUPABASE_STORAGE_KEY };
  const missing = [SUPABASE_URL === undefined ? "SUPABASE_URL" : undefined, SUPABASE_STORAGE_KEY === undefined ? "SUPABASE_STORAGE_KEY" : undefined].filter(
    (name): name is string => name !== undefined,
  );
  throw new StorageConfigError(`Invalid storage configuration: ${missing.join(" and ")} missing (or set STORAGE_LOCAL_DIR for a local directory)`);
}

/**
 * Splits "bucket/filename" and checks it names an object of one of our
 * buckets, so a malformed `supabase_path` fails here with its value instead
 * of as a confusing 400 (or, locally, a path outside the storage root).
 */
export function splitObjectPath(path: string): { bucket: DocumentBucket; name: string } {
  const slash = path.indexOf("/");
  const bucket = path.slice(0, slash);
  const name = path.slice(slash + 1);
  if (slash <= 0 || !(DOCUMENT_BUCKETS as readonly string[]).includes(bucket)) {
    throw new Error(`storage path ${JSON.stringify(path)} must start with one of ${DOCUMENT_BUCKETS.join(", ")} and a slash`);
  }
  if (name === "" || name.split("/").some((part) => part === "" || part === "." || part === "..")) {
    throw new Error(`storage path ${JSON.stringify(path)} has an empty, "." or ".." segment`);
  }
  return { bucket: bucket as DocumentBucket, name };
}
