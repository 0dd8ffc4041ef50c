/**
 * From a row's fields to the PDF's bytes, one flow per document source,
 * driving the page objects. Each flow starts from its search page and ends
 * with the download; the site's messages surface as SiteMessageError
 * (final), an ended session as SessionExpiredError.
 */
import type { Page } from "playwright";
import { FinalJobError } from "../lifecycle/job-errors.ts";
import { ACTE_SEARCH_PATH, ActeSearchPage } from "./pages/acte-search-page.ts";
import { INDEX_SEARCH_PATH, LotSearchPage, PLAN_SEARCH_PATH } from "./pages/lot-search-page.ts";
import { PlanConfirmationPage, PlanSelectionPage } from "./pages/plan-selection-pages.ts";
import { ResultFramesetPage } from "./pages/result-frameset-page.ts";
import { SimilarNumbersPage } from "./pages/similar-numbers-page.ts";

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

export async function fetchDocument(page: Page, request: DocumentRequest, settings: FlowSettings): Promise<Uint8Array> {
  switch (request.documentSource) {
    case "index":
      return fetchIndex(page, request, settings);
    case "acte":
      return fetchActe(page, request, settings);
    case "plan_cadastraux":
      return fetchPlan(page, request, settings);
  }
}

/** The lot number as the site prints it ("1 234 567"): groups of three from the right. */
export function formatLotNumber(normalized: string): string {
  return /^\d+$/.test(normalized) ? normalized.replace(/\B(?=(\d{3})+(?!\d))/g, " ") : normalized;
}

async function fillLotSearch(search: LotSearchPage, request: DocumentRequest): Promise<void> {
  if (request.cadastre === null) throw new FinalJobError(`a ${request.documentSource} request needs a cadastre`);
  await search.open();
  await search.chooseCirconscription(request.circonscriptionFonciere);
  await search.chooseCadastre(request.cadastre);
  await search.enterLotNumber(formatLotNumber(request.documentNumberNormalized));
  if (request.designationSecondaire !== null && request.designationSecondaire.trim() !== "") {
    await search.chooseDesignationSecondaire(request.designationSecondaire);
  }
}

async function fetchIndex(page: Page, request: DocumentRequest, settings: FlowSettings): Promise<Uint8Array> {
  const search = new LotSearchPage(page, `${settings.baseUrl}${INDEX_SEARCH_PATH}`, settings.navigationTimeoutMs);
  const result = new ResultFramesetPage(page, settings.navigationTimeoutMs);
  await fillLotSearch(search, request);
  await search.submit({ document: result.pageFrame }, settings.resultTimeoutMs);
  return result.downloadDocument();
}

async function fetchActe(page: Page, request: DocumentRequest, settings: FlowSettings): Promise<Uint8Array> {
  if (request.acteType === null) throw new FinalJobError("an acte request needs its acte_type");
  const search = new ActeSearchPage(page, `${settings.baseUrl}${ACTE_SEARCH_PATH}`, settings.navigationTimeoutMs);
  const similar = new SimilarNumbersPage(page);
  const result = new ResultFramesetPage(page, settings.navigationTimeoutMs);
  await search.open();
  await search.chooseCirconscription(request.circonscriptionFonciere);
  await search.chooseDocumentType(request.acteType);
  await search.enterInscriptionNumber(formatLotNumber(request.documentNumberNormalized));
  const outcome = await search.search({ document: result.pageFrame, similarNumbers: similar.heading }, settings.resultTimeoutMs);
  if (outcome === "similarNumbers") await similar.openDocument(request.documentNumberNormalized, { document: result.pageFrame }, settings.resultTimeoutMs);
  return result.downloadDocument();
}

async function fetchPlan(page: Page, request: DocumentRequest, settings: FlowSettings): Promise<Uint8Array> {
  const search = new LotSearchPage(page, `${settings.baseUrl}${PLAN_SEARCH_PATH}`, settings.navigationTimeoutMs);
  const selection = new PlanSelectionPage(page, settings.navigationTimeoutMs);
  const confirmation = new PlanConfirmationPage(page);
  const result = new ResultFramesetPage(page, settings.navigationTimeoutMs);
  await fillLotSearch(search, request);
  await search.submit({ selection: selection.plans }, settings.resultTimeoutMs);
  await selection.selectPlan(request.documentNumberNormalized, confirmation);
  await confirmation.confirm({ document: result.pageFrame }, settings.resultTimeoutMs);
  return result.downloadDocument();
}
