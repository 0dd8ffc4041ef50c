import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { once } from "node:events";

/** A long-running child of the local stack, stopped with the stack. */
export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves once the process has exited (for any reason). */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartProcessOptions extends SpawnOptions {
  /** Shown in log lines and errors. */
  name: string;
  /** Called with each line the child writes (stdout and stderr). */
  onLine?: (line: string) => void;
  /**
   * First signal `stop()` sends; SIGKILL follows after the grace period.
   * @default "SIGTERM"
   */
  stopSignal?: NodeJS.Signals;
}

/**
 * Spawns a child in its own process group, so stopping it also stops anything
 * it started (Chromium under a runner, postgres backends under pg_ctl, …).
 */
export function startProcess(command: string, args: readonly string[], options: StartProcessOptions): ManagedProcess {
  const { name, onLine, stopSignal = "SIGTERM", ...spawnOptions } = options;
  // Output nobody reads must not be piped: once a pipe's 64 KB buffer fills,
  // the child blocks in write(). Postgres logs every WARNING a test provokes,
  // and its backends then hung mid-query (no wait event) with DROP DATABASE
  // stuck behind a checkpoint that could not log.
  const output = onLine ? "pipe" : "ignore";
  const child = spawn(command, args, { stdio: ["ignore", output, output], detached: true, ...spawnOptions });
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? (signal ? null : 0)));
    child.once("error", () => resolve(null));
  });
  if (onLine) {
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) if (line.length > 0) onLine(line);
      });
    }
  }
  let stopping: Promise<void> | undefined;
  return {
    name,
    child,
    exited,
    stop(graceMs = 5_000) {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
        signalGroup(child.pid, stopSignal);
        const timer = setTimeout(() => child.pid !== undefined && signalGroup(child.pid, "SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone: nothing left to stop.
  }
}

/** Runs a command to completion; rejects with its output when it fails. */
export async function run(command: string, args: readonly string[], options: SpawnOptions = {}): Promise<string> {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, "close")) as [number | null];
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${code}:\n${output.trim()}`);
  return output;
}

/** Thrown by a `waitFor` probe when waiting longer cannot help (the process died). */
export class GiveUpWaiting extends Error {
  override readonly name = "GiveUpWaiting";
}

/**
 * Polls `probe` until it resolves true, or throws naming `what` after
 * `timeoutMs`. A probe that throws counts as "not yet", except with
 * GiveUpWaiting, which ends the wait at once.
 */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 25;
  while (Date.now() < deadline) {
    const ready = await probe().catch((error: unknown) => {
      if (error instanceof GiveUpWaiting) throw error;
      return false;
    });
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 250);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** True while a process (or, for a negative id, a process group) exists; signal 0 checks without signalling. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
