/**
 * What a PDF's pages are made of, read once when it is opened, from
 * poppler's own listings (two processes per document, not per page):
 * - `pdfinfo -f 1 -l N`: each page's size in points and its rotation
 *   ("Page    1 size:  612 x 792 pts", "Page    1 rot:   0");
 * - `pdfimages -list`: each image drawn, with its page, type (image, mask,
 *   smask, stencil), pixel size, colour space, bits per component,
 *   encoding (jpeg, jpx, ccitt, jbig2, image) and resolution on the page.
 *
 * From them: whether a page is one embedded scan that can go to Gemini as it
 * is (the fast path: no render, no re-encode), and the caps that keep a
 * hostile PDF from costing memory or Gemini calls (checked before any call):
 * pages per document, pixels per page (the render DPI comes down to fit),
 * pixels per document.
 */
import { FinalJobError } from "../lifecycle/job-errors.ts";

export interface PageLayout {
  /** 1-based. */
  readonly pageNumber: number;
  readonly widthPt: number;
  readonly heightPt: number;
  readonly rotation: number;
  /** The images drawn on the page (`type` "image" only: masks are not pictures). */
  readonly images: readonly EmbeddedImage[];
}

export interface EmbeddedImage {
  readonly width: number;
  readonly height: number;
  readonly color: string;
  readonly bitsPerComponent: number;
  readonly encoding: string;
  readonly xPpi: number;
  readonly yPpi: number;
}

export interface PdfLimits {
  /** Most pages a document may have (OCR_MAX_PAGES). */
  readonly maxPages: number;
  /** Most pixels one page may be rendered or sent at (OCR_MAX_PAGE_PIXELS): bounds memory per page. */
  readonly maxPagePixels: number;
  /** Most pixels all pages together may be rendered or sent at (OCR_MAX_DOCUMENT_PIXELS). */
  readonly maxDocumentPixels: number;
}

/** An embedded image may hold at most this many pages' worth (OCR_MAX_PAGE_PIXELS) of pixels before it is refused undecoded. */
export const MAX_IMAGE_PAGE_FACTOR = 10;

/** Lowest DPI a page may be brought down to for the per-page cap: below it, the page is unreadable anyway. */
export const MIN_RENDER_DPI = 100;

/** Parses `pdfinfo -f 1 -l N` and `pdfimages -list` into one layout per page. */
export function parseLayout(pageCount: number, info: string, imageList: string): PageLayout[] {
  const sizes = new Map<number, { w: number; h: number }>();
  for (const match of info.matchAll(/^Page\s+(\d+)\s+size:\s+([\d.]+)\s+x\s+([\d.]+)\s+pts/gm)) sizes.set(Number(match[1]), { w: Number(match[2]), h: Number(match[3]) });
  const rotations = new Map<number, number>();
  for (const match of info.matchAll(/^Page\s+(\d+)\s+rot:\s+(\d+)/gm)) rotations.set(Number(match[1]), Number(match[2]));
  const images = new Map<number, EmbeddedImage[]>();
  for (const line of imageList.split("\n")) {
    // page num type width height color comp bpc enc interp object ID x-ppi y-ppi size ratio
    const [pageCell, , type, width, height, color, , bpc, encoding, , , , xPpi, yPpi] = line.trim().split(/\s+/);
    if (pageCell === undefined || !/^\d+$/.test(pageCell) || type !== "image" || color === undefined || encoding === undefined || yPpi === undefined) continue;
    const page = Number(pageCell);
    const list = images.get(page) ?? [];
    list.push({ width: Number(width), height: Number(height), color, bitsPerComponent: Number(bpc), encoding, xPpi: Number(xPpi), yPpi: Number(yPpi) });
    images.set(page, list);
  }
  return Array.from({ length: pageCount }, (_, index) => {
    const pageNumber = index + 1;
    // A page pdfinfo did not size is taken as US letter (the registry's scans).
    const size = sizes.get(pageNumber) ?? { w: 612, h: 792 };
    return { pageNumber, widthPt: size.w, heightPt: size.h, rotation: rotations.get(pageNumber) ?? 0, images: images.get(pageNumber) ?? [] };
  });
}

/**
 * The page's one embedded scan when it can go as it is: a single picture
 * covering the page (its size at its resolution is the page's, within 3 %),
 * upright, in a format Gemini reads once extracted (JPEG kept as JPEG;
 * 1-bit CCITT/JBIG2 and plain images written as PNG; JPEG 2000 and CMYK
 * JPEG are rendered instead), within the per-page pixel cap.
 */
export function embeddedScan(page: PageLayout, limits: PdfLimits): EmbeddedImage | undefined {
  if (page.rotation % 360 !== 0 || page.images.length !== 1) return undefined;
  const [image] = page.images;
  if (image === undefined) return undefined;
  if (!["jpeg", "ccitt", "jbig2", "image"].includes(image.encoding)) return undefined;
  if (image.encoding === "jpeg" && !["gray", "rgb"].includes(image.color)) return undefined;
  if (image.width * image.height > limits.maxPagePixels || image.xPpi <= 0 || image.yPpi <= 0) return undefined;
  const covers = (pixels: number, ppi: number, points: number) => Math.abs((pixels / ppi) * 72 - points) <= points * 0.03;
  return covers(image.width, image.xPpi, page.widthPt) && covers(image.height, image.yPpi, page.heightPt) ? image : undefined;
}

/** The DPI a page renders at: `dpi`, brought down so the page stays within the per-page pixel cap. */
export function renderDpi(page: PageLayout, dpi: number, limits: PdfLimits): number {
  const squareInches = (page.widthPt / 72) * (page.heightPt / 72);
  const fitting = Math.floor(Math.sqrt(limits.maxPagePixels / Math.max(squareInches, 1e-6)));
  return Math.min(dpi, fitting);
}

/**
 * Refuses, before any Gemini call, a document past the caps: too many pages,
 * a page too large to read even at MIN_RENDER_DPI, or more pixels in all
 * than OCR_MAX_DOCUMENT_PIXELS. A FinalJobError (invalid_input) naming the
 * figure and the variable: no retry changes the file.
 */
export function checkPdfLimits(pages: readonly PageLayout[], dpi: number, limits: PdfLimits): void {
  if (pages.length > limits.maxPages) {
    throw new FinalJobError(`the PDF has ${pages.length} pages, more than OCR_MAX_PAGES=${limits.maxPages}: not sent to OCR; check the document (or raise OCR_MAX_PAGES)`, { kind: "invalid_input" });
  }
  let total = 0;
  for (const page of pages) {
    // Decoding an image costs its full pixel count whatever size it is drawn at: a small Flate stream can
    // declare gigapixels of zeros (a decompression bomb), which pdftoppm and pdfimages would then inflate.
    // No real scan comes near MAX_IMAGE_PAGE_FACTOR pages' worth of pixels (a 1200 DPI legal page is 171 MP).
    const bomb = page.images.find((image) => image.width * image.height > limits.maxPagePixels * MAX_IMAGE_PAGE_FACTOR);
    if (bomb !== undefined) {
      throw new FinalJobError(
        `page ${page.pageNumber} of the PDF holds an image of ${bomb.width} × ${bomb.height} pixels (${Math.round((bomb.width * bomb.height) / 1e6)} megapixels), more than ${MAX_IMAGE_PAGE_FACTOR} × OCR_MAX_PAGE_PIXELS=${limits.maxPagePixels}: not decoded (a decompression bomb or a broken scan); check the document`,
        { kind: "invalid_input" },
      );
    }
    const scan = embeddedScan(page, limits);
    const effective = renderDpi(page, dpi, limits);
    if (scan === undefined && effective < MIN_RENDER_DPI) {
      const inches = `${(page.widthPt / 72).toFixed(1)} × ${(page.heightPt / 72).toFixed(1)} in`;
      throw new FinalJobError(`page ${page.pageNumber} of the PDF is ${inches}: it would need ${effective} DPI to stay within OCR_MAX_PAGE_PIXELS=${limits.maxPagePixels}, below the ${MIN_RENDER_DPI} DPI a page can be read at`, { kind: "invalid_input" });
    }
    total += scan === undefined ? Math.round((page.widthPt / 72) * effective) * Math.round((page.heightPt / 72) * effective) : scan.width * scan.height;
  }
  if (total > limits.maxDocumentPixels) {
    throw new FinalJobError(`the PDF's ${pages.length} pages come to ${Math.round(total / 1e6)} megapixels, more than OCR_MAX_DOCUMENT_PIXELS=${limits.maxDocumentPixels}: not sent to OCR`, { kind: "invalid_input" });
  }
}
