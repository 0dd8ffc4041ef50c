/**
 * Which DocumentStorage a runner gets for its configuration. Kept apart from
 * document-storage.ts, which the two implementations import: choosing one
 * there made a circle.
 */
import type { DocumentStorage, StorageConfig } from "./document-storage.ts";
import { LocalDirectoryStorage } from "./local-directory-storage.ts";
import { SupabaseStorage } from "./supabase-storage.ts";

export function createDocumentStorage(config: StorageConfig): DocumentStorage {
  return config.kind === "local-directory" ? new LocalDirectoryStorage(config.root) : new SupabaseStorage(config.url, config.key);
}
