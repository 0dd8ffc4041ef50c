/**
 * The index des immeubles search (`pf_13_01_11_02_indx_immbl.asp`) and the
 * plan cadastral search (`pf_13_01_11_10_plan_cadst.asp`) share one form:
 * circonscription (choosing one reloads the page to list its cadastres),
 * cadastre, lot number, optional désignation secondaire, "Soumettre". The
 * fields have no labels on the site, so its ids are the locators.
 */
import type { Locator, Page } from "playwright";
import { matchOption } from "../option-matching.ts";
import { handleSessionOutcome, sessionOutcomes, waitForOutcome, SUBMIT_CLICK } from "./page-outcome.ts";

export const INDEX_SEARCH_PATH = "/Sirf/Script/13_01_11/pf_13_01_11_02_indx_immbl.asp";
export const PLAN_SEARCH_PATH = "/Sirf/Script/13_01_11/pf_13_01_11_10_plan_cadst.asp";

export class LotSearchPage {
  readonly circonscription: Locator;
  readonly cadastre: Locator;
  readonly lotNumber: Locator;
  readonly designationSecondaire: Locator;
  readonly submitButton: Locator;
  /** The cadastre list once the reload for a circonscription has filled it (the first option is the placeholder). */
  readonly firstCadastre: Locator;

  constructor(
    readonly page: Page,
    readonly url: string,
    readonly timeoutMs: number,
  ) {
    this.circonscription = page.locator("#selCircnFoncr");
    this.cadastre = page.locator("#selCadst");
    this.lotNumber = page.locator("#txtNumrtLot");
    this.designationSecondaire = page.locator("#selDesgnSecnd");
    this.submitButton = page.getByRole("button", { name: "Soumettre" });
    this.firstCadastre = this.cadastre.locator("option").nth(1);
  }

  async open(): Promise<void> {
    await this.page.goto(this.url);
    const outcome = await waitForOutcome(this.page, { form: this.circonscription, ...sessionOutcomes(this.page) }, this.timeoutMs);
    await handleSessionOutcome(this.page, outcome);
  }

  /** Chooses the circonscription and waits for the reload that lists its cadastres. */
  async chooseCirconscription(name: string): Promise<void> {
    const label = matchOption(name, await optionLabels(this.circonscription), "circonscription_fonciere");
    await this.circonscription.selectOption({ label });
    // The reload destroys the page's execution context; the locator waits across it.
    const outcome = await waitForOutcome(this.page, { reloaded: this.firstCadastre, ...sessionOutcomes(this.page) }, this.timeoutMs);
    await handleSessionOutcome(this.page, outcome);
    await this.page.waitForLoadState("domcontentloaded");
  }

  async chooseCadastre(name: string): Promise<void> {
    const label = matchOption(name, await optionLabels(this.cadastre), "cadastre");
    await this.cadastre.selectOption({ label });
  }

  async enterLotNumber(lot: string): Promise<void> {
    await this.lotNumber.fill(lot);
  }

  async chooseDesignationSecondaire(designation: string): Promise<void> {
    const label = matchOption(designation, await optionLabels(this.designationSecondaire), "designation_secondaire");
    await this.designationSecondaire.selectOption({ label });
  }

  /** Submits; returns the page that answered, or throws the site's message. */
  async submit<K extends string>(expected: Readonly<Record<K, Locator>>, resultTimeoutMs: number): Promise<K> {
    await this.submitButton.click(SUBMIT_CLICK);
    const outcome = await waitForOutcome(this.page, { ...expected, ...sessionOutcomes(this.page) }, resultTimeoutMs);
    await handleSessionOutcome(this.page, outcome);
    return outcome as K;
  }
}

export async function optionLabels(select: Locator): Promise<string[]> {
  return (await select.locator("option").allTextContents()).map((text) => text.trim());
}
