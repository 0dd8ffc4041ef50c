/**
 * The first-run demo of `npm start`: on an empty queue, one request of each
 * kind the local registry replica can serve (an index, an acte, a plan) and
 * one for a document it does not have, then live progress until every demo
 * row is terminal. Shows a new user the whole pipeline, the failure path
 * included, without typing an INSERT.
 */
import type postgres from "postgres";
import { JOB_STATUS, TERMINAL_STATUS_IDS } from "../../supabase/functions/_shared/job-kinds.ts";
import { findCatalogueDocument, REGISTRY_CATALOGUE, type CatalogueDocumentSource, type CatalogueRowFields } from "./registry-replica/catalogue.ts";
import type { StackLog } from "./stack.ts";

/** The demo request for a document the replica does not have: the registry answers "Le document demandé est inexistant". */
const MISSING_ACTE: CatalogueRowFields = {
  document_source: "acte",
  document_number: "99 999 999",
  circonscription_fonciere: "Montréal",
  cadastre: null,
  designation_secondaire: null,
  acte_type: "Acte",
};

/** One index, one acte, one plan from the replica's catalogue, and the missing acte. */
export function demoRequests(): CatalogueRowFields[] {
  const first = (source: CatalogueDocumentSource) => {
    const document = REGISTRY_CATALOGUE.find((candidate) => candidate.row.document_source === source);
    if (document === undefined) throw new Error(`the registry replica's catalogue has no ${source} document for the demo`);
    return document.row;
  };
  const missing = findCatalogueDocument({ source: "acte", number: MISSING_ACTE.document_number, circonscription: MISSING_ACTE.circonscription_fonciere });
  if (missing !== undefined) throw new Error(`the demo's missing acte ${MISSING_ACTE.document_number} is in the catalogue (${missing.id}); pick another number`);
  return [first("index"), first("acte"), first("plan_cadastraux"), MISSING_ACTE];
}

export type DemoDecision = { readonly run: true } | { readonly run: false; readonly reason: string };

/** `LOCAL_DEMO=off` (or false, 0, no) and `--no-demo` skip the demo; so does a queue that already has rows. */
export async function demoDecision(sql: postgres.Sql, env: Readonly<Record<string, string | undefined>>, noDemoFlag: boolean): Promise<DemoDecision> {
  const setting = env["LOCAL_DEMO"]?.trim().toLowerCase();
  if (noDemoFlag) return { run: false, reason: "--no-demo" };
  if (setting !== undefined && ["off", "false", "0", "no"].includes(setting)) return { run: false, reason: `LOCAL_DEMO=${env["LOCAL_DEMO"] ?? ""}` };
  const [row] = await sql<{ rows: number }[]>`select count(*)::int as rows from public.extraction_queue`;
  if ((row?.rows ?? 0) > 0) return { run: false, reason: `the queue already has ${row?.rows} row(s)` };
  return { run: true };
}

export interface DemoRow {
  readonly id: string;
  readonly label: string;
}

export async function enqueueDemo(sql: postgres.Sql): Promise<DemoRow[]> {
  const rows: DemoRow[] = [];
  for (const request of demoRequests()) {
    const [row] = await sql<{ id: string }[]>`
      insert into public.extraction_queue
        (document_source, document_number, circonscription_fonciere, cadastre, designation_secondaire, acte_type)
      values (${request.document_source}, ${request.document_number}, ${request.circonscription_fonciere},
              ${request.cadastre}, ${request.designation_secondaire}, ${request.acte_type})
      returning id`;
    if (row === undefined) throw new Error("the demo insert returned no row");
    rows.push({ id: row.id, label: `${request.document_source} ${request.document_number} (${request.circonscription_fonciere})` });
  }
  return rows;
}

const STATUS_NAMES = new Map<number, string>(Object.values(JOB_STATUS).map((status) => [status.id, status.name]));

/**
 * Logs each demo row's status changes until every one is terminal (or
 * `signal` aborts), a reminder line every `reminderMs` while nothing moves.
 * Resolves with the final status of each row.
 */
export async function followDemo(
  sql: postgres.Sql,
  rows: readonly DemoRow[],
  log: StackLog,
  options: { signal?: AbortSignal; pollMs?: number; reminderMs?: number } = {},
): Promise<Map<string, { status_id: number; error: string | null }>> {
  const { signal, pollMs = 500, reminderMs = 15_000 } = options;
  const seen = new Map<string, { status_id: number; error: string | null }>();
  const ids = rows.map((row) => row.id);
  const startedAt = Date.now();
  let lastChange = Date.now();
  while (!signal?.aborted) {
    const current = await sql<{ id: string; status_id: number; error: string | null }[]>`
      select id, status_id, coalesce(ocr_error, error_message) as error from public.extraction_queue where id = any(${ids}::uuid[])`;
    for (const row of current) {
      const before = seen.get(row.id);
      if (before?.status_id === row.status_id) continue;
      seen.set(row.id, { status_id: row.status_id, error: row.error });
      lastChange = Date.now();
      const label = rows.find((candidate) => candidate.id === row.id)?.label ?? row.id;
      const terminal = (TERMINAL_STATUS_IDS as readonly number[]).includes(row.status_id);
      log({
        level: row.status_id === JOB_STATUS.failed.id ? "warn" : "info",
        msg: `demo: ${label} → ${row.status_id} ${STATUS_NAMES.get(row.status_id) ?? "?"}`,
        job_id: row.id,
        ...(terminal && row.error ? { error: row.error } : {}),
      });
    }
    const done = current.length === rows.length && current.every((row) => (TERMINAL_STATUS_IDS as readonly number[]).includes(row.status_id));
    if (done) break;
    if (Date.now() - lastChange >= reminderMs) {
      const waiting = current.filter((row) => !(TERMINAL_STATUS_IDS as readonly number[]).includes(row.status_id)).length;
      log({ level: "info", msg: `demo: ${waiting} of ${rows.length} row(s) still in progress`, elapsed_s: Math.round((Date.now() - startedAt) / 1000) });
      lastChange = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  return seen;
}
