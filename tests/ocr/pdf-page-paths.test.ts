import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { imagesToPdf } from "../../infra/local/registry-replica/image-pdf.ts";
import { classifyFailure } from "../../runners/lifecycle/job-errors.ts";
import { openPdf, rasterizePage } from "../../runners/ocr/pdf-pages.ts";
import { textPageImage } from "../helpers/text-page-pdf.ts";

/**
 * The two page paths and the caps on hostile PDFs: a page that is one
 * embedded scan goes as the very bytes the PDF holds; any other page is
 * rendered at the DPI the pixel cap allows; a document past the caps is
 * refused when it is opened, before anything is sent.
 */

const LIMITS = { maxPages: 300, maxPagePixels: 40_000_000, maxDocumentPixels: 2_000_000_000 };

/** A PDF of vector pages (text drawn with Helvetica, no image), `size` points square or letter. */
function vectorPdf(pages: number, size: { w: number; h: number } = { w: 612, h: 792 }): Uint8Array {
  const objects: string[] = ["<< /Type /Catalog /Pages 2 0 R >>", ""];
  const kids: string[] = [];
  const font = 3;
  objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  for (let page = 0; page < pages; page += 1) {
    const stream = `BT /F1 24 Tf 72 ${size.h - 100} Td (Page ${page + 1} : Tremblay | Hypotheque) Tj ET`;
    objects.push(`<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`);
    const contentId = objects.length;
    objects.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${size.w} ${size.h}] /Resources << /Font << /F1 ${font} 0 R >> >> /Contents ${contentId} 0 R >>`);
    kids.push(`${objects.length} 0 R`);
  }
  objects[1] = `<< /Type /Pages /Kids [${kids.join(" ")}] /Count ${pages} >>`;
  let body = "%PDF-1.4\n";
  const offsets: number[] = [];
  objects.forEach((object, index) => {
    offsets.push(body.length);
    body += `${index + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xref = body.length;
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((offset) => `${String(offset).padStart(10, "0")} 00000 n \n`).join("")}`;
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return new TextEncoder().encode(body);
}

describe("PDF page paths", () => {
  it("sends a page that is one embedded scan as the very JPEG the PDF holds, and renders a vector page", async () => {
    const scan = await textPageImage({ lines: ["Côté, Élise | Hypothèque | 1998-03-12 | 1 234 567"] });
    const pdf = await openPdf(imagesToPdf([scan]), undefined, { limits: LIMITS, dpi: 300 });
    try {
      const fast = await rasterizePage(pdf, 1, { dpi: 300, upscale: 1, format: "jpeg", embedded: true, limits: LIMITS });
      expect(fast.mimeType).toBe("image/jpeg");
      expect(Buffer.from(fast.bytes).equals(Buffer.from(scan.jpeg))).toBe(true);
      expect([fast.width, fast.height]).toEqual([2550, 3300]);
      // The offline engine (embedded: false) still renders, at its DPI.
      const rendered = await rasterizePage(pdf, 1, { dpi: 150, upscale: 1, format: "png", limits: LIMITS });
      expect([rendered.mimeType, rendered.width, rendered.height]).toEqual(["image/png", 1275, 1650]);
    } finally {
      await pdf.dispose();
    }
    const vector = await openPdf(vectorPdf(1), undefined, { limits: LIMITS, dpi: 300 });
    try {
      const page = await rasterizePage(vector, 1, { dpi: 300, upscale: 1, format: "jpeg", embedded: true, limits: LIMITS });
      expect([page.mimeType, page.width, page.height]).toEqual(["image/jpeg", 2550, 3300]);
      expect((await sharp(page.bytes).stats()).channels[0]?.min).toBeLessThan(100); // The text was drawn.
    } finally {
      await vector.dispose();
    }
  });

  it("renders a page too large for the pixel cap at a lower DPI, bounded in memory", async () => {
    // 20 × 20 in: 36 megapixels at 300 DPI; a 9-megapixel cap brings it to 150 DPI.
    const pdf = await openPdf(vectorPdf(1, { w: 1440, h: 1440 }), undefined, { limits: { ...LIMITS, maxPagePixels: 9_000_000 }, dpi: 300 });
    try {
      const page = await rasterizePage(pdf, 1, { dpi: 300, upscale: 1, format: "jpeg", embedded: true, limits: { ...LIMITS, maxPagePixels: 9_000_000 } });
      expect([page.width, page.height]).toEqual([3000, 3000]);
    } finally {
      await pdf.dispose();
    }
  });

  it("refuses, when opened, a PDF past the caps: too many pages, a page too large to read, too many pixels in all", async () => {
    const refusal = async (bytes: Uint8Array, limits: typeof LIMITS) => classifyFailure(await openPdf(bytes, undefined, { limits, dpi: 300 }).then((pdf) => pdf.dispose(), (error: unknown) => error));
    expect(await refusal(vectorPdf(4), { ...LIMITS, maxPages: 3 })).toMatchObject({ disposition: "final", kind: "invalid_input", message: expect.stringContaining("4 pages, more than OCR_MAX_PAGES=3") });
    expect(await refusal(vectorPdf(1, { w: 14_400, h: 14_400 }), LIMITS)).toMatchObject({ disposition: "final", kind: "invalid_input", message: expect.stringMatching(/page 1 of the PDF is 200\.0 × 200\.0 in: it would need 31 DPI/) });
    expect(await refusal(vectorPdf(3), { ...LIMITS, maxDocumentPixels: 20_000_000 })).toMatchObject({ disposition: "final", kind: "invalid_input", message: expect.stringContaining("OCR_MAX_DOCUMENT_PIXELS=20000000") });
  });
});
