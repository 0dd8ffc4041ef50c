/**
 * After the plan search: the selection page (one radio button per plan,
 * active or "inactif") and the confirmation page ("Confirmer"). An inactive
 * plan is still a plan to fetch, not an error.
 */
import type { Locator, Page } from "playwright";
import { normalizeOptionText } from "../option-matching.ts";
import { SiteMessageError } from "../registry-failures.ts";
import { handleSessionOutcome, sessionOutcomes, waitForOutcome, SUBMIT_CLICK } from "./page-outcome.ts";

export class PlanSelectionPage {
  readonly plans: Locator;
  readonly submitButton: Locator;

  constructor(
    readonly page: Page,
    readonly timeoutMs: number,
  ) {
    this.plans = page.getByRole("radio");
    this.submitButton = page.getByRole("button", { name: "Soumettre" });
  }

  /** Chooses the plan of lot `lot`, an active one first; then submits and waits for the confirmation page. */
  async selectPlan(lot: string, confirmation: PlanConfirmationPage): Promise<void> {
    const wanted = normalizeOptionText(lot).replace(/\s/g, "");
    const rows = this.page.getByRole("row").filter({ has: this.plans });
    const count = await rows.count();
    if (count === 0) throw new SiteMessageError("the registry listed no plan to select");
    const candidates: { index: number; exact: boolean; active: boolean }[] = [];
    for (let index = 0; index < count; index += 1) {
      const cells = (await rows.nth(index).getByRole("cell").allTextContents()).map((text) => text.trim());
      const number = normalizeOptionText(cells[0] ?? "").replace(/\s/g, "");
      const active = !cells.some((text) => /^inactif$/i.test(text));
      candidates.push({ index, exact: number === wanted, active });
    }
    // Exact number before a variant ("…-A"), active before inactive, then the site's order.
    candidates.sort((a, b) => Number(b.exact) - Number(a.exact) || Number(b.active) - Number(a.active) || a.index - b.index);
    const chosen = candidates[0];
    if (chosen === undefined) throw new SiteMessageError("the registry listed no plan to select");
    await rows.nth(chosen.index).getByRole("radio").check();
    await this.submitButton.click(SUBMIT_CLICK);
    const outcome = await waitForOutcome(this.page, { confirmation: confirmation.confirmButton, ...sessionOutcomes(this.page) }, this.timeoutMs);
    await handleSessionOutcome(this.page, outcome);
  }
}

export class PlanConfirmationPage {
  readonly confirmButton: Locator;

  constructor(readonly page: Page) {
    this.confirmButton = page.getByRole("button", { name: "Confirmer" });
  }

  async confirm<K extends string>(expected: Readonly<Record<K, Locator>>, resultTimeoutMs: number): Promise<K> {
    await this.confirmButton.click(SUBMIT_CLICK);
    const outcome = await waitForOutcome(this.page, { ...expected, ...sessionOutcomes(this.page) }, resultTimeoutMs);
    await handleSessionOutcome(this.page, outcome);
    return outcome as K;
  }
}
