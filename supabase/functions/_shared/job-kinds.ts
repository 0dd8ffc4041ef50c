/**
 * Job kinds and statuses, shared by the dispatch function and the runners.
 * The status map mirrors the `extraction_status` lookup table; a test keeps
 * the two in agreement.
 */

/** One runner family per kind; each has its own capacity profile and claim query. */
export const JOB_KINDS = ["registre", "index-ocr", "acte-ocr"] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/**
 * Jobs one task of each kind runs at once (its slots): the runners'
 * RUNNER_CONCURRENCY / REGISTRE_CONTEXTS defaults, which dispatch must know
 * to start one registre task per REGISTRE_CONTEXTS waiting rows rather than
 * one per row. Why 3 for registre: runners/lifecycle/runner-config.ts.
 */
export const DEFAULT_JOBS_PER_TASK: Readonly<Record<JobKind, number>> = {
  registre: 3,
  "index-ocr": 1,
  "acte-ocr": 1,
};

export function isJobKind(value: string): value is JobKind {
  return (JOB_KINDS as readonly string[]).includes(value);
}

/** Row statuses of `extraction_queue` (ids and French names as in `extraction_status`). */
export const JOB_STATUS = {
  waiting: { id: 1, name: "En attente" },
  extracting: { id: 2, name: "En traitement" },
  extracted: { id: 3, name: "Complété" },
  failed: { id: 4, name: "Erreur" },
  done: { id: 5, name: "Extraction Complété" },
  ocrRunning: { id: 6, name: "OCR en traitement" },
} as const;
export type JobStatusKey = keyof typeof JOB_STATUS;
export type JobStatusId = (typeof JOB_STATUS)[JobStatusKey]["id"];

/** Statuses nothing leaves except the audited `retry` function. */
export const TERMINAL_STATUS_IDS: readonly JobStatusId[] = [JOB_STATUS.failed.id, JOB_STATUS.done.id];

/** `document_source` values a row may carry. */
export const DOCUMENT_SOURCES = ["index", "acte", "plan_cadastraux"] as const;
export type DocumentSource = (typeof DOCUMENT_SOURCES)[number];

/** `acte_type` values the registry's acte search accepts. */
export const ACTE_TYPES = ["Acte", "Avis d'adresse", "Radiation", "Acte divers"] as const;
export type ActeType = (typeof ACTE_TYPES)[number];
