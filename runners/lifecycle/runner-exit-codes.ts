/** The exit codes of a runner process, which ECS records and the stopped-task sweep reads. */
export const RUNNER_EXIT_CODES = {
  /** Idle, or drained after SIGTERM. */
  ok: 0,
  /** A bug or a configuration error. */
  unexpected: 1,
  /** Too many infrastructure failures in a row, or the database unreachable for the whole idle period. */
  infrastructure: 2,
  /** The ledger lease expired or vanished: this task ran without capacity. */
  ledgerLeaseLost: 3,
  /** The deployment is misconfigured (a ConfigurationError: Gemini key, model, billing): no job can succeed until it is fixed. */
  configuration: 4,
} as const;
export type RunnerExitCode = (typeof RUNNER_EXIT_CODES)[keyof typeof RUNNER_EXIT_CODES];
