/**
 * The Gemini File API as the test server (gemini-test-server.ts) speaks it:
 * the resumable upload in the SDK's 8 MiB chunks, files.get and
 * files.delete, files that end FAILED and files that expire. Sources are in
 * the server's header comment.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { errorBody, headerOf, isRecord, parseJson, sendJson, type GeminiStoredFile } from "./gemini-test-protocol.ts";

/** What the File API routes log of a request (the server's log entry). */
export type GeminiFileLog = (entry: { kind: "upload.start" | "upload.chunk" | "upload.finalize" | "files.get" | "files.delete"; status: number; fileName?: string }) => void;

export interface GeminiTestFiles {
  readonly files: Map<string, GeminiStoredFile>;
  /** Answers the request when it is a File API route; false when it is not one. */
  handle(req: IncomingMessage, res: ServerResponse, method: string, path: string, parsedUrl: URL, body: Buffer, log: GeminiFileLog): boolean;
  failNextUploads(count: number): void;
  expireNextUsedFiles(count: number): void;
  /** Marks the file expired when an expiry is scheduled (a generateContent names it). */
  useFile(name: string): void;
}

export function geminiTestFiles(options: { readonly fileProcessingMs: number; readonly baseUrl: () => string }): GeminiTestFiles {
  const { fileProcessingMs } = options;
  const files = new Map<string, GeminiStoredFile>();
  const uploads = new Map<string, { displayName: string | undefined; mimeType: string; size: number; received: Buffer; chunks: number }>();
  let filesToFail = 0;
  let filesToExpire = 0;

  function fileResource(file: GeminiStoredFile): Record<string, unknown> {
    const active = Date.now() - file.createdAt >= fileProcessingMs;
    const created = new Date(file.createdAt).toISOString();
    return {
      name: file.name,
      ...(file.displayName === undefined ? {} : { displayName: file.displayName }),
      mimeType: file.mimeType,
      sizeBytes: String(file.bytes.byteLength),
      createTime: created,
      updateTime: created,
      expirationTime: new Date(file.createdAt + 48 * 3_600_000).toISOString(),
      sha256Hash: "",
      uri: `${options.baseUrl()}/v1beta/${file.name}`,
      // A file Google could not process ends FAILED with an error (files API: File.state FAILED, File.error a google.rpc.Status).
      state: active ? (file.fails ? "FAILED" : "ACTIVE") : "PROCESSING",
      ...(active && file.fails ? { error: { code: 400, message: "The document could not be processed." } } : {}),
      source: "UPLOADED",
    };
  }


  return {
    files,
    failNextUploads(count) {
      filesToFail = count;
    },
    expireNextUsedFiles(count) {
      filesToExpire = count;
    },
    useFile(name) {
      const file = files.get(name);
      if (filesToExpire > 0 && file !== undefined && !file.deleted) {
        filesToExpire -= 1;
        file.deleted = true;
      }
    },
    handle(req, res, method, path, parsedUrl, body, log) {
    if (method === "POST" && path === "/upload/v1beta/files") {
      const command = headerOf(req, "x-goog-upload-command");
      const uploadId = parsedUrl.searchParams.get("upload_id");
      if (uploadId === null) {
        if (headerOf(req, "x-goog-upload-protocol") !== "resumable" || command !== "start") {
          sendJson(res, 400, errorBody(400, "expected x-goog-upload-protocol: resumable and x-goog-upload-command: start", "INVALID_ARGUMENT"));
          log({ kind: "upload.start", status: 400 });
          return true;
        }
        const meta = parseJson(body);
        const file = isRecord(meta?.["file"]) ? meta["file"] : {};
        const id = randomBytes(6).toString("hex");
        uploads.set(id, {
          displayName: typeof file["displayName"] === "string" ? file["displayName"] : undefined,
          mimeType: headerOf(req, "x-goog-upload-header-content-type") ?? "application/octet-stream",
          size: Number(headerOf(req, "x-goog-upload-header-content-length") ?? "0"),
          received: Buffer.alloc(0),
          chunks: 0,
        });
        res.setHeader("x-goog-upload-url", `${options.baseUrl()}/upload/v1beta/files?upload_id=${id}&upload_protocol=resumable`);
        res.setHeader("x-goog-upload-status", "active");
        res.setHeader("x-goog-upload-chunk-granularity", "8388608");
        res.writeHead(200, { "content-type": "text/plain" }).end();
        log({ kind: "upload.start", status: 200 });
        return true;
      }
      // The SDK sends the bytes in chunks of 8 MiB (js-genai src/cross/_cross_uploader.ts MAX_CHUNK_SIZE):
      // "upload" at each offset, "upload, finalize" on the last; each answer says x-goog-upload-status.
      const pending = uploads.get(uploadId);
      const offset = Number(headerOf(req, "x-goog-upload-offset") ?? "-1");
      if (pending === undefined || (command !== "upload" && command !== "upload, finalize") || offset !== pending.received.byteLength) {
        sendJson(res, 400, errorBody(400, `unknown upload ${uploadId}, or a chunk at offset ${offset} where ${pending?.received.byteLength ?? 0} bytes were received`, "INVALID_ARGUMENT"));
        log({ kind: "upload.finalize", status: 400 });
        return true;
      }
      pending.received = Buffer.concat([pending.received, body]);
      pending.chunks += 1;
      if (command === "upload") {
        res.setHeader("x-goog-upload-status", "active");
        res.writeHead(200, { "content-type": "text/plain" }).end();
        log({ kind: "upload.chunk", status: 200 });
        return true;
      }
      uploads.delete(uploadId);
      const name = `files/${randomBytes(6).toString("hex")}`;
      const failing = filesToFail > 0;
      if (failing) filesToFail -= 1;
      const stored: GeminiStoredFile = {
        name,
        displayName: pending.displayName,
        mimeType: pending.mimeType,
        bytes: new Uint8Array(pending.received),
        createdAt: Date.now(),
        deleted: false,
        chunks: pending.chunks,
        fails: failing,
      };
      files.set(name, stored);
      res.setHeader("x-goog-upload-status", "final");
      sendJson(res, 200, { file: fileResource(stored) });
      log({ kind: "upload.finalize", status: 200, fileName: name });
      return true;
    }

    const fileCall = /^\/v1beta\/(files\/[^/:]+)$/.exec(path);
    if (fileCall && (method === "GET" || method === "DELETE")) {
      const name = fileCall[1] ?? "";
      const kind = method === "GET" ? "files.get" : "files.delete";
      const file = files.get(name);
      if (file === undefined || file.deleted) {
        sendJson(res, 404, errorBody(404, `File ${name} not found.`, "NOT_FOUND"));
        log({ kind, status: 404, fileName: name });
        return true;
      }
      if (method === "DELETE") file.deleted = true;
      sendJson(res, 200, method === "GET" ? fileResource(file) : {});
      log({ kind, status: 200, fileName: name });
      return true;
    }

      return false;
    },
  };
}
