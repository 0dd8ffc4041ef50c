/**
 * The acte search (`pf_13_01_11_08_reqst.asp`): circonscription, document
 * type, inscription number, "Rechercher". No labels on the site: its ids.
 */
import type { Locator, Page } from "playwright";
import { matchOption } from "../option-matching.ts";
import { optionLabels } from "./lot-search-page.ts";
import { handleSessionOutcome, sessionOutcomes, waitForOutcome, SUBMIT_CLICK } from "./page-outcome.ts";

export const ACTE_SEARCH_PATH = "/Sirf/Script/13_01_11/pf_13_01_11_08_reqst.asp";

export class ActeSearchPage {
  readonly circonscription: Locator;
  readonly documentType: Locator;
  readonly inscriptionNumber: Locator;
  readonly searchButton: Locator;

  constructor(
    readonly page: Page,
    readonly url: string,
    readonly timeoutMs: number,
  ) {
    this.circonscription = page.locator("#selCircnFoncr");
    this.documentType = page.locator("#selTypeDocmn");
    this.inscriptionNumber = page.locator("#txtNoReqst");
    this.searchButton = page.getByRole("button", { name: "Rechercher" });
  }

  async open(): Promise<void> {
    await this.page.goto(this.url);
    const outcome = await waitForOutcome(this.page, { form: this.circonscription, ...sessionOutcomes(this.page) }, this.timeoutMs);
    await handleSessionOutcome(this.page, outcome);
  }

  async chooseCirconscription(name: string): Promise<void> {
    await this.circonscription.selectOption({ label: matchOption(name, await optionLabels(this.circonscription), "circonscription_fonciere") });
  }

  async chooseDocumentType(type: string): Promise<void> {
    await this.documentType.selectOption({ label: matchOption(type, await optionLabels(this.documentType), "acte_type") });
  }

  async enterInscriptionNumber(number: string): Promise<void> {
    await this.inscriptionNumber.fill(number);
  }

  async search<K extends string>(expected: Readonly<Record<K, Locator>>, resultTimeoutMs: number): Promise<K> {
    await this.searchButton.click(SUBMIT_CLICK);
    const outcome = await waitForOutcome(this.page, { ...expected, ...sessionOutcomes(this.page) }, resultTimeoutMs);
    await handleSessionOutcome(this.page, outcome);
    return outcome as K;
  }
}
