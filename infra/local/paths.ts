import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** The repository root (this file lives in infra/local/). */
export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export const MIGRATIONS_DIR = join(PROJECT_ROOT, "supabase", "migrations");
export const FUNCTIONS_DIR = join(PROJECT_ROOT, "supabase", "functions");

/**
 * Where the local stack keeps its state (Postgres data, storage, lock file).
 * Git-ignored. Overridable because, as root, the postgres system user must be
 * able to reach it.
 * @default "<repo>/.local"
 */
export const LOCAL_STACK_DIR = process.env["LOCAL_STACK_DIR"] || join(PROJECT_ROOT, ".local");
