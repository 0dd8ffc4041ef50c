/**
 * After a runner hands its capacity lease back, dispatch should plan with
 * that room at once rather than at the next cron minute. The runner role may
 * execute `queue.request_dispatch()`, which sends the same hint the row
 * triggers send, only when jobs are claimable. A failure here costs at most
 * a minute's wait for the tick, so it is logged and never fails the exit.
 */
import type postgres from "postgres";
import type { Logger } from "./structured-log.ts";

/** Longest the exit waits for the hint; the tick covers a lost one. */
const HINT_TIMEOUT_MS = 3_000;

export async function requestDispatch(sql: postgres.Sql, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${HINT_TIMEOUT_MS} ms`)), HINT_TIMEOUT_MS);
    });
    const [row] = await Promise.race([sql<{ sent: boolean }[]>`select queue.request_dispatch() as sent`, timedOut]);
    log.info("capacity handed back; dispatch hinted", { hint_sent: row?.sent === true });
  } catch (error) {
    log.warn("could not hint dispatch after handing capacity back; the next tick plans it", { error });
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
