/**
 * The document: a frameset with frames `menu` and `page`; the save link in
 * the menu frame (PX = Paraito/registre-extractor dc82c0e,
 * src/worker/extractor-ai.ts:2345-2353): title "Sauvegarder ou imprimer le
 * document", or an `impri_sauvg` href, or an `onmouseup` calling
 * `fRechrDocmnPDF`. PX also looked for it in the main page, so both are searched.
 */
import type { FrameLocator, Locator, Page } from "playwright";
import { capturePdf } from "./pdf-capture.ts";

const SAVE_LINK = 'a[title="Sauvegarder ou imprimer le document"], a[href*="impri_sauvg"], a[onmouseup*="fRechrDocmnPDF"]';

export class ResultFramesetPage {
  readonly menu: FrameLocator;
  readonly saveLink: Locator;

  constructor(
    readonly page: Page,
    readonly timeoutMs: number,
  ) {
    this.menu = page.frameLocator('frame[name="menu"]');
    this.saveLink = this.menu.locator(SAVE_LINK).or(page.locator(SAVE_LINK)).first();
  }

  /** Clicks the save link and returns the PDF's bytes, however they come. */
  async savePdf(timeoutMs: number): Promise<Uint8Array> {
    await this.saveLink.waitFor({ state: "visible", timeout: this.timeoutMs });
    return capturePdf(this.page, () => this.saveLink.click({ noWaitAfter: true }), timeoutMs);
  }
}
