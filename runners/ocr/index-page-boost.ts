/**
 * The index boost, page by page: one call per page (never the whole
 * document, which for 30 pages asks 20–25K output tokens and outlasts the
 * call timeout), OCR_PAGE_CONCURRENCY pages at a time. A boosted page is
 * taken only when it keeps its marker and exactly the same `Ligne N` set as
 * its input (the rules correct fields, they never add or drop a line); a
 * boost that is cut, withheld or breaks that rule leaves the page's raw text,
 * flagged, while the others are boosted. The raw page's own flags (short,
 * cut, unverified) are put back if the boost dropped them. Failures that are
 * not the page's (quota, network, configuration) end the attempt as
 * classified.
 */
import { mapWithConcurrency } from "./map-with-concurrency.ts";
import { pageMarker, type ReadPage } from "./index-page.ts";
import { IncompleteReplyError, type OcrCallContext, type OcrProvider } from "./providers/ocr-provider.ts";

export const boostSkippedFlag = (why: string) => `[CORRECTION NON APPLIQUÉE : ${why} ; texte brut conservé]`;

export interface BoostedPage {
  readonly text: string;
  /** The raw text stands (flagged): the boost could not be applied. */
  readonly skipped: boolean;
}

export function boostIndexPages(pages: readonly ReadPage[], provider: OcrProvider, concurrency: number, context: OcrCallContext): Promise<BoostedPage[]> {
  return mapWithConcurrency([...pages], concurrency, (page) => boostPage(page, provider, context));
}

async function boostPage(page: ReadPage, provider: OcrProvider, context: OcrCallContext): Promise<BoostedPage> {
  const { pageNumber } = page.outcome;
  // A page with no line has nothing to correct.
  if (page.lines.length === 0) return { text: page.text, skipped: false };
  let boosted: string;
  try {
    boosted = await provider.boostIndex(page.text, context);
  } catch (error) {
    if (!(error instanceof IncompleteReplyError)) throw error;
    return skipped(page, `réponse interrompue (${error.finishReason})`, context);
  }
  const text = boosted.replace(/^```[a-z]*\s*$/gim, "").trim();
  if (!text.includes(pageMarker(pageNumber))) return skipped(page, "le marqueur de page a été perdu", context);
  const expected = lineNumbers(page.text);
  const got = lineNumbers(text);
  if (expected.join(",") !== got.join(",")) {
    return skipped(page, `lignes ${got.length} au lieu de ${expected.length} (ensemble « Ligne N » modifié)`, context);
  }
  let result = text;
  for (const flag of [...page.outcome.flags].reverse()) {
    if (!result.includes(flag)) result = result.replace(pageMarker(pageNumber), `${pageMarker(pageNumber)}\n${flag}`);
  }
  return { text: result, skipped: false };
}

function skipped(page: ReadPage, why: string, context: OcrCallContext): BoostedPage {
  context.log.warn("index boost not applied to a page: its raw text stands, flagged", { page: page.outcome.pageNumber, why });
  const marker = pageMarker(page.outcome.pageNumber);
  return { text: page.text.replace(marker, `${marker}\n${boostSkippedFlag(why)}`), skipped: true };
}

/** The `Ligne N` numbers of a page's text, in order. */
function lineNumbers(text: string): number[] {
  return [...text.matchAll(/^Ligne\s+(\d+)\s*:/gim)].map((match) => Number(match[1]));
}
