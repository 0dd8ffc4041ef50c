/**
 * The index des immeubles search (`pf_13_01_11_02_indx_immbl.asp`) and the
 * plan cadastral search (`pf_13_01_11_10_plan_cadst.asp`) share one form
 * (PX = Paraito/registre-extractor dc82c0e, src/worker/extractor-ai.ts:718-936,
 * 1234-1300; SIRF-py `_SIRF_SEARCH_FIELDS`): `#selCircnFoncr` (choosing one
 * reloads the page to list its cadastres), `#selCadst`, `#txtNumrtLot`,
 * optional `#selDesgnSecnd`, the Soumettre button `btnSoumt`. No labels on
 * the site: its ids are the locators. Reports what the page shows.
 */
import type { Locator, Page } from "playwright";
import { actAndRead, openAndRead, submitAndRead, type AnswerTimeouts, type PageSnapshot } from "./page-snapshot.ts";

export const INDEX_SEARCH_PATH = "/Sirf/Script/13_01_11/pf_13_01_11_02_indx_immbl.asp";
export const PLAN_SEARCH_PATH = "/Sirf/Script/13_01_11/pf_13_01_11_10_plan_cadst.asp";

export class LotSearchPage {
  readonly circonscription: Locator;
  readonly cadastre: Locator;
  readonly lotNumber: Locator;
  readonly designationSecondaire: Locator;
  readonly submitButton: Locator;

  constructor(
    readonly page: Page,
    readonly url: string,
    readonly timeoutMs: number,
  ) {
    this.circonscription = page.locator("#selCircnFoncr");
    this.cadastre = page.locator("#selCadst");
    this.lotNumber = page.locator("#txtNumrtLot");
    this.designationSecondaire = page.locator("#selDesgnSecnd");
    // SIRF-py posts `btnSoumt=Soumettre`; the role lookup is the fallback.
    this.submitButton = page.locator('[name="btnSoumt"]').or(page.getByRole("button", { name: "Soumettre" })).first();
  }

  open(): Promise<PageSnapshot> {
    return openAndRead(this.page, this.url, this.timeoutMs);
  }

  /** Chooses the circonscription by its label and reads the page its reload brings. */
  chooseCirconscription(label: string): Promise<PageSnapshot> {
    return actAndRead(this.page, () => this.circonscription.selectOption({ label }), { answerMs: this.timeoutMs, loadMs: this.timeoutMs });
  }

  async chooseCadastre(label: string): Promise<void> {
    await this.cadastre.selectOption({ label });
  }

  async enterLotNumber(lot: string): Promise<void> {
    await this.lotNumber.fill(lot);
  }

  async chooseDesignationSecondaire(label: string): Promise<void> {
    await this.designationSecondaire.selectOption({ label });
  }

  submit(timeouts: AnswerTimeouts): Promise<PageSnapshot> {
    return submitAndRead(this.page, this.submitButton, timeouts);
  }
}

export async function optionLabels(select: Locator): Promise<string[]> {
  return (await select.locator("option").allTextContents()).map((text) => text.trim());
}
