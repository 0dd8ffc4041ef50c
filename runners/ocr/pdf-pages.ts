/**
 * PDF pages as images. sharp cannot read PDF, so poppler's `pdfinfo` (page
 * count, and the check that the file is a readable PDF at all) and
 * `pdftoppm` (rendering) run as separate programs: poppler is GPL, and
 * running its programs (not linking the library) keeps the runner's own
 * licence free, as running any command-line tool does. sharp then upscales
 * with lanczos3 and encodes the image sent to the OCR engine.
 *
 * pdftoppm writes a raw grayscale PGM to stdout (no compression on either
 * side, no temporary image files); only the PDF itself goes to a temporary
 * folder, which `PdfFile.dispose` removes.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { FinalJobError, InfrastructureError, RetryableJobError } from "../lifecycle/job-errors.ts";

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
  dispose(): Promise<void>;
}

export interface RasterOptions {
  readonly dpi: number;
  /** Scale after rendering (lanczos3); 1 keeps the rendered size. */
  readonly upscale: number;
  /** "jpeg" for Gemini (a tenth of PNG's bytes), "png" for Tesseract (lossless). @default "jpeg" */
  readonly format?: "jpeg" | "png";
  readonly signal?: AbortSignal;
}

/** The longest a poppler program may run on one page or file before it counts as hung. */
const POPPLER_TIMEOUT_MS = 120_000;

/**
 * Writes the PDF to a temporary file and reads its page count. An empty,
 * truncated or non-PDF file is a `FinalJobError`: no retry can fix the bytes.
 */
export async function openPdf(bytes: Uint8Array, signal?: AbortSignal): Promise<PdfFile> {
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
    return { path, pageCount, bytes, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** Renders one page at `dpi`, grayscale, upscales it and encodes it. */
export async function rasterizePage(pdf: PdfFile, pageNumber: number, options: RasterOptions): Promise<PageImage> {
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

function runPoppler(program: "pdfinfo" | "pdftoppm", args: string[], signal: AbortSignal | undefined): Promise<PopplerResult> {
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
