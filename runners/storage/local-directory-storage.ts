/**
 * The embedded stack's Storage: each object is a file at
 * `<root>/<supabase_path>`, so a user can open the PDF the runner stored.
 * Writes go to a temporary name first and are renamed into place, so a
 * reader (the OCR runner) never sees half a PDF.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { InfrastructureError } from "../lifecycle/job-errors.ts";
import { splitObjectPath, StorageObjectNotFoundError, type DocumentStorage } from "./document-storage.ts";

export class LocalDirectoryStorage implements DocumentStorage {
  constructor(readonly root: string) {}

  async upload(path: string, bytes: Uint8Array, contentType: string): Promise<void> {
    void contentType; // A file has no content type; the .pdf name says it.
    const file = this.fileOf(path);
    const temporary = `${file}.${randomBytes(4).toString("hex")}.partial`;
    try {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(temporary, bytes);
      await rename(temporary, file);
    } catch (error) {
      throw new InfrastructureError(`local storage could not write ${path}: ${describe(error)}`, { cause: error });
    }
  }

  async download(path: string): Promise<Uint8Array> {
    const file = this.fileOf(path);
    try {
      return new Uint8Array(await readFile(file));
    } catch (error) {
      if (isErrnoException(error) && error.code === "ENOENT") throw new StorageObjectNotFoundError(path);
      throw new InfrastructureError(`local storage could not read ${path}: ${describe(error)}`, { cause: error });
    }
  }

  private fileOf(path: string): string {
    const { bucket, name } = splitObjectPath(path);
    return join(this.root, bucket, name);
  }
}

function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && "code" in error;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
