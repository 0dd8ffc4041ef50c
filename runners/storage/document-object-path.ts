/**
 * The object name a fetched PDF gets, as the earlier system named them (so
 * paths already stored in rows keep their shape):
 * `actes/{doc}-{circ}-{timestamp}.pdf`,
 * `index/{doc}-{circ}-{cadastre}-{timestamp}.pdf`,
 * `plans-cadastraux/{doc}-{circ}-{cadastre}-{timestamp}.pdf`,
 * every character outside [A-Za-z0-9_-] of a part turned into `_`.
 */
import type { DocumentBucket } from "./document-storage.ts";

export type DocumentSource = "index" | "acte" | "plan_cadastraux";

export interface DocumentNaming {
  readonly documentSource: DocumentSource;
  /** `document_number_normalized` (no whitespace). */
  readonly documentNumber: string;
  readonly circonscription: string;
  /** Required for index and plan_cadastraux (the database refuses rows without it). */
  readonly cadastre: string | null;
}

export const BUCKET_OF_SOURCE: Readonly<Record<DocumentSource, DocumentBucket>> = {
  index: "index",
  acte: "actes",
  plan_cadastraux: "plans-cadastraux",
};

/** `bucket/filename` for this document fetched at `fetchedAt`. */
export function documentObjectPath(document: DocumentNaming, fetchedAt: Date = new Date()): string {
  const parts = [document.documentNumber, document.circonscription];
  if (document.documentSource !== "acte") {
    if (document.cadastre === null || document.cadastre.trim() === "") {
      throw new Error(`a ${document.documentSource} document needs its cadastre to be named`);
    }
    parts.push(document.cadastre);
  }
  parts.push(String(fetchedAt.getTime()));
  return `${BUCKET_OF_SOURCE[document.documentSource]}/${parts.map(safeNamePart).join("-")}.pdf`;
}

function safeNamePart(part: string): string {
  return part.replace(/[^A-Za-z0-9_-]/g, "_");
}
