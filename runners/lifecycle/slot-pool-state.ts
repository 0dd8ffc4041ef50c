/**
 * What the slots of one task share (claim-loop.ts): the job count against
 * RUNNER_MAX_JOBS, the infrastructure failures in a row, when the task last
 * had a job in flight (idle and hand-back), and the stop that ends every
 * slot's claiming with the task's exit code. Slots run on one event loop, so
 * plain fields need no locking; each change is one synchronous step.
 */
import { RUNNER_EXIT_CODES, type RunnerExitCode } from "./runner-exit-codes.ts";

/** A claim reserved against RUNNER_MAX_JOBS, given back when nothing was claimed. */
export interface JobBudget {
  take(): boolean;
  giveBack(): void;
}

export class SlotPoolState {
  readonly #maxJobs: number;
  readonly #stop = new AbortController();
  #exitCode: RunnerExitCode = RUNNER_EXIT_CODES.ok;
  #jobsTaken = 0;
  #running = 0;
  #lastBusyAt = Date.now();
  #lastDatabaseAnswerAt = Date.now();
  #infrastructureFailures = 0;
  /** Set by the first slot to find RUNNER_MAX_JOBS reached, so the line is logged once. */
  maxJobsLogged = false;

  constructor(maxJobs: number) {
    this.#maxJobs = maxJobs;
  }

  /** Aborted once a slot decided the task stops claiming (idle, hand-back, failures, configuration). */
  get stopped(): AbortSignal {
    return this.#stop.signal;
  }

  get exitCode(): RunnerExitCode {
    return this.#exitCode;
  }

  get jobsTaken(): number {
    return this.#jobsTaken;
  }

  /** Stops every slot's claiming; the first non-zero code is the task's. Returns whether this call stopped it. */
  stop(code: RunnerExitCode): boolean {
    if (code !== RUNNER_EXIT_CODES.ok && this.#exitCode === RUNNER_EXIT_CODES.ok) this.#exitCode = code;
    if (this.#stop.signal.aborted) return false;
    this.#stop.abort(code);
    return true;
  }

  /** Reserves one of RUNNER_MAX_JOBS for a claim; false once they are all taken or the task stopped. */
  takeJob(): boolean {
    if (this.#stop.signal.aborted || this.#jobsTaken >= this.#maxJobs) return false;
    this.#jobsTaken += 1;
    return true;
  }

  giveBackJob(): void {
    this.#jobsTaken = Math.max(0, this.#jobsTaken - 1);
  }

  /** The budget a completion draws on to claim its slot's next job in the same round trip. */
  nextJobBudget(): JobBudget {
    return { take: () => this.takeJob(), giveBack: () => this.giveBackJob() };
  }

  jobStarted(): void {
    this.#running += 1;
  }

  jobEnded(): void {
    this.#running -= 1;
    this.#lastBusyAt = Date.now();
  }

  /** A claim (even an empty one) went through: the database answers. */
  databaseAnswered(): void {
    this.#lastDatabaseAnswerAt = Date.now();
  }

  /**
   * How long no slot's claim has gone through while no job was in flight (0
   * while one is): one slot's claim failing after a backoff is no outage
   * while another slot's claims go through.
   */
  unreachableMs(): number {
    return this.#running > 0 ? 0 : Date.now() - Math.max(this.#lastBusyAt, this.#lastDatabaseAnswerAt);
  }

  /** How long the task has had no job in flight; 0 while any slot runs one. */
  idleMs(): number {
    return this.#running > 0 ? 0 : Date.now() - this.#lastBusyAt;
  }

  /** Counts one more infrastructure failure in a row; returns the count. */
  infrastructureFailed(): number {
    this.#infrastructureFailures += 1;
    return this.#infrastructureFailures;
  }

  infrastructureRecovered(): void {
    this.#infrastructureFailures = 0;
  }
}
