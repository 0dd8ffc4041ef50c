/**
 * Which DocumentStorage a runner gets for its configuration. Kept apart from
 * document-storage.ts, which the implementations import: choosing one there
 * made a circle.
 */
import type { DocumentStorage, StorageConfig } from "./document-storage.ts";
import { LocalDirectoryStorage } from "./local-directory-storage.ts";
import { StorageSession } from "./storage-session.ts";
import { SupabaseStorage } from "./supabase-storage.ts";

/** `now`: the Auth session's clock (tests inject one; the token's expiry is the server's word, a duration). */
export function createDocumentStorage(config: StorageConfig, options: { now?: () => number } = {}): DocumentStorage {
  switch (config.kind) {
    case "local-directory":
      return new LocalDirectoryStorage(config.root);
    case "supabase":
      return new SupabaseStorage(config.url, config.key);
    case "supabase-user":
      return new SupabaseStorage(config.url, new StorageSession({ url: config.url, publishableKey: config.publishableKey, email: config.email, password: config.password, ...(options.now ? { now: options.now } : {}) }));
  }
}
