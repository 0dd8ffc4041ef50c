/**
 * What the page looked like when a job failed: a screenshot and the HTML,
 * in a private folder named by job id (never by account or document
 * content), for whoever investigates the failure.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Page } from "playwright";
import type { Logger } from "../lifecycle/structured-log.ts";

export async function saveDebugArtifacts(page: Page, debugDir: string, jobId: string, attempt: number, log: Logger): Promise<string | undefined> {
  if (page.isClosed()) return undefined;
  // The job id is a uuid from the database; anything else is refused as a folder name.
  if (!/^[0-9a-f-]{36}$/i.test(jobId)) return undefined;
  const folder = join(debugDir, jobId);
  try {
    await mkdir(folder, { recursive: true, mode: 0o700 });
    const stem = join(folder, `attempt-${attempt}-${Date.now()}`);
    await page.screenshot({ path: `${stem}.png`, fullPage: true, timeout: 5_000 });
    await writeFile(`${stem}.html`, await page.content(), { mode: 0o600 });
    log.info("failure screenshot and HTML saved", { debug_folder: folder });
    return folder;
  } catch (error) {
    log.warn("could not save the failure's screenshot and HTML", { error: error instanceof Error ? error.message.split("\n")[0] : String(error) });
    return undefined;
  }
}
