/**
 * A list to choose one document from: the acte search's similar numbers
 * (radios under a `contValErr` notice, a "Soumettre" button; PX =
 * Paraito/registre-extractor dc82c0e, src/worker/extractor-ai.ts:2017-2200)
 * and the plan selection page (`13_01_08/pf_13_01_08_selct_plan_cadst.asp`,
 * radios, "Soumettre" or "Continuer"; PX AI:1747-1850). The rows come in the
 * page snapshot; which one to take is the flow's decision.
 */
import type { Locator, Page } from "playwright";
import { CHOICE_ROWS, submitAndRead, type AnswerTimeouts, type PageSnapshot } from "./page-snapshot.ts";

export class ChoiceListPage {
  readonly radios: Locator;
  readonly submitButton: Locator;

  constructor(readonly page: Page) {
    this.radios = page.locator(`${CHOICE_ROWS} input[type="radio"]`);
    this.submitButton = page.getByRole("button", { name: /^(Soumettre|Continuer)$/ }).last();
  }

  /** Checks the radio of row `index` (as numbered in the snapshot) and submits. */
  async choose(index: number, timeouts: AnswerTimeouts): Promise<PageSnapshot> {
    await this.radios.nth(index).check();
    return submitAndRead(this.page, this.submitButton, timeouts);
  }
}
