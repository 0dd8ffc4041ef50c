/**
 * The deterministic subset of the boost's correction rules (domain §3): what
 * can be applied by pattern, without a model's judgement. The offline
 * engine's "boost" is exactly this; the Gemini boost is asked for the same
 * rules and more (OCR confusions in context, names), in prompts/.
 *
 * On index lines (`Ligne N: PARTIES | NATURE | DATE | NUM_PUB | RADIATION | REMARQUES`),
 * when NATURE is empty, illegible or doubtful:
 * - Hydro-Québec, Bell Canada or the transport ministry as a party → Servitude;
 * - a bank or caisse as a party and an amount on the line → Hypothèque;
 * - a radiation referring to a hypothec (by "hyp." or by the publication
 *   number of a Hypothèque line of the document) → Quittance.
 * DATE written d/m/yyyy, yyyy/m/d or yyyy.m.d becomes yyyy-mm-dd.
 * On any text: "Hydro-Quebec" / "Hydro Québec" → "Hydro-Québec", runs of
 * spaces collapsed, trailing spaces dropped. Nothing else is touched.
 */

const LINE = /^(Ligne\s+\d+\s*:\s*)(.*)$/;
const COLUMNS = 6;
const PARTIES = 0;
const NATURE = 1;
const DATE = 2;
const NUM_PUB = 3;
const RADIATION = 4;

const SERVITUDE_PARTY = /hydro-qu[ée]bec|bell canada|minist[èe]re des transports|\bMTQ\b/i;
const LENDER_PARTY = /\b(banque|caisse|desjardins|bank|fiducie|trust|cr[ée]dit)\b/i;
const AMOUNT = /\d[\d\s\u00a0.]*(,\d{2})?\s*\$|\$\s*\d/;
const HYPOTHEC_MENTION = /\bhyp(\.|oth[èe]que)/i;

export function normalizeText(text: string): string {
  return text
    .split("\n")
    .map((line) =>
      line
        .replace(/Hydro[\s-]+Qu[ée]bec/gi, "Hydro-Québec")
        .replace(/[ \t]{2,}/g, " ")
        .replace(/[ \t]+$/, ""),
    )
    .join("\n");
}

/** Applies the index rules to a whole `--- Page N ---` / `Ligne N:` document. */
export function applyIndexCorrectionRules(text: string): string {
  const lines = normalizeText(text).split("\n");
  const parsed = lines.map(parseLine);
  // First the natures that depend on the line alone, so a hypothec found here counts below.
  const guessed = new Set<number>();
  for (const [index, line] of parsed.entries()) {
    if (line === undefined) continue;
    const { columns } = line;
    columns[DATE] = isoDate(columns[DATE] ?? "");
    if (!natureUnknown(columns[NATURE] ?? "")) continue;
    const parties = columns[PARTIES] ?? "";
    if (SERVITUDE_PARTY.test(parties)) columns[NATURE] = "Servitude";
    else if (LENDER_PARTY.test(parties) && columns.some((column) => AMOUNT.test(column))) columns[NATURE] = "Hypothèque";
    else continue;
    guessed.add(index);
  }
  // Publication numbers of the document's hypothecs, so a radiation citing one is a quittance.
  const hypothecNumbers = parsed
    .flatMap((line) => (line !== undefined && /hypoth[èe]que/i.test(line.columns[NATURE] ?? "") ? [digits(line.columns[NUM_PUB] ?? "")] : []))
    .filter((number) => number !== "");
  for (const [index, line] of parsed.entries()) {
    if (line === undefined) continue;
    const { columns } = line;
    const radiation = columns[RADIATION] ?? "";
    const nature = columns[NATURE] ?? "";
    const radiatesHypothec = radiation !== "" && (HYPOTHEC_MENTION.test(radiation) || hypothecNumbers.some((number) => digits(radiation).includes(number)));
    if (radiatesHypothec && (natureUnknown(nature) || guessed.has(index))) columns[NATURE] = "Quittance";
  }
  return lines.map((original, index) => {
    const line = parsed[index];
    return line === undefined ? original : `${line.prefix}${line.columns.join(" | ")}`;
  }).join("\n");
}

function parseLine(line: string): { prefix: string; columns: string[] } | undefined {
  const match = LINE.exec(line);
  if (!match) return undefined;
  const columns = (match[2] ?? "").split("|").map((column) => column.trim());
  if (columns.length !== COLUMNS) return undefined;
  return { prefix: match[1] ?? "", columns };
}

function natureUnknown(nature: string): boolean {
  return nature === "" || nature.includes("[ILLISIBLE]") || nature.includes("[?]");
}

function digits(text: string): string {
  return text.replace(/\D/g, "");
}

function isoDate(date: string): string {
  const dayFirst = /^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$/.exec(date);
  if (dayFirst) return `${dayFirst[3]}-${pad(dayFirst[2])}-${pad(dayFirst[1])}`;
  const yearFirst = /^(\d{4})[/.](\d{1,2})[/.](\d{1,2})$/.exec(date);
  if (yearFirst) return `${yearFirst[1]}-${pad(yearFirst[2])}-${pad(yearFirst[3])}`;
  return date;
}

function pad(part: string | undefined): string {
  return (part ?? "").padStart(2, "0");
}
