/**
 * The list the acte search may answer with: "Nous vous proposons une liste
 * de document(s) dont le numéro est semblable". Each row is a number, a
 * date and its medium; paper-only rows have no link and cannot be fetched.
 */
import type { Locator, Page } from "playwright";
import { normalizeOptionText } from "../option-matching.ts";
import { SiteMessageError } from "../registry-failures.ts";
import { handleSessionOutcome, sessionOutcomes, waitForOutcome, SUBMIT_CLICK } from "./page-outcome.ts";

export const SIMILAR_NUMBERS_TEXT = "Nous vous proposons une liste de document(s) dont le numéro est semblable";
const PAPER_ONLY = /papier seulement/i;

export class SimilarNumbersPage {
  readonly heading: Locator;
  /** Rows that can be opened: they have a link and are not paper-only. */
  readonly digitalRows: Locator;

  constructor(readonly page: Page) {
    this.heading = page.getByText(SIMILAR_NUMBERS_TEXT);
    this.digitalRows = page
      .getByRole("row")
      .filter({ has: page.getByRole("link") })
      .filter({ hasNotText: PAPER_ONLY });
  }

  /**
   * Opens the digital row whose number is `number` (spacing ignored), or
   * the only digital row when none carries it exactly.
   */
  async openDocument<K extends string>(number: string, expected: Readonly<Record<K, Locator>>, resultTimeoutMs: number): Promise<K> {
    const wanted = normalizeOptionText(number).replace(/\s/g, "");
    const links = this.digitalRows.getByRole("link");
    const texts = (await links.allTextContents()).map((text) => normalizeOptionText(text).replace(/\s/g, ""));
    let index = texts.indexOf(wanted);
    if (index < 0 && texts.length === 1) index = 0;
    if (index < 0) {
      throw new SiteMessageError(`${SIMILAR_NUMBERS_TEXT}: no digital document numbered ${number} among ${texts.length} proposed`);
    }
    await links.nth(index).click(SUBMIT_CLICK);
    const outcome = await waitForOutcome(this.page, { ...expected, ...sessionOutcomes(this.page) }, resultTimeoutMs);
    await handleSessionOutcome(this.page, outcome);
    return outcome as K;
  }
}
