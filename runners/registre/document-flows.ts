/**
 * From a row's fields to the PDF's bytes, one flow per document source,
 * driving the page objects and deciding at each page what it means
 * (site-outcome.ts): a search's answer can be the document, the "Confirmer"
 * page (any type, large documents), a list to choose from (similar acte
 * numbers, plans), a message, or something else. Policy lives here, not in
 * the page objects: only the row's exact number is ever taken.
 */
import type { Page } from "playwright";
import { matchOption } from "./option-matching.ts";
import { ACTE_SEARCH_PATH, ActeSearchPage } from "./pages/acte-search-page.ts";
import { ChoiceListPage } from "./pages/choice-list-page.ts";
import { ConfirmationPage } from "./pages/confirmation-page.ts";
import { INDEX_SEARCH_PATH, LotSearchPage, optionLabels, PLAN_SEARCH_PATH } from "./pages/lot-search-page.ts";
import type { AnswerTimeouts, PageSnapshot } from "./pages/page-snapshot.ts";
import { ResultFramesetPage } from "./pages/result-frameset-page.ts";
import { InvalidRequestError, UnexpectedPageError } from "./registry-failures.ts";
import { numberKey, readSessionPage, type PageKind, type PageReading } from "./site-outcome.ts";

/** The row fields a flow reads (ClaimedJob's names). */
export interface DocumentRequest {
  readonly documentSource: "index" | "acte" | "plan_cadastraux";
  readonly documentNumber: string;
  readonly documentNumberNormalized: string;
  readonly circonscriptionFonciere: string;
  readonly cadastre: string | null;
  readonly designationSecondaire: string | null;
  readonly acteType: string | null;
}

export interface FlowSettings {
  readonly baseUrl: string;
  readonly navigationTimeoutMs: number;
  readonly resultTimeoutMs: number;
}

/** Pages between a search and its document: a list, then "Confirmer", then the frameset; one more for slack. */
const MAX_STEPS_TO_DOCUMENT = 4;

export async function fetchDocument(page: Page, request: DocumentRequest, settings: FlowSettings): Promise<Uint8Array> {
  const answer = await searchFor(page, request, settings);
  return followToDocument(page, request, answer, settings);
}

/** The lot number as the site prints it ("1 234 567"): groups of three from the right. */
export function formatLotNumber(normalized: string): string {
  return /^\d+$/.test(normalized) ? normalized.replace(/\B(?=(\d{3})+(?!\d))/g, " ") : normalized;
}

const resultTimeouts = (settings: FlowSettings): AnswerTimeouts => ({ answerMs: settings.resultTimeoutMs, loadMs: settings.navigationTimeoutMs });

function expectPage(snapshot: PageSnapshot, kind: PageKind, what: string): PageReading {
  const reading = readSessionPage(snapshot);
  if (reading.kind !== kind) throw new UnexpectedPageError(`expected ${what}, the registry showed a ${reading.kind} page (${snapshot.url})`);
  return reading;
}

async function searchFor(page: Page, request: DocumentRequest, settings: FlowSettings): Promise<PageSnapshot> {
  const number = formatLotNumber(request.documentNumberNormalized);
  if (request.documentSource === "acte") {
    if (request.acteType === null) throw new InvalidRequestError("an acte request needs its acte_type");
    const search = new ActeSearchPage(page, `${settings.baseUrl}${ACTE_SEARCH_PATH}`, settings.navigationTimeoutMs);
    expectPage(await search.open(), "searchForm", "the acte search form");
    await search.chooseCirconscription(matchOption(request.circonscriptionFonciere, await optionLabels(search.circonscription), "circonscription_fonciere"));
    await search.chooseDocumentType(matchOption(request.acteType, await optionLabels(search.documentType), "acte_type"));
    await search.enterInscriptionNumber(number);
    return search.search(resultTimeouts(settings));
  }
  if (request.cadastre === null) throw new InvalidRequestError(`a ${request.documentSource} request needs a cadastre`);
  const path = request.documentSource === "index" ? INDEX_SEARCH_PATH : PLAN_SEARCH_PATH;
  const search = new LotSearchPage(page, `${settings.baseUrl}${path}`, settings.navigationTimeoutMs);
  expectPage(await search.open(), "searchForm", "the lot search form");
  const circonscription = matchOption(request.circonscriptionFonciere, await optionLabels(search.circonscription), "circonscription_fonciere");
  // Choosing reloads the page with the circonscription's cadastres (PX: "execution context destroyed").
  expectPage(await search.chooseCirconscription(circonscription), "searchForm", "the lot search form after choosing the circonscription");
  await search.chooseCadastre(matchOption(request.cadastre, await optionLabels(search.cadastre), "cadastre"));
  // PX filled the number without spaces, SIRF-py posts " 2 274 178"; the grouped form is what the site prints.
  await search.enterLotNumber(number);
  if (request.designationSecondaire !== null && request.designationSecondaire.trim() !== "") {
    await search.chooseDesignationSecondaire(matchOption(request.designationSecondaire, await optionLabels(search.designationSecondaire), "designation_secondaire"));
  }
  return search.submit(resultTimeouts(settings));
}

async function followToDocument(page: Page, request: DocumentRequest, first: PageSnapshot, settings: FlowSettings): Promise<Uint8Array> {
  let snapshot = first;
  let listsSeen = 0;
  for (let step = 0; step < MAX_STEPS_TO_DOCUMENT; step += 1) {
    const reading = readSessionPage(snapshot);
    switch (reading.kind) {
      case "document":
        return new ResultFramesetPage(page, settings.navigationTimeoutMs).savePdf(settings.resultTimeoutMs);
      case "confirmation":
        snapshot = await new ConfirmationPage(page).confirm(resultTimeouts(settings));
        break;
      case "choices":
        listsSeen += 1;
        if (listsSeen > 1) throw new UnexpectedPageError(`the registry answered a choice with another list (${snapshot.url})`);
        snapshot = await new ChoiceListPage(page).choose(chooseExactRow(request, reading), resultTimeouts(settings));
        break;
      case "searchForm":
        throw new UnexpectedPageError(`the registry showed its search form again, with no message, instead of the document (${snapshot.url})`);
    }
  }
  throw new UnexpectedPageError(`no document after ${MAX_STEPS_TO_DOCUMENT} pages (${snapshot.url})`);
}

/**
 * The row carrying the request's exact number, online. Never another
 * number (no "only digital row", no "first plan"): a list without the exact
 * number, or with it on paper only (`BPD.GIF`), fails for good saying so.
 */
export function chooseExactRow(request: DocumentRequest, reading: PageReading): number {
  const wanted = numberKey(request.documentNumberNormalized);
  const exact = reading.choiceRows.filter((row) => row.cells.some((cell) => numberKey(cell) === wanted));
  const online = exact.find((row) => !row.paperOnly);
  if (online !== undefined) return online.index;
  const what = request.documentSource === "acte" ? "acte" : request.documentSource === "index" ? "index" : "plan of lot";
  const number = formatLotNumber(request.documentNumberNormalized);
  if (exact.length > 0) {
    throw new InvalidRequestError(`${what} ${number} (${request.circonscriptionFonciere}) exists on paper only at the registry; it cannot be fetched online`);
  }
  const offered = reading.choiceRows.map((row) => row.cells.find((cell) => /\d/.test(cell) && !/^\d{4}-\d{2}-\d{2}$/.test(cell)) ?? "?");
  throw new InvalidRequestError(
    `the registry has no ${what} numbered ${number} in ${request.circonscriptionFonciere}; it proposed only other numbers (${offered.join(", ")}): check the row's number`,
  );
}
