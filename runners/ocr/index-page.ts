// One index page as read: its marker and flags (the words the text carries), what happened to it, and the page handed to the boost and the page store.

export interface IndexPageOutcome {
  readonly pageNumber: number;
  /** Lines the count call found; null when no count came back complete. */
  readonly countedLines: number | null;
  readonly countConfidence: number;
  readonly extractedLines: number;
  /** The page was read a second time (short, or the reply was cut). */
  readonly retried: boolean;
  /** Still short, cut or unverified after the second read: the text says so. */
  readonly incomplete: boolean;
  /** The flags written under the page's marker. */
  readonly flags: readonly string[];
  /** The boost could not be applied: the raw text stands, flagged. */
  readonly boostSkipped: boolean;
}

export const pageMarker = (pageNumber: number) => `--- Page ${pageNumber} ---`;
export const incompleteFlag = (extracted: number, counted: number) =>
  `[PAGE INCOMPLÈTE : ${extracted} ligne(s) extraite(s) sur ${counted} comptée(s) ; vérifier la page d'origine]`;
export const cutFlag = (finishReason: string, extracted: number) =>
  `[PAGE INCOMPLÈTE : réponse interrompue (${finishReason}) après ${extracted} ligne(s) ; vérifier la page d'origine]`;
export const UNVERIFIED_FLAG = "[NOMBRE DE LIGNES NON VÉRIFIÉ : le comptage des lignes n'a pas abouti ; vérifier la page d'origine]";

/** One page as read: its text (marker, flags, lines) and what happened. */
export interface ReadPage {
  readonly text: string;
  readonly lines: readonly string[];
  readonly outcome: Omit<IndexPageOutcome, "boostSkipped">;
}
