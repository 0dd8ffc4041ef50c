/**
 * The HTML of the replica's pages: the registry's page structure, field ids,
 * button labels and messages, in the site's plain table-and-form style.
 * Only what a runner (or a person trying the local stack) relies on is
 * reproduced; the wording of messages is the site's.
 */
import type { PlanChoice, SimilarNumberRow } from "./catalogue.ts";
import { ACTE_TYPES, CIRCONSCRIPTIONS, DESIGNATIONS_SECONDAIRES, type CirconscriptionOption } from "./registry-options.ts";

export const SCRIPT_PATH = "/Sirf/Script/13_01_11";
export const LOGIN_PATH = "/Sirf/Script/14_06_01/pf_14_06_01_reglr.asp";
export const PAGE_PATHS = {
  entry: "/Sirf/",
  login: LOGIN_PATH,
  menu: `${SCRIPT_PATH}/pf_13_01_11_01_menu.asp`,
  index: `${SCRIPT_PATH}/pf_13_01_11_02_indx_immbl.asp`,
  acte: `${SCRIPT_PATH}/pf_13_01_11_08_reqst.asp`,
  plan: `${SCRIPT_PATH}/pf_13_01_11_10_plan_cadst.asp`,
  resultMenu: `${SCRIPT_PATH}/pf_13_01_11_05_menu_resul.asp`,
  resultPage: `${SCRIPT_PATH}/pf_13_01_11_06_page_resul.asp`,
  download: `${SCRIPT_PATH}/pf_13_01_11_07_telch.asp`,
} as const;

/** The site's messages, word for word (cell `td.contValErr`). */
export const SITE_MESSAGES = {
  ficheInexistante: "La fiche immobilière demandée est inexistante",
  aucuneInformation: "Aucune information ne correspond aux critères de sélection",
  documentInexistant: "Le document demandé est inexistant",
  lotHorsCirconscription: "Le lot n'existe pas dans la circonscription foncière demandée",
  loginRefused: "Le code d'utilisateur ou le mot de passe est invalide",
  sessionExpired: "Votre session est expirée. Veuillez vous identifier de nouveau.",
  similarNumbers: "Nous vous proposons une liste de document(s) dont le numéro est semblable",
  paperOnly: "Document disponible sur support papier seulement",
} as const;

export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function layout(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>${escapeHtml(title)} - Registre foncier du Québec en ligne</title></head>
<body><table width="100%"><tr><td class="titre">Registre foncier du Québec en ligne</td></tr></table>
${body}
</body></html>`;
}

function errorCell(message: string | undefined): string {
  return message === undefined ? "" : `<table><tr><td class="contValErr">${escapeHtml(message)}</td></tr></table>`;
}

export function entryPage(notice?: string): string {
  return layout(
    "Accueil",
    `${errorCell(notice)}<p>Bienvenue au Registre foncier du Québec en ligne.</p>
<p><a href="${PAGE_PATHS.login}">Entrer dans le Registre foncier</a></p>`,
  );
}

export function loginPage(error?: string): string {
  return layout(
    "Identification",
    `${errorCell(error)}<form method="post" action="${PAGE_PATHS.login}"><table>
<tr><td><label for="txtCodeUtils">Code d'utilisateur</label></td><td><input type="text" id="txtCodeUtils" name="txtCodeUtils" maxlength="20"></td></tr>
<tr><td><label for="txtMotPasse">Mot de passe</label></td><td><input type="password" id="txtMotPasse" name="txtMotPasse" maxlength="30"></td></tr>
<tr><td colspan="2"><input type="submit" name="btnSoumettre" value="Soumettre"></td></tr>
</table></form>`,
  );
}

export function menuPage(): string {
  return layout(
    "Menu",
    `<ul>
<li><a href="${PAGE_PATHS.index}">Index des immeubles</a></li>
<li><a href="${PAGE_PATHS.acte}">Acte, avis ou radiation (réquisition)</a></li>
<li><a href="${PAGE_PATHS.plan}">Plan cadastral</a></li>
</ul>`,
  );
}

function options(values: readonly { value: string; label: string }[], selected: string | undefined): string {
  return values
    .map((option) => `<option value="${escapeHtml(option.value)}"${option.value === selected ? " selected" : ""}>${escapeHtml(option.label)}</option>`)
    .join("");
}

function circonscriptionSelect(selected: string | undefined, reloads: boolean): string {
  // The site reloads the page when the circonscription changes, to list its cadastres.
  const onchange = reloads ? ` onchange="document.getElementById('hidRechg').value='1'; this.form.submit();"` : "";
  return `<select id="selCircnFoncr" name="selCircnFoncr"${onchange}>${options(
    [{ value: "", label: "Sélectionner une circonscription" }, ...CIRCONSCRIPTIONS.map((option) => ({ value: option.code, label: option.name }))],
    selected,
  )}</select>`;
}

export interface LotSearchForm {
  /** "index" or "plan": same fields, different page. */
  readonly page: "index" | "plan";
  readonly circonscription: CirconscriptionOption | undefined;
  readonly values: Readonly<Record<string, string>>;
  readonly error?: string;
}

export function lotSearchPage(form: LotSearchForm): string {
  const action = form.page === "index" ? PAGE_PATHS.index : PAGE_PATHS.plan;
  const cadastres = form.circonscription?.cadastres ?? [];
  return layout(
    form.page === "index" ? "Index des immeubles" : "Plan cadastral",
    `${errorCell(form.error)}<form method="post" action="${action}"><input type="hidden" id="hidRechg" name="hidRechg" value="0"><table>
<tr><td>Circonscription foncière</td><td>${circonscriptionSelect(form.circonscription?.code, true)}</td></tr>
<tr><td>Cadastre</td><td><select id="selCadst" name="selCadst">${options(
      [{ value: "", label: "Sélectionner un cadastre" }, ...cadastres.map((name, index) => ({ value: String(index + 1), label: name }))],
      form.values["selCadst"],
    )}</select></td></tr>
<tr><td>Numéro de lot</td><td><input type="text" id="txtNumrtLot" name="txtNumrtLot" value="${escapeHtml(form.values["txtNumrtLot"] ?? "")}"></td></tr>
<tr><td>Désignation secondaire</td><td><select id="selDesgnSecnd" name="selDesgnSecnd">${options(
      DESIGNATIONS_SECONDAIRES.map((name) => ({ value: name, label: name === "" ? "Aucune" : name })),
      form.values["selDesgnSecnd"],
    )}</select></td></tr>
<tr><td colspan="2"><input type="submit" name="btnSoumettre" value="Soumettre"></td></tr>
</table></form>`,
  );
}

export function acteSearchPage(values: Readonly<Record<string, string>>, error?: string): string {
  return layout(
    "Réquisition",
    `${errorCell(error)}<form method="post" action="${PAGE_PATHS.acte}"><table>
<tr><td>Circonscription foncière</td><td>${circonscriptionSelect(values["selCircnFoncr"], false)}</td></tr>
<tr><td>Type de document</td><td><select id="selTypeDocmn" name="selTypeDocmn">${options(
      [{ value: "", label: "Sélectionner un type" }, ...ACTE_TYPES.map((name) => ({ value: name, label: name }))],
      values["selTypeDocmn"],
    )}</select></td></tr>
<tr><td>Numéro d'inscription</td><td><input type="text" id="txtNoReqst" name="txtNoReqst" value="${escapeHtml(values["txtNoReqst"] ?? "")}"></td></tr>
<tr><td colspan="2"><input type="submit" name="btnRechr" value="Rechercher"></td></tr>
</table></form>`,
  );
}

export function similarNumbersPage(rows: readonly SimilarNumberRow[]): string {
  const lines = rows
    .map((row, index) => {
      const number = row.paperOnly ? escapeHtml(row.number) : `<a href="${PAGE_PATHS.acte}?choix=${index}">${escapeHtml(row.number)}</a>`;
      return `<tr><td>${number}</td><td>${escapeHtml(row.date)}</td><td>${row.paperOnly ? escapeHtml(SITE_MESSAGES.paperOnly) : "Document numérique"}</td></tr>`;
    })
    .join("\n");
  return layout(
    "Liste de documents",
    `<p class="contInfo">${escapeHtml(SITE_MESSAGES.similarNumbers)}</p>
<table id="tblListeDocmn"><tr><th>Numéro</th><th>Date de présentation</th><th>Support</th></tr>
${lines}
</table>`,
  );
}

export function planSelectionPage(choices: readonly PlanChoice[]): string {
  const lines = choices
    .map(
      (choice, index) =>
        `<tr><td><input type="radio" id="radPlan${index}" name="radPlan" value="${index}"><label for="radPlan${index}">${escapeHtml(choice.planNumber)}</label></td><td>${escapeHtml(choice.description)}</td><td>${choice.inactive ? "inactif" : "actif"}</td></tr>`,
    )
    .join("\n");
  return layout(
    "Sélection du plan",
    `<form method="post" action="${PAGE_PATHS.plan}"><input type="hidden" name="hidEtape" value="selection">
<table id="tblListePlan"><tr><th>Plan</th><th>Description</th><th>État</th></tr>
${lines}
</table><input type="submit" name="btnSoumettre" value="Soumettre"></form>`,
  );
}

export function planConfirmationPage(choice: PlanChoice): string {
  return layout(
    "Confirmation",
    `<p>Vous avez demandé le plan ${escapeHtml(choice.planNumber)} (${escapeHtml(choice.description)}${choice.inactive ? ", inactif" : ""}).</p>
<form method="post" action="${PAGE_PATHS.plan}"><input type="hidden" name="hidEtape" value="confirmation">
<input type="submit" name="btnConfr" value="Confirmer"> <input type="submit" name="btnAnnul" value="Annuler"></form>`,
  );
}

export function resultFrameset(token: string): string {
  return `<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>Document - Registre foncier du Québec en ligne</title></head>
<frameset rows="90,*">
<frame name="menu" src="${PAGE_PATHS.resultMenu}?doc=${token}">
<frame name="page" src="${PAGE_PATHS.resultPage}?doc=${token}">
</frameset></html>`;
}

export function resultMenuPage(token: string): string {
  return layout(
    "Menu du document",
    `<a href="${PAGE_PATHS.download}?doc=${token}" title="Sauvegarder ou imprimer le document">Sauvegarder ou imprimer</a> | <a href="${PAGE_PATHS.menu}" target="_top">Nouvelle recherche</a>`,
  );
}

export function resultViewPage(pageCount: number): string {
  return layout("Document", `<p>Document de ${pageCount} page(s). Utilisez « Sauvegarder ou imprimer le document » pour l'obtenir.</p>`);
}

export function errorPage(title: string, message: string): string {
  return layout(title, errorCell(message));
}
