/**
 * Matching a row's free text (`circonscription_fonciere`, `cadastre`, …)
 * against the options a registry select offers. Rows are typed by people:
 * "Montreal", "MONTRÉAL ", "cadastre du quebec" must all find the site's
 * "Montréal" and "Cadastre du Québec". Nothing looser than that: picking a
 * wrong circonscription would fetch someone else's document, so when no
 * option matches the job fails for good and the message lists the closest.
 */
import { OptionNotFoundError } from "./registry-failures.ts";

/** Accents, case, apostrophes, hyphens and runs of spaces do not matter. */
export function normalizeOptionText(text: string): string {
  return text
    .normalize("NFD")
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .replace(/[\s\-_'’.,]+/g, " ")
    .trim();
}

/** The option `wanted` names; throws OptionNotFoundError listing the closest options. */
export function matchOption(wanted: string, options: readonly string[], field: string): string {
  const key = normalizeOptionText(wanted);
  const matches = options.filter((option) => normalizeOptionText(option) === key);
  const [match] = matches;
  if (match !== undefined && matches.length === 1) return match;
  const closest = [...new Set(options)]
    .filter((option) => normalizeOptionText(option) !== "")
    .map((option) => ({ option, distance: levenshtein(key, normalizeOptionText(option)) }))
    .sort((a, b) => a.distance - b.distance)
    .slice(0, 3)
    .map((entry) => `"${entry.option}"`);
  const problem = matches.length > 1 ? "matches several" : "matches none";
  throw new OptionNotFoundError(`${field} "${wanted}" ${problem} of the registry's options; closest: ${closest.join(", ")}`);
}

export function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
