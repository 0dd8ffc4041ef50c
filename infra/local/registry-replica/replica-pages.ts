/**
 * The HTML of the replica's pages, rebuilt from the public evidence about the
 * real Registre foncier du Québec en ligne (SIRF). Sources, cited per page:
 * - PX = Paraito/registre-extractor at dc82c0e, src/worker/extractor-ai.ts
 *   (line numbers given as AI:n);
 * - SIRF-py = the public Python client `registre_foncier.py` validated on the
 *   live site on 2026-05-21 (found by searching for "txtVaCodeUtils");
 * - Guide = https://www.registrefoncier.gouv.qc.ca/sirf/Guide/04_La_consultation/pf_04_01_consult_produit.htm
 * Where the evidence is silent (a path, a label, a message's wording) the
 * replica says so next to it, and the runner never relies on that detail.
 */
import type { PlanChoice, SimilarNumberRow } from "./catalogue.ts";
import { ACTE_TYPES, CIRCONSCRIPTIONS, DESIGNATIONS_SECONDAIRES, cadastreCode, type CirconscriptionOption } from "./registry-options.ts";

export const SCRIPT_PATH = "/Sirf/Script/13_01_11";
/** SIRF-py `_SIRF_LOGIN_URL`. */
export const LOGIN_PATH = "/Sirf/Script/14_06_01-02/pf_14_06_01_reglr.asp";
export const PAGE_PATHS = {
  /** PX AI:337. */
  entry: "/Sirf/",
  login: LOGIN_PATH,
  /** The welcome page after login (Guide: "Page de bienvenue"); its path is not in the evidence. */
  welcome: "/Sirf/Script/13_01_01/pf_13_01_01_bienv.asp",
  /** Search pages: PX AI:440-447, SIRF-py `_SIRF_SEARCH_URL`. */
  index: `${SCRIPT_PATH}/pf_13_01_11_02_indx_immbl.asp`,
  acte: `${SCRIPT_PATH}/pf_13_01_11_08_reqst.asp`,
  plan: `${SCRIPT_PATH}/pf_13_01_11_10_plan_cadst.asp`,
  /** PX AI:1747. */
  planSelection: "/Sirf/Script/13_01_08/pf_13_01_08_selct_plan_cadst.asp",
  /** PX AI:1972. */
  confirmation: "/Sirf/Script/13_01_13/pf_13_01_13_confr_demnd.asp",
  /** The frameset's two frames: names `menu` and `page`, the page frame's URL holds "Docmn" (PX AI:2245-2255); exact paths not in the evidence. */
  resultMenu: `${SCRIPT_PATH}/pf_13_01_11_menu_docmn.asp`,
  resultPage: `${SCRIPT_PATH}/pf_13_01_11_afich_Docmn.asp`,
  /** Ending the session: neither the path nor the link's label is in the evidence. */
  logout: "/Sirf/Script/14_06_01-02/pf_14_06_01_quitr.asp",
  /** The save link's target holds "impri_sauvg" (PX AI:2352); the exact path is not in the evidence. */
  save: `${SCRIPT_PATH}/pf_13_01_11_impri_sauvg.asp`,
} as const;

/** The site's messages (cell `td.contValErr`). */
export const SITE_MESSAGES = {
  // The four "does not exist" answers: PX archive/docs/ERROR_RESOLUTION_SUMMARY.md, AI:1051-1086.
  ficheInexistante: "La fiche immobilière demandée est inexistante",
  aucuneInformation: "Aucune information ne correspond aux critères de sélection",
  documentInexistant: "Le document demandé est inexistant",
  lotHorsCirconscription: "Le lot n'existe pas dans la circonscription foncière demandée",
  /** PX AI:182. */
  similarNumbers: "Nous vous proposons une liste de document(s) dont le numéro est semblable",
  /** Wording not in the evidence: the runner treats any message on the login answer as a refusal. */
  loginRefused: "Le code d'utilisateur ou le mot de passe est invalide",
  /** Wording not in the evidence (the Guide only says idle sessions end): the runner matches "session". */
  sessionExpired: "Votre session est expirée. Veuillez vous identifier de nouveau.",
  /** Wording not in the evidence: an account message the runner must charge to the account. */
  paymentRefused: "La carte de paiement inscrite à votre dossier client a été refusée",
} as const;

/** "Lot … est inactif" on plans (PX AI:174); the words around the lot number are not in the evidence. */
export const inactiveLotMessage = (lot: string) => `Lot ${lot} est inactif`;

export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function layout(title: string, body: string, navigation = false): string {
  // The Guide: a navigation bar on every page of a logged-in session; its markup is not in the evidence.
  const bar = navigation
    ? `<table width="100%"><tr><td><a href="${PAGE_PATHS.index}">Index des immeubles</a> | <a href="${PAGE_PATHS.acte}">Réquisition</a> | <a href="${PAGE_PATHS.plan}">Plan cadastral</a> | <a href="${PAGE_PATHS.logout}" target="_top">Quitter</a></td></tr></table>`
    : "";
  return `<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>${bar}
${body}
</body></html>`;
}

/** PX AI:203-210: the message sits in `td.contValErr` of a `table.Cadre` with an `image_message.gif`. */
function messageTable(message: string | undefined): string {
  if (message === undefined) return "";
  return `<table class="Cadre"><tr><td><img src="/Sirf/Images/image_message.gif" alt=""></td><td class="contValErr">${escapeHtml(message)}</td></tr></table>`;
}

/** How the entry page leads to the login: PX AI:347-351 tries a link, an image-map `<area>` and an image, in that order. */
export type EntryStyle = "link" | "area" | "image";

export function entryPage(style: EntryStyle, notice?: string): string {
  const alt = "Registre foncier du Québec en ligne";
  const entry =
    style === "link"
      ? `<a href="${PAGE_PATHS.login}"><img src="/Sirf/Images/entree.gif" alt="${alt}"></a>`
      : style === "area"
        ? `<img src="/Sirf/Images/entree.gif" usemap="#mapEntree" alt="${alt}" width="300" height="80"><map name="mapEntree"><area shape="rect" coords="0,0,300,80" href="${PAGE_PATHS.login}" alt="Entrée"></map>`
        : `<img src="/Sirf/Images/entree.gif" alt="${alt}" width="300" height="80" style="cursor:pointer" onclick="location.href='${PAGE_PATHS.login}'">`;
  return layout("Registre foncier du Québec", `${messageTable(notice)}${entry}`);
}

/**
 * SIRF-py `_SIRF_LOGIN_FIELDS`: `txtVaCodeUtils`, `txtMotPasse` and the
 * hidden `txtEtat=valdr`, `txtBoutn=btnSoumt`, `txtInAfichQuestIdentPersn=N`.
 * No `<label>` elements are known, so none here; the button's label is not in
 * the evidence (its name is `btnSoumt`).
 */
export function loginPage(error?: string): string {
  return layout(
    "Identification",
    `${messageTable(error)}<form name="frmIdent" method="post" action="${PAGE_PATHS.login}">
<input type="hidden" name="txtEtat" value="valdr"><input type="hidden" name="txtBoutn" value="btnSoumt"><input type="hidden" name="txtInAfichQuestIdentPersn" value="N">
<table><tr><td>Code d'utilisateur</td><td><input type="text" name="txtVaCodeUtils"></td></tr>
<tr><td>Mot de passe</td><td><input type="password" name="txtMotPasse"></td></tr>
<tr><td colspan="2"><input class="BoutnStand" type="submit" id="btnSoumt" name="btnSoumt" value="Soumettre"></td></tr></table></form>`,
  );
}

/** The Guide's "Page de bienvenue", shown when the session opens. */
export function welcomePage(): string {
  return layout("Page de bienvenue", `<p>Bienvenue au Registre foncier du Québec en ligne.</p>`, true);
}

function options(values: readonly { value: string; label: string }[], selected: string | undefined): string {
  return values
    .map((option) => `<option value="${escapeHtml(option.value)}"${option.value === selected ? " selected" : ""}>${escapeHtml(option.label)}</option>`)
    .join("");
}

/**
 * `#selCircnFoncr`; choosing one reloads the lot forms (PX: 11 "execution
 * context destroyed"). How the reload is posted is not in the evidence: here
 * `txtEtat` says "chang".
 */
function circonscriptionSelect(selected: string | undefined, reloads: boolean): string {
  const onchange = reloads ? ` onchange="this.form.txtEtat.value='chang'; this.form.submit();"` : "";
  return `<select id="selCircnFoncr" name="selCircnFoncr"${onchange}>${options(
    [{ value: "NULL", label: "" }, ...CIRCONSCRIPTIONS.map((option) => ({ value: option.code, label: option.name }))],
    selected,
  )}</select>`;
}

export interface LotSearchForm {
  readonly page: "index" | "plan";
  readonly circonscription: CirconscriptionOption | undefined;
  readonly values: Readonly<Record<string, string>>;
  readonly message?: string;
}

/**
 * The index and plan lot form. Fields and hidden values: SIRF-py
 * `_SIRF_SEARCH_FIELDS` (`txtEtat=valdr`, `selCadst` "000001" for Cadastre du
 * Québec, `rdModltConsl`, `rdOrdreAffch=C`, `txtPerd`, `btnSoumt=Soumettre`).
 * The other cadastres' codes and the désignation labels are not in the evidence.
 */
export function lotSearchPage(form: LotSearchForm): string {
  const action = form.page === "index" ? PAGE_PATHS.index : PAGE_PATHS.plan;
  const cadastres = form.circonscription?.cadastres ?? [];
  const order = form.values["rdOrdreAffch"] ?? "C";
  return layout(
    form.page === "index" ? "Index des immeubles" : "Plan cadastral",
    `${messageTable(form.message)}<form name="frmRechr" method="post" action="${action}"><input type="hidden" name="txtEtat" value="valdr">
<table><tr><td>Circonscription foncière</td><td>${circonscriptionSelect(form.circonscription?.code, true)}</td></tr>
<tr><td>Cadastre</td><td><select id="selCadst" name="selCadst">${options(
      [{ value: "NULL", label: "" }, ...cadastres.map((name, index) => ({ value: cadastreCode(name, index), label: name }))],
      form.values["selCadst"],
    )}</select></td></tr>
<tr><td>Numéro de lot</td><td><input type="text" id="txtNumrtLot" name="txtNumrtLot" value="${escapeHtml(form.values["txtNumrtLot"] ?? "")}"></td></tr>
<tr><td>Désignation secondaire</td><td><select id="selDesgnSecnd" name="selDesgnSecnd">${options(
      DESIGNATIONS_SECONDAIRES.map((name) => ({ value: name === "" ? "A" : name, label: name })),
      form.values["selDesgnSecnd"],
    )}</select></td></tr>
${form.page === "index" ? `<tr><td><input type="hidden" name="rdModltConsl" value="NULL"><input type="radio" name="rdOrdreAffch" value="C"${order === "C" ? " checked" : ""}>C <input type="radio" name="rdOrdreAffch" value="D"${order === "D" ? " checked" : ""}>D</td><td><input type="text" name="txtPerd" value=""></td></tr>` : ""}
<tr><td colspan="2"><input class="BoutnStand" type="submit" id="btnSoumt" name="btnSoumt" value="Soumettre"></td></tr></table></form>`,
    true,
  );
}

/**
 * The acte search (PX AI:1419-1486): `#selCircnFoncr`, `#selTypeDocmn`,
 * `#txtNoReqst`, "Rechercher". The similar-numbers list comes on the same
 * page (PX AI:2017-2200): the notice in `td.contValErr`, a "Résultat de la
 * recherche" section, one radio per document, paper-only rows marked by a
 * `BPD.GIF` image, and a Soumettre button. The radios' name and value are
 * not in the evidence.
 */
export function acteSearchPage(values: Readonly<Record<string, string>>, message?: string, similar?: readonly SimilarNumberRow[]): string {
  const list =
    similar === undefined
      ? ""
      : `<table><tr><td class="titreSectn">Résultat de la recherche</td></tr></table>
<form name="frmResul" method="post" action="${PAGE_PATHS.acte}"><input type="hidden" name="txtEtat" value="selct"><table>
${similar
  .map(
    (row, index) =>
      `<tr><td><input type="radio" name="rdDocmn" value="${index}"></td><td>${escapeHtml(row.number)}</td><td>${escapeHtml(row.date)}</td><td>${row.paperOnly ? `<img src="/Sirf/Images/BPD.GIF" alt="">` : ""}</td></tr>`,
  )
  .join("\n")}
</table><input class="BoutnStand" type="submit" name="btnSoumt" value="Soumettre"></form>`;
  return layout(
    "Réquisition",
    `${messageTable(message)}<form name="frmRechr" method="post" action="${PAGE_PATHS.acte}"><input type="hidden" name="txtEtat" value="valdr"><table>
<tr><td>Circonscription foncière</td><td>${circonscriptionSelect(values["selCircnFoncr"], false)}</td></tr>
<tr><td>Type de document</td><td><select id="selTypeDocmn" name="selTypeDocmn">${options(
      [{ value: "NULL", label: "" }, ...ACTE_TYPES.map((name) => ({ value: name, label: name }))],
      values["selTypeDocmn"],
    )}</select></td></tr>
<tr><td>Numéro d'inscription</td><td><input type="text" id="txtNoReqst" name="txtNoReqst" value="${escapeHtml(values["txtNoReqst"] ?? "")}"></td></tr>
<tr><td colspan="2"><input class="BoutnStand" type="submit" id="btnRechr" name="btnRechr" value="Rechercher"></td></tr></table></form>${list}`,
    true,
  );
}

/**
 * The plan selection page (PX AI:1747-1850): radios, then "Soumettre" or
 * "Continuer" (PX tries both; `button` says which). Which plan comes first
 * is not in the evidence. "Lot … est inactif" sits in `td.contValErr`.
 */
export function planSelectionPage(lot: string, choices: readonly PlanChoice[], button: "Soumettre" | "Continuer"): string {
  const inactive = choices.length > 0 && choices.every((choice) => choice.inactive);
  const lines = choices
    .map((choice, index) => `<tr><td><input type="radio" name="rdPlan" value="${index}"></td><td>${escapeHtml(choice.planNumber)}</td><td>${escapeHtml(choice.description)}</td></tr>`)
    .join("\n");
  return layout(
    "Plan cadastral",
    `${messageTable(inactive ? inactiveLotMessage(lot) : undefined)}<form name="frmSelct" method="post" action="${PAGE_PATHS.planSelection}"><table>
${lines}
</table><input class="BoutnStand" type="submit" name="btnSoumt" value="${button}"></form>`,
    true,
  );
}

/** PX AI:1902 quotes the button: `<input class="BoutnStand" type="submit" id="btnConfr" name="btnConfr" accesskey="C" tabindex="11" value="Confirmer">`. */
export function confirmationPage(): string {
  return layout(
    "Confirmation de la demande",
    `<form name="frmConfr" method="post" action="${PAGE_PATHS.confirmation}"><p>Le document demandé est volumineux.</p>
<input class="BoutnStand" type="submit" id="btnConfr" name="btnConfr" accesskey="C" tabindex="11" value="Confirmer"> <input class="BoutnStand" type="submit" id="btnAnnl" name="btnAnnl" value="Annuler"></form>`,
    true,
  );
}

export function resultFrameset(token: string): string {
  return `<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>Registre foncier du Québec en ligne</title></head>
<frameset rows="90,*">
<frame name="menu" src="${PAGE_PATHS.resultMenu}?doc=${token}">
<frame name="page" src="${PAGE_PATHS.resultPage}?doc=${token}">
</frameset></html>`;
}

/**
 * How the save link hands over the PDF is not in the evidence; the tests
 * switch between the four ways the runner must tolerate.
 */
export type PdfDelivery = "attachment" | "inline" | "popup" | "script";

/**
 * The menu frame's save link: title "Sauvegarder ou imprimer le document",
 * in `td.menuBoutnCentr`, an `impri_sauvg` href or an `onmouseup` calling
 * `fRechrDocmnPDF` (PX AI:2345-2353). The script's body is not in the evidence.
 */
export function resultMenuPage(token: string, delivery: PdfDelivery): string {
  const url = `${PAGE_PATHS.save}?doc=${token}`;
  const title = `title="Sauvegarder ou imprimer le document"`;
  const link =
    delivery === "script"
      ? `<script>function fRechrDocmnPDF(jeton) { window.open('${PAGE_PATHS.save}?doc=' + jeton, 'docmnPDF'); }</script><a href="#" onmouseup="fRechrDocmnPDF('${token}')" ${title}><img src="/Sirf/Images/sauvg.gif" alt="" width="24" height="24"></a>`
      : `<a href="${url}"${delivery === "popup" ? ` target="_blank"` : delivery === "inline" ? ` target="page"` : ""} ${title}><img src="/Sirf/Images/sauvg.gif" alt="" width="24" height="24"></a>`;
  return `<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"></head><body><table><tr><td class="menuBoutnCentr">${link}</td></tr></table></body></html>`;
}

export function resultViewPage(pageCount: number): string {
  return `<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"></head><body><p>${pageCount} page(s)</p></body></html>`;
}

export function messagePage(title: string, message: string): string {
  return layout(title, messageTable(message), true);
}

/** A planned outage (La Presse, 2022-03-08); its wording is not in the evidence and the runner never reads it. */
export function maintenancePage(): string {
  return `<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Maintenance</title></head><body><p>Le site est présentement en maintenance.</p></body></html>`;
}
