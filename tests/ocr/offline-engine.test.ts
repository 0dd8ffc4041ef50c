import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "../../runners/lifecycle/structured-log.ts";
import { applyIndexCorrectionRules } from "../../runners/ocr/correction-rules.ts";
import { openPdf, rasterizePage } from "../../runners/ocr/pdf-pages.ts";
import { OfflineOcrProvider } from "../../runners/ocr/providers/offline-provider.ts";
import { textPagesPdf } from "../helpers/text-page-pdf.ts";

/** A French page as the registry's deeds read: accents, Ç, €, $, dates, amounts. */
const FRENCH_PAGE = [
  "Acte de vente reçu devant Maître Hélène Côté, notaire",
  "FRANÇOIS GAGNÉ vend à SOCIÉTÉ IMMOBILIÈRE ÇA VA INC.",
  "Prix : 245 000,00 $ et frais de 1 250,50 €",
  "Signé à Québec le 12 mars 1987 (1987-03-12)",
  "Lot 3 456 789, cadastre du Québec, Trois-Rivières",
];

describe("the offline OCR engine (Tesseract, French model from node_modules)", () => {
  const provider = new OfflineOcrProvider(300);
  afterAll(() => provider.close());

  it("reads a generated French page of an image-only PDF exactly", async () => {
    const pdf = await openPdf(await textPagesPdf([{ lines: FRENCH_PAGE }]));
    try {
      const context = { signal: new AbortController().signal, log: createLogger({ base: { test: "offline" }, level: "error" }) };
      const image = await rasterizePage(pdf, 1, { dpi: 300, ...provider.raster });
      expect(await provider.countIndexLines(image, 1, context)).toMatchObject({ totalLines: FRENCH_PAGE.length });
      const text = await provider.extractIndexPage(image, 1, context);
      expect(text).toBe(FRENCH_PAGE.map((line, index) => `Ligne ${index + 1}: ${line}`).join("\n"));
    } finally {
      await pdf.dispose();
    }
  }, 60_000);
});

describe("the deterministic correction rules (the offline boost)", () => {
  it("sets the nature from the parties, the amount and the radiation, and writes dates as yyyy-mm-dd", () => {
    const raw = [
      "--- Page 1 ---",
      "Ligne 1: Hydro Quebec ; Roy, Marie |  | 12/03/1987 | 1 234 567 |  | ",
      "Ligne 2: Caisse Desjardins de Lévis ; Roy, Marie | [ILLISIBLE] | 1990/5/2 | 2 345 678 |  | 80 000,00 $",
      "Ligne 3: Roy, Marie | [?] | 1999-01-15 | 3 456 789 | rad. 2 345 678 | ",
      "Ligne 4: Roy, Marie ; Banque de Montréal | Vente | 2001-06-01 | 4 567 890 |  | 150 000,00 $",
      "[PAGE INCOMPLÈTE : 4 ligne(s) extraite(s) sur 5 comptée(s) ; vérifier la page d'origine]",
    ].join("\n");
    expect(applyIndexCorrectionRules(raw).split("\n")).toEqual([
      "--- Page 1 ---",
      "Ligne 1: Hydro-Québec ; Roy, Marie | Servitude | 1987-03-12 | 1 234 567 |  | ",
      "Ligne 2: Caisse Desjardins de Lévis ; Roy, Marie | Hypothèque | 1990-05-02 | 2 345 678 |  | 80 000,00 $",
      "Ligne 3: Roy, Marie | Quittance | 1999-01-15 | 3 456 789 | rad. 2 345 678 | ",
      // A nature that was read is never overwritten.
      "Ligne 4: Roy, Marie ; Banque de Montréal | Vente | 2001-06-01 | 4 567 890 |  | 150 000,00 $",
      "[PAGE INCOMPLÈTE : 4 ligne(s) extraite(s) sur 5 comptée(s) ; vérifier la page d'origine]",
    ]);
  });
});
