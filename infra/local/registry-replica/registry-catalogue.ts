/**
 * The replica's catalogue with its PDFs, for whoever needs the same
 * documents as the replica serves: the registre tests (stored PDF must be
 * byte-identical), the OCR tests (image-only pages with known text), the
 * local demo (rows that will succeed).
 *
 *   const documents = await registryCatalogue();
 *   documents[0].row        // extraction_queue fields to insert
 *   documents[0].text       // "--- Page 1 ---\n…\nLigne 1: … | … "
 *   documents[0].pdfBytes   // what the replica serves
 */
import { join } from "node:path";
import { LOCAL_STACK_DIR } from "../paths.ts";
import { catalogueDocumentText, REGISTRY_CATALOGUE, type CatalogueDocument } from "./catalogue.ts";
import { cachedScannedPdf } from "./scanned-pages.ts";

export interface RegistryCatalogueEntry extends CatalogueDocument {
  /** Every line of every page, in the OCR output's `--- Page N ---` / `Ligne N:` structure. */
  readonly text: string;
  readonly pageCount: number;
  /** The cached PDF (image-only pages, 300 DPI). */
  readonly pdfPath: string;
  readonly pdfBytes: Uint8Array;
}

/** @default "<LOCAL_STACK_DIR>/registry-replica-pdfs" (shared by every stack and test run; files never change once written) */
export const DEFAULT_CATALOGUE_CACHE_DIR = join(LOCAL_STACK_DIR, "registry-replica-pdfs");

export async function registryCatalogue(cacheDir: string = DEFAULT_CATALOGUE_CACHE_DIR): Promise<RegistryCatalogueEntry[]> {
  const entries: RegistryCatalogueEntry[] = [];
  for (const document of REGISTRY_CATALOGUE) {
    const { path, bytes } = await cachedScannedPdf(document, cacheDir);
    entries.push({ ...document, text: catalogueDocumentText(document), pageCount: document.pages.length, pdfPath: path, pdfBytes: bytes });
  }
  return entries;
}

/** One entry by its id (e.g. "index-1234567-montreal"); throws when unknown. */
export async function registryCatalogueEntry(id: string, cacheDir: string = DEFAULT_CATALOGUE_CACHE_DIR): Promise<RegistryCatalogueEntry> {
  const document = REGISTRY_CATALOGUE.find((candidate) => candidate.id === id);
  if (document === undefined) throw new Error(`no catalogue document ${id}; known: ${REGISTRY_CATALOGUE.map((candidate) => candidate.id).join(", ")}`);
  const { path, bytes } = await cachedScannedPdf(document, cacheDir);
  return { ...document, text: catalogueDocumentText(document), pageCount: document.pages.length, pdfPath: path, pdfBytes: bytes };
}
