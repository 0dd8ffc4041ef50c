/**
 * Typed calls to the job transition functions in schema `queue`. The runner
 * role may execute these and nothing else, so this file is the runner's whole
 * view of the database. Every write carries the job's lease token; a refusal
 * because the lease is no longer ours (SQLSTATE QL001) becomes a
 * LeaseLostError, on which the runner drops the job without writing anything.
 */
import postgres from "postgres";
import { z } from "zod";
import type { ErrorKind } from "./job-errors.ts";
import { parseDatabaseTls, postgresTransport, withoutTlsParameters, type DatabaseTls } from "./database-tls.ts";
import { DOCUMENT_SOURCES, type DocumentSource, type JobKind } from "../../supabase/functions/_shared/job-kinds.ts";

/** SQLSTATE the transition functions raise when the token is not the job's current, unexpired lease. */
export const LEASE_NOT_HELD_SQLSTATE = "QL001";

/** The job is no longer ours (lease expired, reaped, or re-claimed): stop and write nothing. */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
  constructor(
    readonly jobId: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** One job this runner holds, as `claim_jobs` returned it. */
export interface ClaimedJob {
  readonly id: string;
  readonly kind: JobKind;
  /** Fencing token: every later call about this job presents it. */
  readonly leaseToken: string;
  /** When the lease lapses unless heartbeat() renews it. */
  readonly leaseExpiresAt: Date;
  readonly documentSource: DocumentSource;
  readonly documentNumber: string;
  readonly documentNumberNormalized: string;
  readonly circonscriptionFonciere: string;
  readonly cadastre: string | null;
  readonly designationSecondaire: string | null;
  readonly acteType: string | null;
  /** `bucket/filename` of the PDF; set for OCR jobs, null for a registre job's first attempt. */
  readonly supabasePath: string | null;
  /** This stage's attempt number, counting this one (1 on the first claim). */
  readonly attempt: number;
}

const claimedRowSchema = z.object({
  id: z.string(),
  lease_token: z.string(),
  lease_expires_at: z.date(),
  document_source: z.enum(DOCUMENT_SOURCES),
  document_number: z.string(),
  document_number_normalized: z.string(),
  circonscription_fonciere: z.string(),
  cadastre: z.string().nullable(),
  designation_secondaire: z.string().nullable(),
  acte_type: z.string().nullable(),
  supabase_path: z.string().nullable(),
  attempt: z.number().int(),
});

/** A completion's new status, and the job claimed with it (undefined when none was waiting). */
export interface CompletedAndNext {
  readonly status: number;
  readonly next: ClaimedJob | undefined;
}

export interface JobQueueOptions {
  kind: JobKind;
  /** Stored on claimed rows (`worker_id` / `ocr_worker_id`). */
  workerId: string;
  /** Length of each lease granted by claim and heartbeat; whole seconds. */
  leaseSeconds: number;
}

export interface JobQueueConnectionOptions {
  /**
   * Connections in the pool: one for claims and reports, one so a heartbeat
   * never waits behind them.
   * @default 2
   */
  max?: number;
  /** Seconds to wait for a connection before the call fails (and the runner backs off). @default 10 */
  connectTimeoutSeconds?: number;
  /** TLS to the pooler (database-tls.ts). @default what DATABASE_URL alone says, with no root certificate */
  tls?: DatabaseTls;
}

/** Opens the runner's pool. `prepare: false` because the Supabase transaction pooler does not keep prepared statements. */
export function connectJobDatabase(databaseUrl: string, options: JobQueueConnectionOptions = {}): postgres.Sql {
  const tls = options.tls ?? parseDatabaseTls(databaseUrl, {});
  return postgres(withoutTlsParameters(databaseUrl), {
    ...postgresTransport(databaseUrl, tls),
    prepare: false,
    max: options.max ?? 2,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    // Idle connections are closed so a runner waiting for work holds no pooler slot.
    idle_timeout: 30,
    onnotice: () => {},
  });
}

export class JobQueue {
  readonly #sql: postgres.Sql;
  readonly #options: JobQueueOptions;

  constructor(sql: postgres.Sql, options: JobQueueOptions) {
    if (!Number.isInteger(options.leaseSeconds) || options.leaseSeconds < 1) {
      throw new RangeError(`leaseSeconds must be a whole number of seconds ≥ 1, got ${options.leaseSeconds}`);
    }
    this.#sql = sql;
    this.#options = options;
  }

  get leaseSeconds(): number {
    return this.#options.leaseSeconds;
  }

  /** Claims the next waiting job of this runner's kind, or undefined when none is waiting. */
  async claim(): Promise<ClaimedJob | undefined> {
    const { kind, workerId, leaseSeconds } = this.#options;
    const rows = await this.#sql`
      select * from queue.claim_jobs(${kind}, ${workerId}, 1, ${leaseSeconds})
    `;
    return rows[0] === undefined ? undefined : this.#claimed(rows[0]);
  }

  /** Extends the job's lease by leaseSeconds from now; returns the new expiry. */
  async heartbeat(job: ClaimedJob): Promise<Date> {
    return this.#fenced(job, async () => {
      const [row] = await this.#sql`
        select queue.heartbeat_job(${job.id}, ${job.leaseToken}, ${this.#options.leaseSeconds}) as expires_at
      `;
      return z.object({ expires_at: z.date() }).parse(row).expires_at;
    });
  }

  /** Records the downloaded PDF; returns the new status (3, or 5 for a plan cadastral). */
  async completeExtraction(job: ClaimedJob, supabasePath: string): Promise<number> {
    return this.#fenced(job, async () => {
      const [row] = await this.#sql`
        select queue.complete_extraction(${job.id}, ${job.leaseToken}, ${supabasePath}) as status_id
      `;
      return statusOf(row);
    });
  }

  /** Records the raw and corrected OCR text; returns the new status (5). */
  async completeOcr(job: ClaimedJob, fileContent: string, boostedFileContent: string): Promise<number> {
    return this.#fenced(job, async () => {
      const [row] = await this.#sql`
        select queue.complete_ocr(${job.id}, ${job.leaseToken}, ${fileContent}, ${boostedFileContent}) as status_id
      `;
      return statusOf(row);
    });
  }

  /**
   * Records the downloaded PDF and, in the same transaction and round trip,
   * claims the next registre job: what a runner that is not shutting down does.
   */
  async completeExtractionAndClaimNext(job: ClaimedJob, supabasePath: string): Promise<CompletedAndNext> {
    const { workerId, leaseSeconds } = this.#options;
    return this.#fenced(job, async () => {
      const [row] = await this.#sql`
        select * from queue.complete_extraction_and_claim_next(${job.id}, ${job.leaseToken}, ${supabasePath}, ${workerId}, ${leaseSeconds})
      `;
      return this.#completedAndNext(row);
    });
  }

  /** Records the raw and corrected OCR text and claims the next job of this runner's OCR kind, in one round trip. */
  async completeOcrAndClaimNext(job: ClaimedJob, fileContent: string, boostedFileContent: string): Promise<CompletedAndNext> {
    const { kind, workerId, leaseSeconds } = this.#options;
    return this.#fenced(job, async () => {
      const [row] = await this.#sql`
        select * from queue.complete_ocr_and_claim_next(${job.id}, ${job.leaseToken}, ${fileContent}, ${boostedFileContent}, ${kind}, ${workerId}, ${leaseSeconds})
      `;
      return this.#completedAndNext(row);
    });
  }

  /** Records a failure (one attempt spent); returns the new status (waiting again, or 4). */
  async fail(job: ClaimedJob, error: string, isFinal: boolean, errorKind: ErrorKind): Promise<number> {
    return this.#fenced(job, async () => {
      const [row] = await this.#sql`
        select queue.fail_job(${job.id}, ${job.leaseToken}, ${error}, ${isFinal}, ${errorKind}) as status_id
      `;
      return statusOf(row);
    });
  }

  /** Hands the job back (the runner is shutting down), claimable at once, giving back the attempt its claim counted; returns the new status. */
  async release(job: ClaimedJob): Promise<number> {
    return this.#fenced(job, async () => {
      const [row] = await this.#sql`
        select queue.release_job(${job.id}, ${job.leaseToken}) as status_id
      `;
      return statusOf(row);
    });
  }

  /**
   * Hands the job back after an infrastructure failure (`error` says what):
   * no attempt spent, claimable again only after a backoff that grows with
   * each such release in a row, and ended in 4 after the row's
   * max_infrastructure_releases. Returns the new status (1, 3 or 4).
   */
  async releaseAfterInfrastructureFailure(job: ClaimedJob, error: string, errorKind: ErrorKind): Promise<number> {
    return this.#fenced(job, async () => {
      const [row] = await this.#sql`
        select queue.release_job_after_infrastructure_failure(${job.id}, ${job.leaseToken}, ${error}, ${errorKind}) as status_id
      `;
      return statusOf(row);
    });
  }

  #claimed(row: unknown): ClaimedJob {
    const parsed = claimedRowSchema.parse(row);
    return {
      id: parsed.id,
      kind: this.#options.kind,
      leaseToken: parsed.lease_token,
      leaseExpiresAt: parsed.lease_expires_at,
      documentSource: parsed.document_source,
      documentNumber: parsed.document_number,
      documentNumberNormalized: parsed.document_number_normalized,
      circonscriptionFonciere: parsed.circonscription_fonciere,
      cadastre: parsed.cadastre,
      designationSecondaire: parsed.designation_secondaire,
      acteType: parsed.acte_type,
      supabasePath: parsed.supabase_path,
      attempt: parsed.attempt,
    };
  }

  #completedAndNext(row: Record<string, unknown> | undefined): CompletedAndNext {
    const status = z.object({ completed_status_id: z.number().int() }).parse(row).completed_status_id;
    return { status, next: row?.["id"] == null ? undefined : this.#claimed(row) };
  }

  async #fenced<T>(job: ClaimedJob, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof postgres.PostgresError && error.code === LEASE_NOT_HELD_SQLSTATE) {
        throw new LeaseLostError(job.id, error.message, { cause: error });
      }
      throw error;
    }
  }
}

function statusOf(row: unknown): number {
  return z.object({ status_id: z.number().int() }).parse(row).status_id;
}
