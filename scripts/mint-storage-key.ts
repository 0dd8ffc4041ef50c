// `npm run mint-storage-key`: prints SUPABASE_STORAGE_KEY, the runners'
// LEGACY Storage credential, signed with the project's legacy JWT secret.
// Superseded by `npm run storage-users` (one Auth user per runner family,
// works with the new API keys); kept only while a stage migrates
// (docs/deploy.md, "Storage credential"): the runner still reads the key
// when SUPABASE_STORAGE_KEY is set and the user variables are not.
import { parseArgs } from "node:util";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";
import { mintStorageKey, STORAGE_RUNNER_ROLE } from "./storage-key.ts";

const HELP = `Usage: SUPABASE_JWT_SECRET=… npm run mint-storage-key -- [--days N] [--json]

LEGACY: use \`npm run storage-users -- ensure\` instead. Supabase retires the
legacy JWT secret this signs with by the end of 2026, and a self-minted JWT
sent as apikey is refused on projects with the new API keys.

Prints a JWT for the runners' SUPABASE_STORAGE_KEY: role claim
"${STORAGE_RUNNER_ROLE}", signed HS256 with the project's JWT secret (Supabase
dashboard: Project Settings → JWT Keys → legacy JWT secret). The role can read
and write objects of the buckets index, actes and plans-cadastraux and nothing
else (migration 20261129120000_create_storage_runner_role.sql). Never give a
runner the service-role key.

The secret is read from SUPABASE_JWT_SECRET, not from the command line, so it
stays out of shell history.
  --days N   lifetime (default 365); mint a new key and redeploy before then
  --json     one JSON object: { "token", "role", "expiresAt" }
Exit status: 0, or 2 when the secret is missing or an option is invalid.
`;

function main(): number {
  let values;
  try {
    values = parseArgs({ options: { days: { type: "string" }, json: { type: "boolean", default: false }, help: { type: "boolean", default: false } } }).values;
  } catch (error) {
    process.stderr.write(`${errorMessage(error)}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const jwtSecret = process.env["SUPABASE_JWT_SECRET"]?.trim();
  if (!jwtSecret) {
    process.stderr.write(`SUPABASE_JWT_SECRET is missing\n\n${HELP}`);
    return 2;
  }
  const days = values.days === undefined ? undefined : Number(values.days);
  try {
    const { token, expiresAt } = mintStorageKey({ jwtSecret, ...(days === undefined ? {} : { days }) });
    if (values.json) process.stdout.write(`${JSON.stringify({ token, role: STORAGE_RUNNER_ROLE, expiresAt: expiresAt.toISOString() })}\n`);
    else process.stdout.write(`${token}\n# role ${STORAGE_RUNNER_ROLE}, expires ${expiresAt.toISOString()}; store it as the runners' SUPABASE_STORAGE_KEY\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`${errorMessage(error)}\n`);
    return 2;
  }
}

process.exitCode = main();
