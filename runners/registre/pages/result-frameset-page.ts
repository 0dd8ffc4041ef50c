/**
 * The document: a frameset with frames `menu` and `page`; the PDF comes from
 * the menu's link titled "Sauvegarder ou imprimer le document", as a
 * download.
 */
import { readFile } from "node:fs/promises";
import type { FrameLocator, Locator, Page } from "playwright";
import { UnexpectedPageError } from "../registry-failures.ts";

export class ResultFramesetPage {
  /** Frames have no role; their names are the site's. */
  readonly pageFrame: Locator;
  readonly menu: FrameLocator;
  readonly saveLink: Locator;

  constructor(
    readonly page: Page,
    readonly timeoutMs: number,
  ) {
    this.pageFrame = page.locator('frame[name="page"]');
    this.menu = page.frameLocator('frame[name="menu"]');
    this.saveLink = this.menu.getByTitle("Sauvegarder ou imprimer le document");
  }

  /** Downloads the PDF and returns its bytes. */
  async downloadDocument(): Promise<Uint8Array> {
    const [download] = await Promise.all([this.page.waitForEvent("download", { timeout: this.timeoutMs }), this.saveLink.click()]);
    const failure = await download.failure();
    if (failure !== null) throw new UnexpectedPageError(`the document download failed: ${failure}`);
    const bytes = new Uint8Array(await readFile(await download.path()));
    if (!Buffer.from(bytes.subarray(0, 5)).equals(Buffer.from("%PDF-"))) {
      throw new UnexpectedPageError(`the registry's save link gave ${bytes.length} bytes that are not a PDF`);
    }
    await download.delete();
    return bytes;
  }
}
