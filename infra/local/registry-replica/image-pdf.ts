/**
 * A PDF whose pages are images and nothing else (no text layer), as a
 * scanner produces: what the registry serves and what the OCR runners must
 * read. Written by hand because the format needed is tiny (one JPEG per
 * page, drawn full-page) and so the bytes depend only on the images: no
 * creation date, no producer id, no random file id.
 */

export interface PdfPageImage {
  /** A baseline JPEG (what sharp's `.jpeg()` writes). */
  readonly jpeg: Uint8Array;
  readonly widthPx: number;
  readonly heightPx: number;
  /** 1 for grayscale, 3 for RGB. */
  readonly channels: 1 | 3;
  /** Resolution the page was rendered at; sets the page size in points. */
  readonly dpi: number;
}

export function imagesToPdf(pages: readonly PdfPageImage[]): Uint8Array {
  if (pages.length === 0) throw new Error("a PDF needs at least one page");
  const chunks: Uint8Array[] = [];
  const offsets: number[] = [];
  let length = 0;
  const push = (chunk: Uint8Array | string) => {
    const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
    chunks.push(bytes);
    length += bytes.length;
  };
  const startObject = (id: number) => {
    offsets[id] = length;
    push(`${id} 0 obj\n`);
  };

  // Object ids: 1 catalog, 2 page tree, then three per page (page, content, image).
  const pageId = (index: number) => 3 + index * 3;
  push("%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
  startObject(1);
  push("<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
  startObject(2);
  push(`<< /Type /Pages /Count ${pages.length} /Kids [${pages.map((_, index) => `${pageId(index)} 0 R`).join(" ")}] >>\nendobj\n`);
  pages.forEach((page, index) => {
    const widthPt = round2((page.widthPx * 72) / page.dpi);
    const heightPt = round2((page.heightPx * 72) / page.dpi);
    const id = pageId(index);
    startObject(id);
    push(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${widthPt} ${heightPt}] /Resources << /XObject << /Im0 ${id + 2} 0 R >> >> /Contents ${id + 1} 0 R >>\nendobj\n`,
    );
    const content = `q ${widthPt} 0 0 ${heightPt} 0 0 cm /Im0 Do Q\n`;
    startObject(id + 1);
    push(`<< /Length ${content.length} >>\nstream\n${content}endstream\nendobj\n`);
    startObject(id + 2);
    push(
      `<< /Type /XObject /Subtype /Image /Width ${page.widthPx} /Height ${page.heightPx} /ColorSpace /${page.channels === 1 ? "DeviceGray" : "DeviceRGB"} /BitsPerComponent 8 /Filter /DCTDecode /Length ${page.jpeg.length} >>\nstream\n`,
    );
    push(page.jpeg);
    push("\nendstream\nendobj\n");
  });
  const objectCount = 2 + pages.length * 3;
  const xrefOffset = length;
  push(`xref\n0 ${objectCount + 1}\n0000000000 65535 f \n`);
  for (let id = 1; id <= objectCount; id += 1) push(`${String(offsets[id]).padStart(10, "0")} 00000 n \n`);
  push(`trailer\n<< /Size ${objectCount + 1} /Root 1 0 R >>\nstartxref\n${xrefOffset}\n%%EOF\n`);

  const pdf = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    pdf.set(chunk, at);
    at += chunk.length;
  }
  return pdf;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
