/**
 * PDFs made of page images with no text layer, as the registry's scans are,
 * so OCR tests really read pixels: each page's lines are drawn as SVG text
 * by sharp (DejaVu fonts) at 300 DPI and wrapped by the registry replica's
 * image-only PDF writer.
 */
import sharp from "sharp";
import { imagesToPdf, type PdfPageImage } from "../../infra/local/registry-replica/image-pdf.ts";

export interface TextPage {
  readonly lines: readonly string[];
  /** @default 44 px at 300 DPI (about 10.5 pt) */
  readonly fontSizePx?: number;
}

const DPI = 300;
const WIDTH_PX = Math.round(8.5 * DPI);
const HEIGHT_PX = Math.round(11 * DPI);
const MARGIN_PX = 150;

export async function textPageImage(page: TextPage): Promise<PdfPageImage> {
  const size = page.fontSizePx ?? 44;
  const step = Math.round(size * 1.6);
  const text = page.lines
    .map((line, index) => `<text x="${MARGIN_PX}" y="${MARGIN_PX + size + index * step}" font-family="DejaVu Sans" font-size="${size}" fill="#111">${escapeXml(line)}</text>`)
    .join("");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH_PX}" height="${HEIGHT_PX}"><rect width="100%" height="100%" fill="#fff"/>${text}</svg>`;
  const jpeg = await sharp(Buffer.from(svg), { density: 72 }).flatten({ background: "#ffffff" }).toColourspace("b-w").jpeg({ quality: 92 }).toBuffer();
  return { jpeg: new Uint8Array(jpeg), widthPx: WIDTH_PX, heightPx: HEIGHT_PX, channels: 1, dpi: DPI };
}

export async function textPagesPdf(pages: readonly TextPage[]): Promise<Uint8Array> {
  return imagesToPdf(await Promise.all(pages.map(textPageImage)));
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
