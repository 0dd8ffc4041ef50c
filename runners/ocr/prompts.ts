/**
 * The OCR prompts, kept as versioned French text files under prompts/ so a
 * change to a prompt is a reviewed change to the repository. Each file's
 * first line is `version: N`; the rest is the text, with `{{name}}`
 * placeholders filled per call. `<!-- … -->` blocks are the reasoning
 * behind the wording (where it comes from, what was dropped and why): kept
 * in the file for reviewers, never sent to the model. Read once, at first use.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const PROMPT_NAMES = ["index-line-count", "index-extraction", "index-extraction-retry", "index-boost", "acte-extraction", "acte-boost"] as const;
export type PromptName = (typeof PROMPT_NAMES)[number];

export interface Prompt {
  readonly name: PromptName;
  readonly version: number;
  readonly text: string;
}

const PROMPTS_DIR = join(dirname(fileURLToPath(import.meta.url)), "prompts");
const cache = new Map<PromptName, Prompt>();

export function loadPrompt(name: PromptName): Prompt {
  const cached = cache.get(name);
  if (cached !== undefined) return cached;
  const raw = readFileSync(join(PROMPTS_DIR, `${name}.md`), "utf8");
  const [first = "", ...rest] = raw.split("\n");
  const version = /^version:\s*(\d+)\s*$/.exec(first);
  if (!version?.[1]) throw new Error(`prompt ${name}.md must start with a "version: N" line`);
  const text = rest.join("\n").replace(/<!--[\s\S]*?-->\n?/g, "").trim();
  if (text.includes("<!--") || text.includes("-->")) throw new Error(`prompt ${name}.md has an unclosed <!-- comment -->`);
  const prompt = { name, version: Number(version[1]), text };
  cache.set(name, prompt);
  return prompt;
}

/** The prompt's text with every `{{key}}` replaced; a placeholder left unfilled is a bug. */
export function renderPrompt(name: PromptName, values: Readonly<Record<string, string | number>> = {}): string {
  const text = loadPrompt(name).text.replace(/\{\{(\w+)\}\}/g, (match, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`prompt ${name} needs a value for {{${key}}}`);
    return String(value);
  });
  return text.trim();
}
