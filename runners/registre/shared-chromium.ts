/**
 * The task's one Chromium, shared by its registry sessions (one context
 * each, each with its own login, account and cookies: registry-session.ts):
 * launched on the first job, launched again on the next job after it went
 * away (a crash takes every slot's context with it; each slot's job fails
 * on its own and the next one starts a new browser), closed once with the
 * task, which ends every Chromium process.
 */
import type { Browser } from "playwright";
import type { Logger } from "../lifecycle/structured-log.ts";
import type { RegistreConfig } from "./registre-config.ts";
import { firstLine, launchChromium } from "./registry-session.ts";

export class SharedChromium {
  readonly #config: RegistreConfig;
  readonly #log: Logger;
  #browser: Promise<Browser> | undefined;
  #closed = false;

  constructor(config: RegistreConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
  }

  /** The running browser, launched if there is none (concurrent callers share one launch). */
  get(): Promise<Browser> {
    if (this.#browser !== undefined) return this.#browser;
    const launching = launchChromium(this.#config, this.#log).then((browser) => {
      browser.on("disconnected", () => {
        if (!this.#closed) this.#log.warn("chromium went away; the next job starts a new one");
        if (this.#browser === launching) this.#browser = undefined;
      });
      return browser;
    });
    this.#browser = launching;
    launching.catch(() => {
      if (this.#browser === launching) this.#browser = undefined;
    });
    return launching;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const browser = this.#browser;
    this.#browser = undefined;
    if (browser === undefined) return;
    await browser
      .then((opened) => opened.close())
      .catch((error: unknown) => this.#log.warn("closing chromium failed", { error: firstLine(error) }));
    this.#log.info("chromium closed");
  }
}
