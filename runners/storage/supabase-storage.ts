/**
 * Supabase Storage with the runners' narrow credential (SUPABASE_STORAGE_KEY).
 * It uses supabase-js's own Storage client, `@supabase/storage-js`, rather
 * than `createClient`: on Node 20 `createClient` builds a Realtime client
 * that throws for want of a native WebSocket, though a runner never
 * subscribes to anything. The client reports failures as values; here they
 * become the two failures every DocumentStorage reports.
 */
import { StorageApiError, StorageClient } from "@supabase/storage-js";
import type { StorageSession } from "./storage-session.ts";
import { InfrastructureError } from "../lifecycle/job-errors.ts";
import { splitObjectPath, StorageObjectNotFoundError, type DocumentStorage } from "./document-storage.ts";

export class SupabaseStorage implements DocumentStorage {
  private readonly client: StorageClient;
  private readonly insertOnly: boolean;

  /**
   * `credential`: the runner family's Auth session (the publishable key as
   * apikey, the session's short-lived user JWT as bearer; insert-only for
   * registre), or the legacy storage_runner JWT (migration path: as apikey
   * and bearer, as supabase-js sends a key, with overwrite).
   */
  constructor(url: string, credential: StorageSession | string) {
    this.client = storageClientFor(url, credential);
    this.insertOnly = typeof credential !== "string";
  }

  async upload(path: string, bytes: Uint8Array, contentType: string): Promise<void> {
    const { bucket, name } = splitObjectPath(path);
    // Insert-only: the registre user may not overwrite (Storage needs UPDATE for upsert). An object already at the
    // path is this document stored by an earlier attempt (the path is the document's), so it counts as stored.
    const { error } = await this.client.from(bucket).upload(name, bytes, { contentType, upsert: !this.insertOnly });
    if (error && this.insertOnly && isDuplicate(error)) return;
    if (error) throw storageFailure("upload", path, error);
  }

  async download(path: string): Promise<Uint8Array> {
    const { bucket, name } = splitObjectPath(path);
    const { data, error } = await this.client.from(bucket).download(name);
    if (error) throw storageFailure("download", path, error);
    return new Uint8Array(await data.arrayBuffer());
  }
}

/** Storage's "The resource already exists" (409, or 400 with statusCode "409", by version). */
function isDuplicate(error: unknown): boolean {
  return error instanceof StorageApiError && (error.status === 409 || error.statusCode === "409" || /already exists|Duplicate/i.test(error.message));
}

/**
 * A missing object is the row's problem; anything else (network, 5xx, an
 * expired or refused credential) is the task's, and spends no attempt.
 * Storage has answered a missing object both as 404 and as 400 with
 * statusCode "404", depending on its version.
 */
function storageFailure(operation: "upload" | "download", path: string, error: unknown): Error {
  if (error instanceof StorageApiError && (error.status === 404 || error.statusCode === "404" || error.statusCode === "not_found")) {
    return new StorageObjectNotFoundError(path);
  }
  const detail = error instanceof StorageApiError ? `${error.status} ${error.message}` : error instanceof Error ? error.message : String(error);
  return new InfrastructureError(`Supabase Storage ${operation} of ${path} failed: ${detail}`, { cause: error });
}

/**
 * A Storage client for `credential`: the runner family's Auth session (the
 * publishable key as apikey, the session's short-lived user JWT as bearer,
 * put on each request so a refreshed token is used at once), or the legacy
 * storage_runner JWT (as apikey and bearer, as supabase-js sends a key).
 */
export function storageClientFor(url: string, credential: StorageSession | string): StorageClient {
  const base = `${url.replace(/\/+$/, "")}/storage/v1`;
  if (typeof credential === "string") return new StorageClient(base, { apikey: credential, Authorization: `Bearer ${credential}` });
  const withSession: typeof fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set("apikey", credential.publishableKey);
    headers.set("authorization", `Bearer ${await credential.accessToken()}`);
    return fetch(input, { ...init, headers });
  };
  return new StorageClient(base, { apikey: credential.publishableKey }, withSession);
}
