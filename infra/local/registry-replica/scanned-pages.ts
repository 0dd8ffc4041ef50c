/**
 * Renders catalogue documents as scans: each page an image at 300 DPI (no
 * text layer), off-white paper, a slight skew and specks, ledger pages with
 * ruled columns as the registry's microfilmed index books look. The text is
 * drawn with the system's DejaVu fonts by sharp's SVG renderer.
 *
 * Rendering takes about a second a page, so PDFs are cached on disk under a
 * name that changes whenever the document or this renderer changes.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import type { CatalogueDocument, CataloguePage } from "./catalogue.ts";
import { LEDGER_COLUMNS } from "./catalogue.ts";
import { imagesToPdf, type PdfPageImage } from "./image-pdf.ts";

/** Bump when the drawing changes, so cached PDFs are redrawn. */
const RENDERER_VERSION = 1;
export const SCAN_DPI = 300;
const PAGE_WIDTH_PX = Math.round(8.5 * SCAN_DPI);
const PAGE_HEIGHT_PX = Math.round(11 * SCAN_DPI);
const MARGIN_PX = 100;
/** Ledger column widths in px, in LEDGER_COLUMNS order (sum: page width less margins). */
const COLUMN_WIDTHS_PX = [700, 520, 250, 250, 250, 380] as const;

/**
 * The English pre-printed form (CataloguePage.form): its headings left to
 * right, the ledger field each column holds, and widths of the same sum.
 * "DATE OF THE REGISTRATION" is printed as "DATE": the replica draws one
 * heading line per cell and the full words would not fit the date column.
 */
const ENGLISH_FORM = {
  headings: ["DATE", "NAMES OF PARTIES", "NATURE OF THE DEED", "REGISTRATION No.", "REMARKS", "DISCHARGES"],
  fields: ["date", "parties", "nature", "numPub", "remarques", "radiation"],
  widthsPx: [250, 640, 480, 360, 370, 250],
} as const;

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** A small deterministic generator, so every run draws the same specks. */
function seededRandom(seed: string): () => number {
  let state = createHash("sha256").update(seed).digest().readUInt32LE(0) || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
}

function pageSvg(document: CatalogueDocument, page: CataloguePage, pageIndex: number): string {
  const random = seededRandom(`${document.id}/${pageIndex}`);
  const parts: string[] = [];
  const text = (x: number, y: number, content: string, size: number, weight = "normal", family = "DejaVu Serif") =>
    parts.push(`<text x="${x}" y="${y}" font-family="${family}" font-size="${size}" font-weight="${weight}" fill="#1b1b1b">${escapeXml(content)}</text>`);

  let y = MARGIN_PX + 60;
  const isLedger = page.ledger !== undefined;
  for (const [index, line] of page.lines.entries()) {
    const heading = index < 2 && isLedger;
    text(MARGIN_PX, y, line, heading ? 58 : 46, heading ? "bold" : "normal");
    y += heading ? 80 : 70;
  }

  if (page.ledger !== undefined) {
    y += 40;
    const rowHeight = 110;
    const tableTop = y;
    const tableRows = page.ledger.length + 1;
    const tableBottom = tableTop + tableRows * rowHeight;
    const english = page.form === "english";
    const widths: readonly number[] = english ? ENGLISH_FORM.widthsPx : COLUMN_WIDTHS_PX;
    const tableWidth = widths.reduce((sum, width) => sum + width, 0);
    // Ruled lines: rows, then the column separators.
    for (let row = 0; row <= tableRows; row += 1) {
      const lineY = tableTop + row * rowHeight;
      parts.push(`<line x1="${MARGIN_PX}" y1="${lineY}" x2="${MARGIN_PX + tableWidth}" y2="${lineY}" stroke="#333" stroke-width="${row <= 1 ? 5 : 3}"/>`);
    }
    let x = MARGIN_PX;
    for (let column = 0; column <= widths.length; column += 1) {
      parts.push(`<line x1="${x}" y1="${tableTop}" x2="${x}" y2="${tableBottom}" stroke="#333" stroke-width="3"/>`);
      x += widths[column] ?? 0;
    }
    const cells = (values: readonly string[], rowTop: number, bold: boolean) => {
      let cellX = MARGIN_PX;
      values.forEach((value, column) => {
        text(cellX + 16, rowTop + 72, value, 36, bold ? "bold" : "normal", "DejaVu Sans Condensed");
        cellX += widths[column] ?? 0;
      });
    };
    cells(english ? ENGLISH_FORM.headings : LEDGER_COLUMNS, tableTop, true);
    page.ledger.forEach((line, index) => {
      const values = english ? ENGLISH_FORM.fields.map((field) => line[field]) : [line.parties, line.nature, line.date, line.numPub, line.radiation, line.remarques];
      cells(values, tableTop + (index + 1) * rowHeight, false);
    });
  }

  if (document.row.document_source === "plan_cadastraux") {
    // The lot's outline, as a plan shows it.
    const top = y + 120;
    parts.push(`<polygon points="500,${top} 2000,${top + 80} 1900,${top + 1500} 600,${top + 1400}" fill="none" stroke="#222" stroke-width="8"/>`);
    text(1000, top + 760, document.row.document_number, 90, "bold");
    text(1150, top - 30, "38,21 m", 42);
    text(2010, top + 800, "16,03 m", 42);
  }

  for (let speck = 0; speck < 400; speck += 1) {
    const speckX = Math.floor(random() * PAGE_WIDTH_PX);
    const speckY = Math.floor(random() * PAGE_HEIGHT_PX);
    const radius = 1 + Math.floor(random() * 3);
    parts.push(`<circle cx="${speckX}" cy="${speckY}" r="${radius}" fill="#555" fill-opacity="0.5"/>`);
  }

  // A scanned sheet is never quite straight.
  const skew = ((random() - 0.5) * 0.8).toFixed(2);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${PAGE_WIDTH_PX}" height="${PAGE_HEIGHT_PX}" viewBox="0 0 ${PAGE_WIDTH_PX} ${PAGE_HEIGHT_PX}">
<rect width="100%" height="100%" fill="#f2eee2"/>
<g transform="rotate(${skew} ${PAGE_WIDTH_PX / 2} ${PAGE_HEIGHT_PX / 2})">${parts.join("")}</g>
</svg>`;
}

async function renderPage(document: CatalogueDocument, page: CataloguePage, pageIndex: number): Promise<PdfPageImage> {
  const jpeg = await sharp(Buffer.from(pageSvg(document, page, pageIndex)), { density: 72 })
    .flatten({ background: "#ffffff" })
    .toColourspace("b-w")
    .jpeg({ quality: 82, chromaSubsampling: "4:4:4" })
    .toBuffer();
  return { jpeg: new Uint8Array(jpeg), widthPx: PAGE_WIDTH_PX, heightPx: PAGE_HEIGHT_PX, channels: 1, dpi: SCAN_DPI };
}

/** The document as an image-only PDF. */
export async function renderScannedPdf(document: CatalogueDocument): Promise<Uint8Array> {
  const pages: PdfPageImage[] = [];
  for (const [index, page] of document.pages.entries()) pages.push(await renderPage(document, page, index));
  return imagesToPdf(pages);
}

/** Cache file name: changes when the document's content or the renderer changes. */
export function scannedPdfCacheName(document: CatalogueDocument): string {
  const digest = createHash("sha256").update(JSON.stringify({ RENDERER_VERSION, document })).digest("hex").slice(0, 16);
  return `${document.id}-${digest}.pdf`;
}

/** The document's PDF from `cacheDir`, rendering and caching it on first use. */
export async function cachedScannedPdf(document: CatalogueDocument, cacheDir: string): Promise<{ path: string; bytes: Uint8Array }> {
  const path = join(cacheDir, scannedPdfCacheName(document));
  try {
    return { path, bytes: new Uint8Array(await readFile(path)) };
  } catch (error) {
    if (!(error instanceof Error && "code" in error && error.code === "ENOENT")) throw error;
  }
  const bytes = await renderScannedPdf(document);
  await mkdir(cacheDir, { recursive: true });
  // Renamed into place so a concurrent reader (another test file) never sees half a PDF.
  const temporary = `${path}.${process.pid}.${Date.now()}.partial`;
  await writeFile(temporary, bytes);
  await rename(temporary, path);
  return { path, bytes };
}
