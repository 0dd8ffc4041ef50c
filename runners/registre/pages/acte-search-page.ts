/**
 * The acte search (`pf_13_01_11_08_reqst.asp`, PX = Paraito/registre-extractor
 * dc82c0e, src/worker/extractor-ai.ts:1419-1486): `#selCircnFoncr`,
 * `#selTypeDocmn`, `#txtNoReqst`, "Rechercher". No labels on the site: its
 * ids. Reports what the page shows.
 */
import type { Locator, Page } from "playwright";
import { openAndRead, submitAndRead, type AnswerTimeouts, type PageSnapshot } from "./page-snapshot.ts";

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
    // PX AI:1477: `input[value*="Rechercher"]`.
    this.searchButton = page.getByRole("button", { name: "Rechercher" });
  }

  open(): Promise<PageSnapshot> {
    return openAndRead(this.page, this.url, this.timeoutMs);
  }

  async chooseCirconscription(label: string): Promise<void> {
    await this.circonscription.selectOption({ label });
  }

  async chooseDocumentType(label: string): Promise<void> {
    await this.documentType.selectOption({ label });
  }

  async enterInscriptionNumber(number: string): Promise<void> {
    await this.inscriptionNumber.fill(number);
  }

  search(timeouts: AnswerTimeouts): Promise<PageSnapshot> {
    return submitAndRead(this.page, this.searchButton, timeouts);
  }
}
