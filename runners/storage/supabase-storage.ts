/**
 * Supabase Storage with the runners' narrow credential (SUPABASE_STORAGE_KEY).
 * It uses supabase-js's own Storage client, `@supabase/storage-js`, rather
 * than `createClient`: on Node 20 `createClient` builds a Realtime client
 * that throws for want of a native WebSocket, though a runner never
 * subscribes to anything. The client reports failures as values; here they
 * become the two failures every DocumentStorage reports.
 */
import { StorageApiError, StorageClient } from "@supabase/storage-js";
import { InfrastructureError } from "../lifecycle/job-errors.ts";
import { splitObjectPath, StorageObjectNotFoundError, type DocumentStorage } from "./document-storage.ts";

export class SupabaseStorage implements DocumentStorage {
  private readonly client: StorageClient;

  constructor(url: string, key: string) {
    // The headers supabase-js sends: the key as apikey and as the bearer JWT.
    this.client = new StorageClient(`${url.replace(/\/+$/, "")}/storage/v1`, { apikey: key, Authorization: `Bearer ${key}` });
  }

  async upload(path: string, bytes: Uint8Array, contentType: string): Promise<void> {
    const { bucket, name } = splitObjectPath(path);
    const { error } = await this.client.from(bucket).upload(name, bytes, { contentType, upsert: true });
    if (error) throw storageFailure("upload", path, error);
  }

  async download(path: string): Promise<Uint8Array> {
    const { bucket, name } = splitObjectPath(path);
    const { data, error } = await this.client.from(bucket).download(name);
    if (error) throw storageFailure("download", path, error);
    return new Uint8Array(await data.arrayBuffer());
  }
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
