/**
 * A ledger page as Tesseract read it in automatic page segmentation (PSM 3,
 * the command line's default; tesseract.js defaults to the API's single
 * block, which on the replica's ruled pages recovered 0–8 of 21–22 rows):
 * one text line per ledger row, each word with its position. This puts the
 * words back into the index's columns, using the column-header line
 * (PARTIES NATURE DATE NUM_PUB RADIATION REMARQUES, or the English
 * pre-printed forms' GRANTOR/GRANTEE, NATURE, DATE, REGISTRATION No.…) for
 * where each column starts; the lines above it are the page's header (lot,
 * cadastre, "Suite de la page…"). A page with no column header is plain
 * lines (a deed, a page Tesseract could not lay out).
 */

export interface OcrWord {
  readonly text: string;
  /** Left edge, px. */
  readonly x0: number;
}

export interface OcrLine {
  readonly words: readonly OcrWord[];
}

export interface LedgerReading {
  /** Lines above the column header (the page's header), as read. */
  readonly header: readonly string[];
  /** The ledger rows, six cells each (PARTIES | NATURE | DATE | NUM_PUB | RADIATION | REMARQUES); undefined when no column header was found. */
  readonly rows: readonly (readonly string[])[] | undefined;
  /** Every line as read, when the page is not a ledger. */
  readonly plain: readonly string[];
}

/**
 * Words that name each column, French and English pre-printed forms
 * (earlier implementation's layouts, runners/ocr/prompts/index-extraction.md:
 * the English form reads DATE OF THE REGISTRATION, NAMES OF PARTIES, NATURE
 * OF THE DEED, REGISTRATION No., REMARKS, DISCHARGES, in that order). The
 * first word of a heading that names a column marks where it starts.
 */
const COLUMN_NAMES: readonly (readonly string[])[] = [
  ["PARTIES", "PARTIE", "GRANTOR", "GRANTORS", "NOMS", "NAMES"],
  ["NATURE"],
  ["DATE"],
  ["NUM_PUB", "NUMÉRO", "NUMERO", "NO", "REGISTRATION", "ENREGISTREMENT", "PUBLICATION"],
  ["RADIATION", "RADIATIONS", "DISCHARGE", "DISCHARGES", "CANCELLATION"],
  ["REMARQUES", "REMARKS", "OBSERVATIONS"],
];

/** How far left of a column's heading a cell's first word may start (px at 300 DPI): ruled cells are padded, handwriting drifts. */
const COLUMN_SLACK_PX = 60;

export function readLedger(lines: readonly OcrLine[]): LedgerReading {
  const texts = lines.map((line) => cleanWords(line.words).map((word) => word.text).join(" ")).filter((text) => text !== "");
  const headerIndex = lines.findIndex((line) => columnStarts(line) !== undefined);
  const headerLine = headerIndex < 0 ? undefined : lines[headerIndex];
  const starts = headerLine === undefined ? undefined : columnStarts(headerLine);
  if (starts === undefined) return { header: [], rows: undefined, plain: texts };
  const header = lines.slice(0, headerIndex).map((line) => cleanWords(line.words).map((word) => word.text).join(" ")).filter((text) => text !== "");
  const rows: string[][] = [];
  for (const line of lines.slice(headerIndex + 1)) {
    const words = cleanWords(line.words);
    if (words.length === 0) continue;
    const cells: string[][] = starts.map(() => []);
    for (const word of words) {
      // The column starting furthest right that the word is not left of; forms differ in their order (DATE first on the English form).
      let column = 0;
      let columnStart = Number.NEGATIVE_INFINITY;
      starts.forEach((start, index) => {
        if (start !== undefined && word.x0 + COLUMN_SLACK_PX >= start && start > columnStart) {
          column = index;
          columnStart = start;
        }
      });
      cells[column]?.push(word.text);
    }
    rows.push(cells.map((cell) => cell.join(" ")));
  }
  return { header, rows, plain: texts };
}

/**
 * Where each of the six columns starts (in PARTIES … REMARQUES order), when
 * `line` is the column-header line (at least four column names found). A
 * column whose heading was not read has no start when the headings are not
 * in the French order: nothing says where it would be.
 */
function columnStarts(line: OcrLine): (number | undefined)[] | undefined {
  const found: (number | undefined)[] = COLUMN_NAMES.map(() => undefined);
  for (const word of cleanWords(line.words)) {
    const name = word.text.toUpperCase().replace(/[^A-ZÉÈ_]/g, "");
    const column = COLUMN_NAMES.findIndex((names) => names.includes(name));
    if (column >= 0 && found[column] === undefined) found[column] = word.x0;
  }
  const read = found.filter((x) => x !== undefined);
  if (read.length < 4) return undefined;
  if (read.some((x, index) => index > 0 && x < (read[index - 1] ?? 0))) return found;
  // A column whose heading was not read starts midway between its neighbours.
  const starts: (number | undefined)[] = [];
  for (let index = 0; index < found.length; index += 1) {
    const known = found[index];
    if (known !== undefined) {
      starts.push(known);
      continue;
    }
    const before = starts[index - 1] ?? 0;
    const after = found.slice(index + 1).find((x) => x !== undefined) ?? before + 400;
    starts.push(Math.round((before + after) / 2));
  }
  return starts;
}

/** Ruling read as text ("|", "¦", a lone "_") is not a word; a rule glued to a word ("|2") is peeled off. */
function cleanWords(words: readonly OcrWord[]): OcrWord[] {
  return words
    .map((word) => ({ text: word.text.replace(/^[|¦]+|[|¦]+$/g, ""), x0: word.x0 }))
    .filter((word) => word.text !== "" && !/^[|¦_—-]+$/.test(word.text));
}
