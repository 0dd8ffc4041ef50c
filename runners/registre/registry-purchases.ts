/**
 * The money side of a registre job, through the SQL functions of
 * 20261205010000_create_registry_purchases.sql: today's spend against the
 * environment's cap, a PDF the job can have without buying (its own earlier
 * purchase, or an identical request completed within the reuse window, with
 * its OCR text once done), and the record of each purchase.
 */
import type postgres from "postgres";
import { z } from "zod";
import type { ClaimedJob } from "../lifecycle/job-queue.ts";

export interface ReusableDocument {
  readonly supabasePath: string;
  /** The identical request whose PDF this is; null when the job bought it itself on an earlier attempt. */
  readonly sourceJobId: string | null;
  /** That request's OCR is done: its text is copied too. */
  readonly hasText: boolean;
}

export interface SpendToday {
  readonly spentCents: number;
  readonly capCents: number | null;
  readonly paused: boolean;
}

const reusableSchema = z.object({ supabase_path: z.string(), source_job_id: z.string().nullable(), has_text: z.boolean() });
const spendSchema = z.object({ spent_cents: z.union([z.string(), z.number()]).transform(Number), cap_cents: z.number().nullable(), paused: z.boolean() });

export class RegistryPurchases {
  readonly #sql: postgres.Sql;
  readonly #environment: string;

  constructor(sql: postgres.Sql, environment: string) {
    this.#sql = sql;
    this.#environment = environment;
  }

  async spendToday(): Promise<SpendToday> {
    const [row] = await this.#sql`select * from queue.registre_spend_today(${this.#environment})`;
    const parsed = spendSchema.parse(row);
    return { spentCents: parsed.spent_cents, capCents: parsed.cap_cents, paused: parsed.paused };
  }

  async findReusable(job: ClaimedJob): Promise<ReusableDocument | undefined> {
    const [row] = await this.#sql`select * from queue.find_reusable_document(${job.id}, ${this.#environment})`;
    if (row === undefined) return undefined;
    const parsed = reusableSchema.parse(row);
    return { supabasePath: parsed.supabase_path, sourceJobId: parsed.source_job_id, hasText: parsed.has_text };
  }

  async copyText(job: ClaimedJob, sourceJobId: string): Promise<void> {
    await this.#sql`select queue.copy_ocr_text(${job.id}, ${job.leaseToken}, ${sourceJobId})`;
  }

  /** Records the purchase; returns its id. */
  async record(job: ClaimedJob, accountId: string | undefined, amountCents: number): Promise<string> {
    const [row] = await this.#sql`select queue.record_registry_purchase(${job.id}, ${job.leaseToken}, ${accountId ?? null}, ${this.#environment}, ${amountCents}) as id`;
    return z.object({ id: z.union([z.string(), z.number()]).transform(String) }).parse(row).id;
  }

  /** Keeps the bought PDF on its purchase while Storage cannot take it, so a retry stores it instead of buying again. */
  async park(job: ClaimedJob, purchaseId: string, pdf: Uint8Array): Promise<void> {
    await this.#sql`select queue.park_purchased_pdf(${job.id}, ${job.leaseToken}, ${purchaseId}, ${Buffer.from(pdf.buffer, pdf.byteOffset, pdf.byteLength)})`;
  }

  /** The PDF an earlier attempt of this job bought and could not store, if any. */
  async parked(job: ClaimedJob): Promise<{ readonly purchaseId: string; readonly pdf: Uint8Array } | undefined> {
    const [row] = await this.#sql`select purchase_id, pdf from queue.parked_purchased_pdf(${job.id}, ${job.leaseToken})`;
    if (row === undefined) return undefined;
    const parsed = z.object({ purchase_id: z.union([z.string(), z.number()]).transform(String), pdf: z.instanceof(Uint8Array) }).parse(row);
    return { purchaseId: parsed.purchase_id, pdf: parsed.pdf };
  }

  async recordStorage(purchaseId: string, supabasePath: string): Promise<void> {
    await this.#sql`select queue.record_purchase_storage(${purchaseId}, ${supabasePath})`;
  }
}
