// `npm run setup`: installs the Debian packages the local stack needs (as
// root), or prints the exact apt-get command to run. `npm start` and
// `npm test` run the same check themselves; this is for doing it up front.
import { parseArgs } from "node:util";
import { ensureSystemPackages, SYSTEM_PACKAGES, missingSystemPackages } from "./system-packages.ts";
import { errorMessage } from "../../supabase/functions/_shared/error-message.ts";

const { values } = parseArgs({ options: { help: { type: "boolean", default: false }, check: { type: "boolean", default: false } } });
if (values.help) {
  process.stdout.write(`Usage: npm run setup [-- --check]

Installs what the local stack runs on: ${SYSTEM_PACKAGES.map((pkg) => pkg.name).join(", ")}.
  --check   only report what is missing; exit 1 if anything is
`);
  process.exit(0);
}
const missing = missingSystemPackages();
if (missing.length === 0) {
  process.stdout.write("every Debian package the local stack needs is installed\n");
  process.exit(0);
}
if (values.check) {
  process.stdout.write(`missing: ${missing.join(", ")}\n`);
  process.exit(1);
}
try {
  await ensureSystemPackages((line) => process.stdout.write(`${line}\n`));
  process.stdout.write("installed\n");
} catch (error) {
  process.stderr.write(`${errorMessage(error)}\n`);
  process.exit(1);
}
