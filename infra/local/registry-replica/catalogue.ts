/**
 * The documents the local registry replica knows, with the exact text each
 * PDF shows. Shared by the replica (what it serves), the registre tests
 * (byte-identical storage), the OCR tests (known text in image-only pages)
 * and the local demo. Anything not listed here gets the site's "does not
 * exist" answer.
 *
 * The text is fixed data, not random: every run renders the same pages.
 */
import { CIRCONSCRIPTIONS } from "./registry-options.ts";

export type CatalogueDocumentSource = "index" | "acte" | "plan_cadastraux";

/** The `extraction_queue` fields a row needs to fetch this document. */
export interface CatalogueRowFields {
  readonly document_source: CatalogueDocumentSource;
  readonly document_number: string;
  readonly circonscription_fonciere: string;
  readonly cadastre: string | null;
  readonly designation_secondaire: string | null;
  readonly acte_type: string | null;
}

/** One line of an index ledger page, in the columns the OCR extracts. */
export interface LedgerLine {
  readonly parties: string;
  readonly nature: string;
  readonly date: string;
  readonly numPub: string;
  readonly radiation: string;
  readonly remarques: string;
}

export interface CataloguePage {
  /** Lines above the table (index) or the whole page's lines (acte, plan), top to bottom. */
  readonly lines: readonly string[];
  /** Index pages only: the ledger table's lines, top to bottom. */
  readonly ledger?: readonly LedgerLine[];
  /**
   * Index pages only: the printed form. "english" is the English
   * pre-printed form, one of the five layouts the earlier implementation
   * knew (Paraito/registre-extractor, src/ocr/prompts.ts EXTRACT_PROMPT
   * before 88f0310; runners/ocr/prompts/index-extraction.md, layout 3):
   * DATE first, then NAMES OF PARTIES, NATURE OF THE DEED, REGISTRATION
   * No., REMARKS, DISCHARGES. @default "french" (LEDGER_COLUMNS)
   */
  readonly form?: "french" | "english";
}

/** A row of the acte search's similar-numbers list. */
export interface SimilarNumberRow {
  readonly number: string;
  readonly date: string;
  /** Paper-only documents cannot be downloaded; the runner must skip them. */
  readonly paperOnly: boolean;
  /** The catalogue document this row opens; absent for paper-only rows. */
  readonly documentId?: string;
}

/** A plan on the plan selection page. */
export interface PlanChoice {
  readonly planNumber: string;
  readonly description: string;
  /** "inactif" on the site; still downloadable, and not an error. */
  readonly inactive: boolean;
}

export interface CatalogueDocument {
  /** Stable id, used in URLs and cache file names. */
  readonly id: string;
  readonly row: CatalogueRowFields;
  readonly pages: readonly CataloguePage[];
  /** Acte searches that answer with the similar-numbers list instead of the document. */
  readonly similarNumbers?: readonly SimilarNumberRow[];
  /** Plans: the selection page's choices; the document is served for any of them. */
  readonly planChoices?: readonly PlanChoice[];
  /**
   * A large document: the site asks "Confirmer" (`13_01_13/pf_13_01_13_confr_demnd.asp`)
   * before serving it, whatever its type (PX src/worker/extractor-ai.ts:1972-2000, 2222).
   */
  readonly large?: boolean;
}

/**
 * Acte searches whose number the site does not have, answered with the
 * similar-numbers list only: a typo whose list offers only other numbers,
 * and a number that exists on paper only (BPD.GIF row). The runner must
 * fail both for good and never complete with another number.
 */
export interface SimilarOnlySearch {
  readonly number: string;
  readonly circonscription: string;
  readonly acteType: string;
  readonly rows: readonly SimilarNumberRow[];
}

export const SIMILAR_ONLY_SEARCHES: readonly SimilarOnlySearch[] = [
  {
    number: "12 345 687",
    circonscription: "Montréal",
    acteType: "Acte",
    rows: [
      { number: "12 345 678", date: "2019-05-14", paperOnly: false, documentId: "acte-12345678-montreal" },
      { number: "12 345 768", date: "2019-05-15", paperOnly: false },
    ],
  },
  {
    number: "5 555 555",
    circonscription: "Montréal",
    acteType: "Acte",
    rows: [
      { number: "5 555 555", date: "1972-08-02", paperOnly: true },
      { number: "5 555 556", date: "1972-08-02", paperOnly: false, documentId: "acte-12345678-montreal" },
    ],
  },
];

export function findSimilarOnlySearch(query: { number: string; circonscription: string; acteType: string }): SimilarOnlySearch | undefined {
  return SIMILAR_ONLY_SEARCHES.find(
    (search) => normalizedNumber(search.number) === normalizedNumber(query.number) && search.circonscription === query.circonscription && search.acteType === query.acteType,
  );
}

const LEDGER_HEADER = "PARTIES | NATURE | DATE | NUM_PUB | RADIATION | REMARQUES";
export const LEDGER_COLUMNS = ["PARTIES", "NATURE", "DATE", "NUM_PUB", "RADIATION", "REMARQUES"] as const;

function ledgerPageLines(circonscription: string, cadastre: string, lot: string, page: number, pages: number): string[] {
  return [
    "REGISTRE FONCIER DU QUÉBEC",
    "INDEX DES IMMEUBLES",
    `Circonscription foncière : ${circonscription}`,
    `Cadastre : ${cadastre}`,
    `Lot : ${lot}`,
    `Page ${page} de ${pages}`,
  ];
}

/** Index of lot 1 234 567, Montréal: three ledger pages. */
const INDEX_1234567_LEDGER: readonly (readonly LedgerLine[])[] = [
  [
    { parties: "Tremblay, Jean-Guy / Gagnon, Marie", nature: "Vente", date: "1978-04-12", numPub: "2 845 117", radiation: "", remarques: "" },
    { parties: "Banque Royale du Canada", nature: "Hypothèque", date: "1978-04-12", numPub: "2 845 118", radiation: "3 102 554", remarques: "125 000 $" },
    { parties: "Hydro-Québec", nature: "Servitude", date: "1981-09-03", numPub: "3 011 209", radiation: "", remarques: "Ligne aérienne" },
    { parties: "Ville de Montréal", nature: "Avis", date: "1983-02-21", numPub: "3 102 554", radiation: "", remarques: "Quittance" },
    { parties: "Gagnon, Marie / Roy, Pierre", nature: "Vente", date: "1986-06-30", numPub: "3 398 001", radiation: "", remarques: "" },
    { parties: "Caisse populaire Desjardins", nature: "Hypothèque", date: "1986-06-30", numPub: "3 398 002", radiation: "4 010 776", remarques: "98 500 $" },
    { parties: "Roy, Pierre", nature: "Déclaration", date: "1989-11-14", numPub: "3 712 450", radiation: "", remarques: "Résidence familiale" },
    { parties: "Caisse populaire Desjardins", nature: "Quittance", date: "1992-01-08", numPub: "4 010 776", radiation: "", remarques: "" },
  ],
  [
    { parties: "Roy, Pierre / Côté, Sylvie", nature: "Vente", date: "1994-05-19", numPub: "4 288 903", radiation: "", remarques: "" },
    { parties: "Banque Nationale du Canada", nature: "Hypothèque", date: "1994-05-19", numPub: "4 288 904", radiation: "5 120 338", remarques: "142 000 $" },
    { parties: "Ministère des Transports", nature: "Servitude", date: "1997-08-25", numPub: "4 801 662", radiation: "", remarques: "Égout pluvial" },
    { parties: "Côté, Sylvie", nature: "Préavis d'exercice", date: "1999-03-02", numPub: "5 004 217", radiation: "5 090 118", remarques: "" },
    { parties: "Côté, Sylvie", nature: "Mainlevée", date: "1999-10-27", numPub: "5 090 118", radiation: "", remarques: "" },
    { parties: "Banque Nationale du Canada", nature: "Quittance", date: "2000-06-15", numPub: "5 120 338", radiation: "", remarques: "" },
    { parties: "Côté, Sylvie / Lavoie, Marc", nature: "Vente", date: "2003-07-04", numPub: "10 533 871", radiation: "", remarques: "" },
  ],
  [
    { parties: "Banque de Montréal", nature: "Hypothèque", date: "2003-07-04", numPub: "10 533 872", radiation: "", remarques: "210 000 $" },
    { parties: "Lavoie, Marc", nature: "Déclaration de copropriété", date: "2008-02-11", numPub: "14 912 006", radiation: "", remarques: "" },
    { parties: "Hydro-Québec", nature: "Servitude", date: "2011-05-30", numPub: "18 224 519", radiation: "", remarques: "Poteau et haubans" },
    { parties: "Lavoie, Marc / Bouchard, Julie", nature: "Vente", date: "2016-09-09", numPub: "22 617 430", radiation: "", remarques: "" },
    { parties: "Banque Toronto-Dominion", nature: "Hypothèque", date: "2016-09-09", numPub: "22 617 431", radiation: "", remarques: "365 000 $" },
    { parties: "Bouchard, Julie", nature: "Avis d'adresse", date: "2016-10-03", numPub: "22 701 888", radiation: "", remarques: "" },
  ],
];

function indexDocument(id: string, lot: string, circonscription: string, cadastre: string, ledger: readonly (readonly LedgerLine[])[]): CatalogueDocument {
  return {
    id,
    row: { document_source: "index", document_number: lot, circonscription_fonciere: circonscription, cadastre, designation_secondaire: null, acte_type: null },
    pages: ledger.map((lines, index) => ({ lines: ledgerPageLines(circonscription, cadastre, lot, index + 1, ledger.length), ledger: lines })),
  };
}

/** A one-page deed: the documents other suites' rows name (lifecycle, operations and dispatch tests). */
function shortActe(number: string, circonscription: string, title: string, body: readonly string[]): CatalogueDocument {
  const id = `acte-${number.replace(/\s+/g, "")}-${circonscription.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase()}`;
  return {
    id,
    row: { document_source: "acte", document_number: number, circonscription_fonciere: circonscription, cadastre: null, designation_secondaire: null, acte_type: "Acte" },
    pages: [{ lines: ["REGISTRE FONCIER DU QUÉBEC", `Inscription numéro ${number}`, `Circonscription foncière de ${circonscription}`, "", title, "", ...body] }],
  };
}

export const REGISTRY_CATALOGUE: readonly CatalogueDocument[] = [
  indexDocument("index-1234567-montreal", "1 234 567", "Montréal", "Cadastre du Québec", INDEX_1234567_LEDGER),
  {
    id: "acte-12345678-montreal",
    row: { document_source: "acte", document_number: "12 345 678", circonscription_fonciere: "Montréal", cadastre: null, designation_secondaire: null, acte_type: "Acte" },
    pages: [
      {
        lines: [
          "REGISTRE FONCIER DU QUÉBEC",
          "Inscription numéro 12 345 678",
          "Circonscription foncière de Montréal",
          "",
          "ACTE DE VENTE",
          "",
          "L'AN DEUX MILLE CINQ, le quatorze mars,",
          "DEVANT Maître Hélène Bergeron, notaire à Montréal,",
          "",
          "COMPARAISSENT :",
          "Monsieur Jean-Guy TREMBLAY, domicilié au 1200, rue Sherbrooke Est,",
          "Montréal, ci-après appelé « le vendeur »;",
          "ET",
          "Madame Marie-Ève GAGNON, domiciliée au 45, avenue des Pins,",
          "Montréal, ci-après appelée « l'acheteur ».",
        ],
      },
      {
        lines: [
          "DÉSIGNATION",
          "Un immeuble connu et désigné comme étant le lot UN MILLION DEUX CENT",
          "TRENTE-QUATRE MILLE CINQ CENT SOIXANTE-SEPT (1 234 567) du Cadastre du",
          "Québec, circonscription foncière de Montréal.",
          "",
          "PRIX",
          "La présente vente est faite pour le prix de TROIS CENT DIX MILLE",
          "DOLLARS (310 000 $), payé comptant.",
          "",
          "DONT ACTE à Montréal, sous le numéro 8 412 des minutes du notaire.",
        ],
      },
    ],
  },
  {
    id: "acte-7654321-montreal",
    row: { document_source: "acte", document_number: "7 654 321", circonscription_fonciere: "Montréal", cadastre: null, designation_secondaire: null, acte_type: "Acte" },
    pages: [
      {
        lines: [
          "REGISTRE FONCIER DU QUÉBEC",
          "Inscription numéro 7 654 321",
          "Circonscription foncière de Montréal",
          "",
          "QUITTANCE ET MAINLEVÉE",
          "",
          "La CAISSE POPULAIRE DESJARDINS DU PLATEAU donne quittance",
          "et consent à la radiation de l'hypothèque publiée sous le",
          "numéro 3 398 002, pour la somme de 98 500 $.",
        ],
      },
    ],
    similarNumbers: [
      { number: "7 654 321", date: "1986-03-11", paperOnly: true },
      { number: "7 654 321", date: "2001-11-27", paperOnly: false, documentId: "acte-7654321-montreal" },
      { number: "7 654 312", date: "2001-11-26", paperOnly: false },
    ],
  },
  {
    id: "plan-2345678-quebec",
    row: { document_source: "plan_cadastraux", document_number: "2 345 678", circonscription_fonciere: "Québec", cadastre: "Cadastre du Québec", designation_secondaire: null, acte_type: null },
    pages: [
      {
        lines: [
          "PLAN CADASTRAL",
          "Cadastre du Québec — Circonscription foncière de Québec",
          "Lot 2 345 678",
          "Superficie : 612,4 m²",
          "Échelle 1 : 500",
          "Arpenteur-géomètre : Luc Pelletier, minute 4 127",
        ],
      },
    ],
    planChoices: [
      { planNumber: "2 345 678-A", description: "Rénovation cadastrale, 1998", inactive: true },
      { planNumber: "2 345 678", description: "Plan en vigueur, 2004", inactive: false },
    ],
    large: true,
  },
  {
    id: "plan-3456789-quebec",
    row: { document_source: "plan_cadastraux", document_number: "3 456 789", circonscription_fonciere: "Québec", cadastre: "Cadastre du Québec", designation_secondaire: null, acte_type: null },
    pages: [
      {
        lines: ["PLAN CADASTRAL (INACTIF)", "Cadastre du Québec — Circonscription foncière de Québec", "Lot 3 456 789", "Remplacé par les lots 4 001 122 et 4 001 123"],
      },
    ],
    planChoices: [{ planNumber: "3 456 789", description: "Plan remplacé, 1999", inactive: true }],
  },
  {
    id: "plan-2345678-laval",
    row: { document_source: "plan_cadastraux", document_number: "2 345 678", circonscription_fonciere: "Laval", cadastre: "Cadastre du Québec", designation_secondaire: null, acte_type: null },
    pages: [{ lines: ["PLAN CADASTRAL", "Cadastre du Québec — Circonscription foncière de Laval", "Lot 2 345 678", "Superficie : 1 024,0 m²", "Échelle 1 : 1 000"] }],
    planChoices: [{ planNumber: "2 345 678", description: "Plan en vigueur, 2011", inactive: false }],
  },
  {
    // A lot whose selection list offers only another plan number: the runner must not take it.
    id: "plan-4567890-quebec",
    row: { document_source: "plan_cadastraux", document_number: "4 567 890", circonscription_fonciere: "Québec", cadastre: "Cadastre du Québec", designation_secondaire: null, acte_type: null },
    pages: [{ lines: ["PLAN CADASTRAL", "Cadastre du Québec — Circonscription foncière de Québec", "Lot 4 567 809", "Échelle 1 : 500"] }],
    planChoices: [{ planNumber: "4 567 809", description: "Plan en vigueur, 2007", inactive: false }],
  },
  shortActe("1 111 111", "Laval", "ACTE DE DONATION", ["Madame Louise CHARBONNEAU donne à son fils Éric CHARBONNEAU", "le lot 4 412 903 du Cadastre du Québec."]),
  shortActe("2 222 222", "Laval", "ACTE D'HYPOTHÈQUE", ["La Banque Laurentienne du Canada consent un prêt de 250 000 $", "garanti par hypothèque sur le lot 4 412 903."]),
];

/** The text a reader of the document sees, page by page, in the OCR output's structure. */
export function catalogueDocumentText(document: CatalogueDocument): string {
  return document.pages
    .map((page, index) => {
      const lines = [`--- Page ${index + 1} ---`, ...page.lines.filter((line) => line !== "")];
      if (page.ledger !== undefined) {
        lines.push(LEDGER_HEADER);
        page.ledger.forEach((line, lineIndex) => {
          lines.push(`Ligne ${lineIndex + 1}: ${[line.parties, line.nature, line.date, line.numPub, line.radiation, line.remarques].join(" | ")}`);
        });
      }
      return lines.join("\n");
    })
    .join("\n");
}

const normalizedNumber = (value: string) => value.replace(/\s+/g, "");

/** The document a search names, if the catalogue has one. */
export function findCatalogueDocument(query: {
  source: CatalogueDocumentSource;
  number: string;
  circonscription: string;
  cadastre?: string;
  acteType?: string;
}): CatalogueDocument | undefined {
  return REGISTRY_CATALOGUE.find(
    (document) =>
      document.row.document_source === query.source &&
      normalizedNumber(document.row.document_number) === normalizedNumber(query.number) &&
      document.row.circonscription_fonciere === query.circonscription &&
      (query.cadastre === undefined || document.row.cadastre === query.cadastre) &&
      (query.acteType === undefined || document.row.acte_type === query.acteType),
  );
}

/** Whether lot `number` exists in another circonscription (the site says so differently). */
export function lotExistsElsewhere(source: CatalogueDocumentSource, number: string, circonscription: string): boolean {
  return REGISTRY_CATALOGUE.some(
    (document) =>
      document.row.document_source === source &&
      normalizedNumber(document.row.document_number) === normalizedNumber(number) &&
      document.row.circonscription_fonciere !== circonscription,
  );
}

// Every catalogue row names options the forms offer, or the replica could never serve it.
for (const document of REGISTRY_CATALOGUE) {
  const circonscription = CIRCONSCRIPTIONS.find((option) => option.name === document.row.circonscription_fonciere);
  if (circonscription === undefined || (document.row.cadastre !== null && !circonscription.cadastres.includes(document.row.cadastre))) {
    throw new Error(`catalogue document ${document.id} names a circonscription or cadastre the forms do not offer`);
  }
}
