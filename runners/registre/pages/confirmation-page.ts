/**
 * The "Confirmer" page the site shows before a large document of any type
 * (`13_01_13/pf_13_01_13_confr_demnd.asp`; PX = Paraito/registre-extractor
 * dc82c0e, src/worker/extractor-ai.ts:1972-2000, 2222; the button's markup
 * quoted at AI:1902: `id="btnConfr" value="Confirmer"`).
 */
import type { Locator, Page } from "playwright";
import { submitAndRead, type AnswerTimeouts, type PageSnapshot } from "./page-snapshot.ts";

export class ConfirmationPage {
  readonly confirmButton: Locator;

  constructor(readonly page: Page) {
    this.confirmButton = page.locator("#btnConfr");
  }

  confirm(timeouts: AnswerTimeouts): Promise<PageSnapshot> {
    return submitAndRead(this.page, this.confirmButton, timeouts);
  }
}
