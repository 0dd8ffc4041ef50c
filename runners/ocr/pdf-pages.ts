/**
 * PDF pages as images. sharp cannot read PDF, so poppler's `pdfinfo` (page
 * count, and the check that the file is a readable PDF at all) and
 * `pdftoppm` (rendering) run as separate programs: poppler is GPL, and
 * running its programs (not linking the library) keeps the runner's own
 * licence free, as running any command-line tool does.
 *
 * Two page paths (pdf-layout.ts decides): a page that is one embedded scan
 * goes as it is (`pdfimages`: a JPEG stays the same bytes, a 1-bit or plain
 * image is written as PNG), with no render and no re-encode; any other page
 * is rendered by `pdftoppm` at OCR_DPI, brought down to stay within the
 * per-page pixel cap, and encoded by sharp (upscaled only if asked).
 *
 * pdftoppm writes a raw grayscale PGM to stdout (no compression on either
 * side, no temporary image files); only the PDF itself goes to a temporary
 * folder, which `PdfFile.dispose` removes.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { FinalJobError, InfrastructureError, RetryableJobError } from "../lifecycle/job-errors.ts";
import { checkPdfLimits, embeddedScan, parseLayout, renderDpi, type PageLayout, type PdfLimits } from "./pdf-layout.ts";

export interface PageImage {
  /** 1-based. */
  readonly pageNumber: number;
  readonly bytes: Uint8Array;
  readonly mimeType: "image/jpeg" | "image/png";
  readonly width: number;
  readonly height: number;
}

export interface PdfFile {
  readonly path: string;
  readonly pageCount: number;
  readonly bytes: Uint8Array;
  /** Each page's size, rotation and images, when the PDF was opened with limits (else empty: every page is rendered). */
  readonly layout?: readonly PageLayout[];
  dispose(): Promise<void>;
}

/** Caps of a document and its pages: see pdf-layout.ts. Generous enough for any real ledger or deed. */
export const DEFAULT_PDF_LIMITS: PdfLimits = { maxPages: 300, maxPagePixels: 40_000_000, maxDocumentPixels: 2_000_000_000 };

export interface RasterOptions {
  readonly dpi: number;
  /** Scale after rendering (lanczos3); 1 keeps the rendered size. */
  readonly upscale: number;
  /** "jpeg" for Gemini (a tenth of PNG's bytes), "png" for Tesseract (lossless). @default "jpeg" */
  readonly format?: "jpeg" | "png";
  /** Send a page that is one embedded scan as it is (Gemini); false renders every page (Tesseract wants its DPI). @default false */
  readonly embedded?: boolean;
  /** The per-page pixel cap the render DPI comes down to. @default DEFAULT_PDF_LIMITS */
  readonly limits?: PdfLimits;
  readonly signal?: AbortSignal;
}

/** The longest a poppler program may run on one page or file before it counts as hung. */
const POPPLER_TIMEOUT_MS = 120_000;

/**
 * Writes the PDF to a temporary file and reads its page count. An empty,
 * truncated or non-PDF file is a `FinalJobError`: no retry can fix the bytes.
 * With `limits`, also reads each page's layout (pdf-layout.ts) and refuses a
 * document past the caps, before anything is sent anywhere.
 */
export async function openPdf(bytes: Uint8Array, signal?: AbortSignal, options?: { readonly limits: PdfLimits; readonly dpi: number }): Promise<PdfFile> {
  if (bytes.byteLength === 0) throw new FinalJobError("the stored PDF is empty (0 bytes): nothing to OCR; fetch the document again");
  if (!startsWithPdfHeader(bytes)) {
    throw new FinalJobError(`the stored file is not a PDF (it starts with ${JSON.stringify(Buffer.from(bytes.slice(0, 8)).toString("latin1"))}): fetch the document again`);
  }
  const folder = await mkdtemp(join(tmpdir(), "ocr-"));
  const dispose = () => rm(folder, { recursive: true, force: true });
  try {
    const path = join(folder, "document.pdf");
    await writeFile(path, bytes);
    const info = await runPoppler("pdfinfo", [path], signal);
    if (info.code !== 0) {
      throw new FinalJobError(`the stored PDF is corrupt: pdfinfo could not read it (${firstLine(info.stderr) || `exit ${info.code}`}); fetch the document again`);
    }
    const pages = /^Pages:\s+(\d+)\s*$/m.exec(info.stdout.toString("utf8"));
    const pageCount = pages?.[1] === undefined ? 0 : Number(pages[1]);
    if (pageCount < 1) throw new FinalJobError("the stored PDF has no pages: nothing to OCR; fetch the document again");
    if (options === undefined) return { path, pageCount, bytes, dispose };
    if (pageCount > options.limits.maxPages) checkPdfLimits(parseLayout(pageCount, "", ""), options.dpi, options.limits); // Refused before listing a hostile page count.
    const range = ["-f", "1", "-l", String(pageCount)];
    const [perPage, images] = await Promise.all([runPoppler("pdfinfo", [...range, path], signal), runPoppler("pdfimages", ["-list", ...range, path], signal)]);
    const layout = parseLayout(pageCount, perPage.stdout.toString("utf8"), images.code === 0 ? images.stdout.toString("utf8") : "");
    checkPdfLimits(layout, options.dpi, options.limits);
    return { path, pageCount, bytes, layout, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** One page as an image: its embedded scan as it is when it is one (and `embedded`), else rendered at `dpi` (capped), grayscale, encoded. */
export async function rasterizePage(pdf: PdfFile, pageNumber: number, options: RasterOptions): Promise<PageImage> {
  const limits = options.limits ?? DEFAULT_PDF_LIMITS;
  const page = pdf.layout?.[pageNumber - 1];
  const scan = page === undefined || options.embedded !== true ? undefined : embeddedScan(page, limits);
  if (scan !== undefined) {
    const extracted = await extractEmbedded(pdf, pageNumber, options.signal);
    if (extracted !== undefined) return { pageNumber, ...extracted, width: scan.width, height: scan.height };
  }
  const dpi = page === undefined ? options.dpi : renderDpi(page, options.dpi, limits);
  return renderPage(pdf, pageNumber, { ...options, dpi });
}

/** The page's one image as pdfimages writes it: JPEG as-is (-j), anything else as PNG (1-bit stays 1-bit). */
async function extractEmbedded(pdf: PdfFile, pageNumber: number, signal: AbortSignal | undefined): Promise<{ bytes: Uint8Array; mimeType: "image/jpeg" | "image/png" } | undefined> {
  const folder = dirname(pdf.path);
  const prefix = `page-${pageNumber}`;
  const result = await runPoppler("pdfimages", ["-f", String(pageNumber), "-l", String(pageNumber), "-j", "-png", pdf.path, join(folder, prefix)], signal);
  const written = (await readdir(folder)).filter((name) => name.startsWith(`${prefix}-`));
  try {
    const [file] = written;
    if (result.code !== 0 || written.length !== 1 || file === undefined) return undefined; // Rendered instead.
    const mimeType = file.endsWith(".jpg") ? "image/jpeg" : file.endsWith(".png") ? "image/png" : undefined;
    if (mimeType === undefined) return undefined;
    return { bytes: new Uint8Array(await readFile(join(folder, file))), mimeType };
  } finally {
    await Promise.all(written.map((name) => rm(join(folder, name), { force: true })));
  }
}

/** Renders one page at `dpi`, grayscale, upscales it if asked and encodes it. */
async function renderPage(pdf: PdfFile, pageNumber: number, options: RasterOptions): Promise<PageImage> {
  const rendered = await runPoppler("pdftoppm", ["-r", String(options.dpi), "-gray", "-f", String(pageNumber), "-l", String(pageNumber), pdf.path], options.signal);
  if (rendered.code !== 0) {
    throw new FinalJobError(`page ${pageNumber} of the stored PDF cannot be rendered (pdftoppm: ${firstLine(rendered.stderr) || `exit ${rendered.code}`}); fetch the document again`);
  }
  const { width, height, pixels } = parsePgm(rendered.stdout, pageNumber);
  let image = sharp(pixels, { raw: { width, height, channels: 1 } });
  const outWidth = Math.round(width * options.upscale);
  const outHeight = Math.round(height * options.upscale);
  if (options.upscale !== 1) image = image.resize(outWidth, outHeight, { kernel: "lanczos3" });
  // The resolution in the file's header, which Tesseract uses to size its text expectations.
  image = image.withDensity(options.dpi * options.upscale);
  const format = options.format ?? "jpeg";
  // No Huffman optimisation pass: it costs a third of the encode for a few % of bytes.
  const bytes = format === "jpeg" ? await image.jpeg({ quality: 88, optimiseCoding: false }).toBuffer() : await image.png({ compressionLevel: 1 }).toBuffer();
  return { pageNumber, bytes: new Uint8Array(bytes), mimeType: format === "jpeg" ? "image/jpeg" : "image/png", width: outWidth, height: outHeight };
}

function startsWithPdfHeader(bytes: Uint8Array): boolean {
  // The header may follow a few junk bytes; readers look in the first 1024.
  return Buffer.from(bytes.slice(0, 1024)).includes("%PDF-");
}

/** Binary PGM (P5, 8-bit) as pdftoppm -gray writes it. */
function parsePgm(data: Buffer, pageNumber: number): { width: number; height: number; pixels: Buffer } {
  const header = /^P5\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(data.subarray(0, 64).toString("latin1"));
  if (!header?.[1] || !header[2] || header[3] !== "255") {
    throw new FinalJobError(`page ${pageNumber} of the stored PDF rendered to no image (pdftoppm wrote ${data.byteLength} bytes)`);
  }
  const width = Number(header[1]);
  const height = Number(header[2]);
  const pixels = data.subarray(header[0].length, header[0].length + width * height);
  if (pixels.byteLength !== width * height) throw new FinalJobError(`page ${pageNumber} of the stored PDF rendered to a truncated image`);
  return { width, height, pixels };
}

function firstLine(text: Buffer): string {
  return (text.toString("utf8").split("\n").find((line) => line.trim() !== "") ?? "").trim().slice(0, 300);
}

interface PopplerResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

function runPoppler(program: "pdfinfo" | "pdftoppm" | "pdfimages", args: string[], signal: AbortSignal | undefined): Promise<PopplerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"], signal, timeout: POPPLER_TIMEOUT_MS });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") {
        // The image lacks poppler-utils: the task is broken, not the document.
        reject(new InfrastructureError(`${program} is not installed (poppler-utils): this runner cannot read PDFs`, { cause: error }));
      } else reject(error);
    });
    child.once("close", (code, killedBy) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      if (killedBy !== null) {
        // Stopped (its timeout, or the system short of memory): the task's trouble as much as the file's; another attempt decides.
        reject(new RetryableJobError(`${program} was stopped by ${killedBy} (limit ${POPPLER_TIMEOUT_MS / 1000} s) while reading the PDF`));
        return;
      }
      resolve({ code: code ?? 1, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) });
    });
  });
}
