import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { z } from "zod";

const localSecrets = z.object({
  dispatchSecret: z.string().min(32),
  upstashToken: z.string().min(32),
  runnerPassword: z.string().min(16),
});
export type LocalSecrets = z.infer<typeof localSecrets>;

/**
 * Secrets of the local stack: generated on first start and kept in the
 * git-ignored state folder, so nothing secret is ever committed and restarts
 * keep working with the same values.
 */
export async function loadLocalSecrets(file: string): Promise<LocalSecrets> {
  if (existsSync(file)) {
    const parsed = localSecrets.safeParse(JSON.parse(await readFile(file, "utf8")));
    if (parsed.success) return parsed.data;
  }
  const secrets: LocalSecrets = {
    dispatchSecret: randomBytes(32).toString("base64url"),
    upstashToken: randomBytes(32).toString("base64url"),
    runnerPassword: randomBytes(24).toString("base64url"),
  };
  await writeFile(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}
