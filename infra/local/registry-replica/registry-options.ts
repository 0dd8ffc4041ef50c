/**
 * The choices the replica's search forms offer, spelled as the registry
 * spells them (accents, capitals, hyphens): the runner must match a row's
 * free-text `circonscription_fonciere` and `cadastre` against these.
 * Option values are the site's numeric codes, which the runner never needs
 * to know.
 */

export interface CirconscriptionOption {
  readonly code: string;
  readonly name: string;
  readonly cadastres: readonly string[];
}

const CADASTRE_DU_QUEBEC = "Cadastre du Québec";

export const CIRCONSCRIPTIONS: readonly CirconscriptionOption[] = [
  { code: "59", name: "Montréal", cadastres: [CADASTRE_DU_QUEBEC, "Cité de Montréal (quartier Saint-Antoine)", "Paroisse de Sault-au-Récollet"] },
  { code: "65", name: "Laval", cadastres: [CADASTRE_DU_QUEBEC, "Paroisse de Saint-Martin"] },
  { code: "23", name: "Québec", cadastres: [CADASTRE_DU_QUEBEC, "Cité de Québec", "Paroisse de Charlesbourg"] },
  { code: "21", name: "Lévis", cadastres: [CADASTRE_DU_QUEBEC] },
  { code: "44", name: "Sherbrooke", cadastres: [CADASTRE_DU_QUEBEC, "Canton d'Orford"] },
  { code: "37", name: "Trois-Rivières", cadastres: [CADASTRE_DU_QUEBEC] },
  { code: "64", name: "Terrebonne", cadastres: [CADASTRE_DU_QUEBEC] },
  { code: "61", name: "Joliette", cadastres: [CADASTRE_DU_QUEBEC] },
  { code: "94", name: "Chicoutimi", cadastres: [CADASTRE_DU_QUEBEC] },
  { code: "11", name: "Rimouski", cadastres: [CADASTRE_DU_QUEBEC] },
  { code: "73", name: "Gatineau", cadastres: [CADASTRE_DU_QUEBEC, "Canton de Hull"] },
  { code: "55", name: "Saint-Hyacinthe", cadastres: [CADASTRE_DU_QUEBEC] },
  { code: "57", name: "Longueuil", cadastres: [CADASTRE_DU_QUEBEC] },
];

/** `#selTypeDocmn` on the acte search page. */
export const ACTE_TYPES = ["Acte", "Avis d'adresse", "Radiation", "Acte divers"] as const;

/** `#selDesgnSecnd`: the empty choice first, as the site shows it. */
export const DESIGNATIONS_SECONDAIRES = ["", "Partie", "Bloc", "Rang"] as const;

export function circonscriptionByCode(code: string): CirconscriptionOption | undefined {
  return CIRCONSCRIPTIONS.find((option) => option.code === code);
}

export function circonscriptionByName(name: string): CirconscriptionOption | undefined {
  return CIRCONSCRIPTIONS.find((option) => option.name === name);
}

/**
 * A cadastre's option value: "000001" for Cadastre du Québec (SIRF-py
 * `_SIRF_SEARCH_FIELDS`, PX AI:1260 `specialValue: '000001'`); the other
 * cadastres' codes are not in the evidence, so the replica makes up codes
 * that cannot be mistaken for real ones.
 */
export function cadastreCode(name: string, index: number): string {
  return name === CADASTRE_DU_QUEBEC ? "000001" : `9${String(index).padStart(5, "0")}`;
}

export function cadastreByCode(circonscription: CirconscriptionOption, code: string): string | undefined {
  return circonscription.cadastres.find((name, index) => cadastreCode(name, index) === code);
}
