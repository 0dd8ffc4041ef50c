import { afterAll, describe, expect, it } from "vitest";
import { REGISTRY_CATALOGUE } from "../../infra/local/registry-replica/catalogue.ts";
import { renderScannedPdf } from "../../infra/local/registry-replica/scanned-pages.ts";
import { createLogger } from "../../runners/lifecycle/structured-log.ts";
import { applyIndexCorrectionRules } from "../../runners/ocr/correction-rules.ts";
import { headerLines, ledgerLines } from "../../runners/ocr/index-pipeline.ts";
import { openPdf, rasterizePage } from "../../runners/ocr/pdf-pages.ts";
import { OfflineOcrProvider } from "../../runners/ocr/providers/offline-provider.ts";

/**
 * The offline engine on a ruled ledger page of the registry replica (its
 * scanned index, specks and skew included): automatic page segmentation,
 * the header apart from the ledger rows, every row back in its six columns,
 * and the correction rules acting on what it produced.
 */

/** 1 − edit distance / length of the truth: the share of characters read right. */
function characterAccuracy(read: string, truth: string): number {
  const a = [...read];
  const b = [...truth];
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return 1 - (previous[b.length] ?? b.length) / b.length;
}

describe("the offline engine on the replica's ruled ledger", () => {
  const provider = new OfflineOcrProvider(300);
  afterAll(() => provider.close());

  it("recovers every row in its columns and the page header apart, at ≥ 0.95 character accuracy", async () => {
    const document = REGISTRY_CATALOGUE.find((entry) => entry.row.document_source === "index");
    const page = document?.pages[0];
    if (document === undefined || page?.ledger === undefined) throw new Error("the replica's catalogue has an index with a ledger page");
    const pdf = await openPdf(await renderScannedPdf(document));
    try {
      const context = { signal: new AbortController().signal, log: createLogger({ base: { test: "offline-ledger" }, level: "error" }) };
      const image = await rasterizePage(pdf, 1, { dpi: 300, ...provider.raster });
      const reply = await provider.extractIndexPage(image, pdf.pageCount, context);
      const rows = ledgerLines(reply);
      const truthRows = page.ledger.map((line) => [line.parties, line.nature, line.date, line.numPub, line.radiation, line.remarques].join(" | "));
      expect(rows).toHaveLength(truthRows.length);
      expect((await provider.countIndexLines(image, pdf.pageCount, context)).totalLines).toBe(truthRows.length);
      // Every row is back in six columns, its date in the DATE column.
      rows.forEach((row, index) => {
        const cells = row.split(/\s*\|\s*/);
        expect(cells, row).toHaveLength(6);
        expect(cells[2], row).toBe(page.ledger?.[index]?.date);
      });
      const accuracy = characterAccuracy(rows.join("\n"), truthRows.join("\n"));
      expect(accuracy).toBeGreaterThanOrEqual(0.95);
      // The header lines (lot, cadastre) come apart from the ledger, not as rows.
      const header = headerLines(reply).join("\n");
      expect(header).toContain("Lot : 1 234 567");
      expect(header).toContain("Cadastre : Cadastre du Québec");
      expect(characterAccuracy(headerLines(reply).map((line) => line.replace(/^EN-TÊTE : /, "")).join("\n"), page.lines.filter((line) => line !== "").join("\n"))).toBeGreaterThanOrEqual(0.95);

      // The correction rules act on these rows: a nature left blank beside Hydro-Québec becomes Servitude.
      const blanked = rows.map((row) => (row.startsWith("Hydro-Québec") ? row.replace(/ \| Servitude \| /, " |  | ") : row));
      expect(blanked.some((row) => row.startsWith("Hydro-Québec |  | "))).toBe(true);
      const corrected = applyIndexCorrectionRules(["--- Page 1 ---", ...blanked.map((row, index) => `Ligne ${index + 1}: ${row}`)].join("\n"));
      expect(corrected).toMatch(/Ligne \d+: Hydro-Québec \| Servitude \| /);
    } finally {
      await pdf.dispose();
    }
  }, 90_000);

  it("reads the English pre-printed form (DATE first, English headings) back into the six columns, with fra+eng loaded", async () => {
    expect(provider.languages).toEqual(["fra", "eng"]);
    const french = REGISTRY_CATALOGUE.find((entry) => entry.row.document_source === "index");
    const frenchPage = french?.pages[1];
    if (french === undefined || frenchPage?.ledger === undefined) throw new Error("the replica's catalogue has an index with a second ledger page");
    // The same rows on the English form: its columns in another order, under English headings.
    const document = { ...french, id: `${french.id}-english-form`, pages: [{ ...frenchPage, form: "english" as const }] };
    const pdf = await openPdf(await renderScannedPdf(document));
    try {
      const context = { signal: new AbortController().signal, log: createLogger({ base: { test: "offline-ledger-english" }, level: "error" }) };
      const image = await rasterizePage(pdf, 1, { dpi: 300, ...provider.raster });
      const reply = await provider.extractIndexPage(image, pdf.pageCount, context);
      const rows = ledgerLines(reply);
      const truth = frenchPage.ledger;
      expect(rows).toHaveLength(truth.length);
      rows.forEach((row, index) => {
        const cells = row.split(/\s*\|\s*/);
        expect(cells, row).toHaveLength(6);
        // Each value in its own column whatever the form's order: the date in DATE, the number in NUM_PUB.
        expect(cells[2], row).toBe(truth[index]?.date);
        expect(cells[3], row).toBe(truth[index]?.numPub);
      });
      const truthRows = truth.map((line) => [line.parties, line.nature, line.date, line.numPub, line.radiation, line.remarques].join(" | "));
      expect(characterAccuracy(rows.join("\n"), truthRows.join("\n"))).toBeGreaterThanOrEqual(0.95);
      // The English headings are the column-header line, not a row nor the page header.
      expect(reply).not.toMatch(/NAMES OF PARTIES/);
      expect(headerLines(reply).join("\n")).toContain("Page 2 de 3");
    } finally {
      await pdf.dispose();
    }
  }, 90_000);
});
