/**
 * How ECS says no, for the ECS client (ecs-client.ts re-exports these):
 * which refusals are certain, so that a ledger lease is released only when
 * RunTask certainly started nothing.
 */
/** One entry of ECS's `failures[]` (e.g. `{ reason: "RESOURCE:MEMORY" }`, `{ arn, reason: "MISSING" }`). */
export interface EcsFailure {
  arn?: string;
  reason?: string;
  detail?: string;
}

/**
 * A call ECS refused: either an HTTP error (`awsType` is ECS's `__type`, e.g.
 * `ClientException`, `ThrottlingException`) or a RunTask that placed no task
 * (`failures` holds ECS's reasons).
 */
export class EcsError extends Error {
  override readonly name = "EcsError";
  constructor(
    readonly operation: EcsOperation,
    message: string,
    readonly details: { httpStatus?: number; awsType?: string; failures?: readonly EcsFailure[] },
  ) {
    super(message);
  }

  get failures(): readonly EcsFailure[] {
    return this.details.failures ?? [];
  }

  /**
   * ECS said no for sure: a 4xx answer (the request was not carried out;
   * throttling included) or a RunTask that listed its failures. A 5xx or an
   * answer we could not read leaves the outcome unknown.
   */
  get definite(): boolean {
    if (this.failures.length > 0) return true;
    const status = this.details.httpStatus;
    return status !== undefined && status >= 400 && status < 500;
  }
}

/**
 * Whether a failed RunTask certainly started nothing. Only then may its
 * ledger lease be released; after a timeout, a 5xx or a network error the
 * task may be running, so the caller retries with the same clientToken and,
 * if still unsure, leaves the lease to its runner or to its expiry.
 */
export function isDefiniteRunTaskRefusal(error: unknown): boolean {
  // RangeError: the request was refused before it was sent.
  return (error instanceof EcsError && error.definite) || error instanceof RangeError;
}

export type EcsOperation = "RunTask" | "DescribeTasks" | "StopTask";
