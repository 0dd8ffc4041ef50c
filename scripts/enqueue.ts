// `npm run enqueue`: adds one request to extraction_queue and prints its id.
// Validation is the database's own (the input-validation trigger), so this
// command and a Studio INSERT refuse exactly the same rows, with the same
// message naming the field.
import { parseArgs } from "node:util";
import postgres from "postgres";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";
import { databaseFor, resolveStackTargets, unreachableHint, type StackTargets } from "./stack-targets.ts";

const HELP = `Usage: npm run enqueue -- <index|acte|plan> --circonscription C
         [--cadastre C] [--designation D] [--lot N | --number N] [--type T]
         [--priority P] [--env dev|staging|prod] [--json]

Adds one request to extraction_queue and prints its id.
  index, plan   --lot N (the lot number), --cadastre C (e.g. "Cadastre du Québec"),
                optional --designation D (designation secondaire)
  acte          --number N (the inscription number), --type T
                (Acte, Avis d'adresse, Radiation or Acte divers)
  --priority P  a whole number, default 0: within its kind, higher is claimed
                first; equal priorities go oldest first
  --env E       which environment's database (default: the first configured)
  --json        print {"id", "environment", "document_source"} as one JSON line

Target: DATABASE_URL (or DATABASE_URL_DEV/_STAGING/_PROD) when set, else the
local stack of \`npm start\`. The database validates the row: a refusal prints
its message, which names the field, and exits 1. Exit 2: bad usage;
3: database unreachable.
`;

const SOURCES: Record<string, string> = { index: "index", acte: "acte", plan: "plan_cadastraux" };

interface Request {
  document_source: string;
  document_number: string | null;
  circonscription_fonciere: string | null;
  cadastre: string | null;
  designation_secondaire: string | null;
  acte_type: string | null;
  priority: string | null;
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        circonscription: { type: "string" },
        cadastre: { type: "string" },
        designation: { type: "string" },
        lot: { type: "string" },
        number: { type: "string" },
        type: { type: "string" },
        priority: { type: "string" },
        env: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    });
  } catch (error) {
    process.stderr.write(`${errorMessage(error)}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const [kind, ...extra] = positionals;
  if (kind === undefined || extra.length > 0) {
    process.stderr.write(`give exactly one kind (index, acte or plan)${extra.length > 0 ? `; unexpected: ${extra.join(" ")}` : ""}\n\n${HELP}`);
    return 2;
  }
  if (values.lot !== undefined && values.number !== undefined) {
    process.stderr.write("give --lot (index, plan) or --number (acte), not both\n");
    return 2;
  }

  const request: Request = {
    // An unknown kind goes to the database as it is: its refusal lists the valid sources.
    document_source: SOURCES[kind] ?? kind,
    document_number: values.lot ?? values.number ?? null,
    circonscription_fonciere: values.circonscription ?? null,
    cadastre: values.cadastre ?? null,
    designation_secondaire: values.designation ?? null,
    acte_type: values.type ?? null,
    priority: values.priority ?? null,
  };

  let targets: StackTargets;
  let database;
  try {
    targets = resolveStackTargets(process.env);
    database = databaseFor(targets, values.env);
  } catch (error) {
    process.stderr.write(`${errorMessage(error)}\n`);
    return 2;
  }

  const sql = postgres(database.url, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    const [row] = await sql<{ id: string }[]>`
      insert into public.extraction_queue
        (document_source, document_number, circonscription_fonciere, cadastre, designation_secondaire, acte_type, priority)
      values (${request.document_source}, ${request.document_number}, ${request.circonscription_fonciere}, ${request.cadastre},
              ${request.designation_secondaire}, ${request.acte_type}, coalesce(${request.priority}::integer, 0))
      returning id`;
    if (row === undefined) throw new Error("the insert returned no row");
    if (values.json) process.stdout.write(`${JSON.stringify({ id: row.id, environment: database.environment, document_source: request.document_source })}\n`);
    else process.stdout.write(`${row.id}\n`);
    return 0;
  } catch (error) {
    if (error instanceof postgres.PostgresError) {
      // The database's own words; `column` names the field when the validation trigger set it.
      const field = error.column_name ?? (error.message.includes("integer") && request.priority !== null ? "priority" : undefined);
      process.stderr.write(`refused by the ${database.environment} database: ${error.message}${field && !error.message.includes(field) ? ` (field: ${field})` : ""}\n`);
      if (values.json) process.stdout.write(`${JSON.stringify({ refused: error.message, field: field ?? null, code: error.code })}\n`);
      return 1;
    }
    process.stderr.write(`cannot reach the ${database.environment} database: ${errorMessage(error)}; ${unreachableHint(targets)}\n`);
    return 3;
  } finally {
    await sql.end({ timeout: 2 });
  }
}

process.exitCode = await main();
