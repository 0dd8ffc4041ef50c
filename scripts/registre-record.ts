/**
 * `npm run registre:record`: drives the registry with a real account once,
 * before going live, and saves a scrubbed trace and HAR of each path for
 * `npm run registre:replay` (scripts/registre-recordings.ts). Each document
 * path buys a document (about 1,50 $).
 */
import { chromium } from "playwright";
import { z } from "zod";
import { formatLotNumber, type DocumentRequest } from "../runners/registre/document-flows.ts";
import { CHROMIUM_ARGS } from "../runners/registre/registry-session.ts";
import { readCommandLine } from "./command-line.ts";
import { recordPath, type RecordingPath } from "./registre-recordings.ts";

const HELP = `Usage: npm run registre:record -- --account CODE [paths] [--out DIR]

Records each path through the registry with the account CODE (password from
REGISTRE_RECORD_PASSWORD, never a flag): login, refused-login (the password
plus "-wrong": one failed login on the account) and, for each path given,
the document, into DIR/<path>/ (trace.zip, recording.har, manifest.json),
credentials and cookies replaced by SCRUBBED. Every document path buys it.

  --index "LOT;CIRCONSCRIPTION;CADASTRE"
  --acte "NUMBER;CIRCONSCRIPTION;TYPE"         also records expired-session
  --acte-similar "NUMBER;CIRCONSCRIPTION;TYPE" an acte the site answers with its similar-numbers list
  --plan "LOT;CIRCONSCRIPTION;CADASTRE"
  --large "index|acte|plan:SPEC"              a document the site asks to confirm
  --out DIR            (recordings/<date>)
  --base-url URL       (https://www.registrefoncier.gouv.qc.ca)
  --timeout SECONDS    each page (30)
`;

const spec = z.string().regex(/^[^;]+;[^;]+;[^;]+(;[^;]+)?$/, { error: 'must be "NUMBER;CIRCONSCRIPTION;CADASTRE-OR-TYPE"' });
const schema = z.object({
  account: z.string().min(1, { error: "is required" }),
  index: spec.optional(),
  acte: spec.optional(),
  "acte-similar": spec.optional(),
  plan: spec.optional(),
  large: z.string().regex(/^(index|acte|plan):/, { error: 'must start with "index:", "acte:" or "plan:"' }).optional(),
  out: z.string().default(`recordings/${new Date().toISOString().slice(0, 10)}`),
  "base-url": z.url().default("https://www.registrefoncier.gouv.qc.ca"),
  timeout: z.string().regex(/^\d+$/).transform(Number).default(30),
  help: z.boolean().optional(),
});

function request(source: "index" | "acte" | "plan", text: string): DocumentRequest {
  const [number = "", circonscription = "", third = "", designation] = text.split(";").map((part) => part.trim());
  const normalized = number.replace(/\s+/g, "");
  return {
    documentSource: source === "plan" ? "plan_cadastraux" : source,
    documentNumber: formatLotNumber(normalized),
    documentNumberNormalized: normalized,
    circonscriptionFonciere: circonscription,
    cadastre: source === "acte" ? null : third,
    designationSecondaire: source === "acte" ? null : (designation ?? null),
    acteType: source === "acte" ? third : null,
  };
}

async function main(): Promise<number> {
  const read = readCommandLine(
    {
      account: { type: "string" },
      index: { type: "string" },
      acte: { type: "string" },
      "acte-similar": { type: "string" },
      plan: { type: "string" },
      large: { type: "string" },
      out: { type: "string" },
      "base-url": { type: "string" },
      timeout: { type: "string" },
      help: { type: "boolean" },
    },
    schema,
    HELP,
  );
  if ("exitCode" in read) return read.exitCode;
  const args = read.args;
  const password = process.env["REGISTRE_RECORD_PASSWORD"];
  if (password === undefined || password === "") {
    process.stderr.write("REGISTRE_RECORD_PASSWORD must hold the account's password\n");
    return 2;
  }
  const paths: RecordingPath[] = [{ name: "login" }, { name: "refused-login" }];
  if (args.index !== undefined) paths.push({ name: "index", request: request("index", args.index) });
  // The acte search page is not visited by the login's proof (the index page is): a replay matches its one answer.
  if (args.acte !== undefined) paths.push({ name: "acte", request: request("acte", args.acte) }, { name: "expired-session", request: request("acte", args.acte) });
  if (args["acte-similar"] !== undefined) paths.push({ name: "acte-similar", request: request("acte", args["acte-similar"]) });
  if (args.plan !== undefined) paths.push({ name: "plan", request: request("plan", args.plan) });
  if (args.large !== undefined) {
    const [source = "", rest = ""] = args.large.split(/:(.*)/s);
    paths.push({ name: "large", request: request(source === "plan" ? "plan" : source === "acte" ? "acte" : "index", rest) });
  }
  const browser = await chromium.launch({ executablePath: process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium", args: [...CHROMIUM_ARGS] });
  try {
    for (const path of paths) {
      const outcome = await recordPath(browser, args.out, path, { baseUrl: args["base-url"].replace(/\/+$/, ""), credentials: { username: args.account, password }, timeoutMs: args.timeout * 1000 });
      process.stdout.write(`${path.name.padEnd(16)} ${"pdfSha256" in outcome ? `PDF ${outcome.pdfSha256.slice(0, 12)}…` : `${outcome.kind}: ${outcome.message}`}\n`);
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(`recordings in ${args.out}; check them with: npm run registre:replay -- ${args.out}\n`);
  return 0;
}

process.exit(await main());
