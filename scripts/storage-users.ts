/**
 * npm run storage-users -- ensure [--rotate]: the runner families' Supabase
 * Auth users, the Storage credential that replaces the legacy
 * `mint-storage-key` JWT (issue 20 item 2). One user per family, its
 * app_metadata.runner_family set through the Auth admin API (only the
 * secret key can), which the Storage policies of migration 20261205040000
 * read: registre inserts, OCR reads.
 *
 * `ensure` creates a missing user with a new random password and prints it
 * once, as the shell variables deploy:secrets --runners reads; an existing
 * user keeps its password unless --rotate (then the new password is printed;
 * put it in SSM, `aws ssm put-parameter --overwrite` or deploy:secrets
 * --runners then `sst deploy`: new tasks sign in with it, no image change).
 *
 * The secret key (sb_secret_…) goes in `apikey` only; a legacy service-role
 * JWT also as bearer (https://supabase.com/docs/guides/api/api-keys: the new
 * keys are not JWTs and cannot be sent as `Authorization: Bearer`).
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { readCommandLine } from "./command-line.ts";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";
import { setValues } from "../supabase/functions/_shared/env-values.ts";
import { RUNNER_FAMILIES, type RunnerFamily } from "../supabase/functions/_shared/ecs-client.ts";

const HELP = `Usage: npm run storage-users -- ensure [--rotate] [--email-domain D] [--json]

Creates (or with --rotate, gives a new password to) the Supabase Auth user
of each runner family, and prints the variables deploy:secrets --runners
reads: RUNNER_STORAGE_EMAIL_REGISTRE, RUNNER_STORAGE_PASSWORD_REGISTRE,
RUNNER_STORAGE_EMAIL_OCR, RUNNER_STORAGE_PASSWORD_OCR (a password only when
it was just set). Passwords never go anywhere else.

Needs SUPABASE_URL (https://<ref>.supabase.co) and SUPABASE_SECRET_KEY (the
project's secret key, or a legacy service-role key).

  --email-domain  the users' email domain (default runners.invalid)
  --json          one JSON object instead of shell lines

Exit status: 0, 1 when Auth refuses, 2 on bad arguments.
`;

const argsSchema = z.object({ rotate: z.boolean(), "email-domain": z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/, { error: "must be a domain such as runners.invalid" }), json: z.boolean(), help: z.boolean() });
const userSchema = z.object({ id: z.string(), email: z.string().optional() });
const listSchema = z.object({ users: z.array(userSchema) });

export interface EnsuredUser {
  readonly family: RunnerFamily;
  readonly email: string;
  readonly id: string;
  readonly action: "created" | "rotated" | "kept";
  /** Set only when this run set it. */
  readonly password: string | undefined;
}

/** Creates or updates each family's user through GoTrue's admin API. */
export async function ensureStorageUsers(options: { url: string; secretKey: string; rotate: boolean; emailDomain: string; fetch?: typeof fetch }): Promise<EnsuredUser[]> {
  const base = `${options.url.replace(/\/+$/, "")}/auth/v1/admin/users`;
  const headers: Record<string, string> = { apikey: options.secretKey, "content-type": "application/json" };
  if (options.secretKey.startsWith("eyJ")) headers["authorization"] = `Bearer ${options.secretKey}`;
  const call = async (url: string, method: string, body?: unknown): Promise<unknown> => {
    const response = await (options.fetch ?? fetch)(url, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await response.text();
    if (!response.ok) throw new Error(`Supabase Auth admin ${method} answered ${response.status}: ${text.slice(0, 200)}`);
    return text === "" ? {} : JSON.parse(text);
  };
  const existing = listSchema.parse(await call(`${base}?page=1&per_page=1000`, "GET")).users;
  const results: EnsuredUser[] = [];
  for (const family of RUNNER_FAMILIES) {
    const email = `${family}-runner@${options.emailDomain}`;
    const found = existing.find((user) => user.email === email);
    const password = randomBytes(32).toString("base64url");
    const attributes = { app_metadata: { runner_family: family } };
    if (found === undefined) {
      const created = userSchema.parse(await call(base, "POST", { email, password, email_confirm: true, ...attributes }));
      results.push({ family, email, id: created.id, action: "created", password });
    } else if (options.rotate) {
      await call(`${base}/${found.id}`, "PUT", { password, ...attributes });
      results.push({ family, email, id: found.id, action: "rotated", password });
    } else {
      // The claim is (re)set every time: the policies depend on it.
      await call(`${base}/${found.id}`, "PUT", attributes);
      results.push({ family, email, id: found.id, action: "kept", password: undefined });
    }
  }
  return results;
}

async function main(): Promise<number> {
  const [command, ...flags] = process.argv.slice(2);
  if (command !== "ensure") {
    process.stderr.write(command === "--help" ? "" : "the command must be ensure\n\n");
    (command === "--help" ? process.stdout : process.stderr).write(HELP);
    return command === "--help" ? 0 : 2;
  }
  const parsed = readCommandLine(
    { rotate: { type: "boolean", default: false }, "email-domain": { type: "string", default: "runners.invalid" }, json: { type: "boolean", default: false }, help: { type: "boolean", default: false } },
    argsSchema,
    HELP,
    flags,
  );
  if ("exitCode" in parsed) return parsed.exitCode;
  const env = setValues(process.env);
  const url = env["SUPABASE_URL"];
  const secretKey = env["SUPABASE_SECRET_KEY"];
  if (url === undefined || secretKey === undefined) throw new Error("SUPABASE_URL and SUPABASE_SECRET_KEY must be set");
  const users = await ensureStorageUsers({ url, secretKey, rotate: parsed.args.rotate, emailDomain: parsed.args["email-domain"] });
  if (parsed.args.json) {
    process.stdout.write(`${JSON.stringify({ users })}\n`);
    return 0;
  }
  for (const user of users) {
    const suffix = user.family.toUpperCase();
    process.stdout.write(`# ${user.family}: ${user.action} ${user.email}\nexport RUNNER_STORAGE_EMAIL_${suffix}='${user.email}'\n`);
    if (user.password !== undefined) process.stdout.write(`export RUNNER_STORAGE_PASSWORD_${suffix}='${user.password}'\n`);
  }
  return 0;
}

if (process.argv[1]?.endsWith("storage-users.ts")) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`storage-users failed: ${errorMessage(error)}\n`);
      process.exit(1);
    },
  );
}
