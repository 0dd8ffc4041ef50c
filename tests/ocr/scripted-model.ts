/**
 * A scripted "model" for the Gemini test server: it answers the OCR
 * runner's prompts (recognised by their French wording and page numbers) as
 * a perfect reader of documents whose true content the test knows. Tests
 * change its answers to play short pages and failures.
 */
import type { GeminiGenerateRequest, GeminiScriptedReply } from "../helpers/gemini-test-server.ts";

export type PromptKind = "line-count" | "index-extraction" | "index-boost" | "acte-extraction" | "acte-boost" | "unknown";

export function promptKind(request: GeminiGenerateRequest): PromptKind {
  const text = request.text;
  if (text.includes("Compte les lignes")) return "line-count";
  if (text.includes("Tu transcris une page numérisée d'un index")) return "index-extraction";
  if (text.includes("Tu corriges la transcription OCR d'une page d'un index")) return "index-boost";
  if (text.includes("Tu transcris un acte")) return "acte-extraction";
  if (text.includes("Tu corriges la transcription OCR d'un acte")) return "acte-boost";
  return "unknown";
}

/** The page number a per-page prompt names ("page 3 sur 5"). */
export function promptPage(request: GeminiGenerateRequest): number {
  const match = /\(page (\d+) sur \d+\)/.exec(request.text);
  if (!match?.[1]) throw new Error(`no page number in the prompt: ${request.text.slice(0, 120)}`);
  return Number(match[1]);
}

/** The text a boost prompt asks to correct. */
export function boostInput(request: GeminiGenerateRequest): string {
  const at = request.text.indexOf("Texte à corriger :");
  if (at < 0) throw new Error("no text to correct in the boost prompt");
  return request.text.slice(at + "Texte à corriger :".length).trim();
}

export interface ScriptedDocuments {
  /** Ledger lines of each index page (PARTIES | NATURE | DATE | NUM_PUB | RADIATION | REMARQUES), page 1 first. */
  readonly indexPages: readonly (readonly string[])[];
  /** The acte's text. */
  readonly acteText: string;
  /** Lines the extraction leaves out of a page, first read and retry (page → [first, retry]). */
  readonly dropLines?: ReadonlyMap<number, readonly [number, number]>;
}

/** Marks a boosted text, so tests can tell the boost ran on it. */
export const BOOST_MARK = "(corrigé)";

export function scriptedModel(documents: ScriptedDocuments): (request: GeminiGenerateRequest) => GeminiScriptedReply {
  return (request) => {
    switch (promptKind(request)) {
      case "line-count": {
        const lines = documents.indexPages[promptPage(request) - 1] ?? [];
        return JSON.stringify({ total_lines: lines.length, confidence: 0.97 });
      }
      case "index-extraction": {
        const page = promptPage(request);
        const lines = documents.indexPages[page - 1] ?? [];
        const retry = request.text.includes("ATTENTION");
        const drop = documents.dropLines?.get(page)?.[retry ? 1 : 0] ?? 0;
        return lines
          .slice(0, lines.length - drop)
          .map((line, index) => `Ligne ${index + 1}: ${line}`)
          .join("\n");
      }
      case "index-boost":
        return boostInput(request).replace(/ \| \[ILLISIBLE\] \| /g, " | Servitude | ").replace(/^(--- Page 1 ---)$/m, `$1\n${BOOST_MARK}`);
      case "acte-extraction":
        if (request.fileUris.length !== 1) return { error: { code: 400, message: "the acte extraction must refer to one uploaded file" } };
        return documents.acteText;
      case "acte-boost":
        return `${boostInput(request)}\n${BOOST_MARK}`;
      case "unknown":
        return { error: { code: 400, message: `unexpected prompt: ${request.text.slice(0, 80)}` } };
    }
  };
}
