// The Upstash REST protocol: who may call, requests to Redis commands, replies to JSON (`@upstash/redis` pkg/http.ts, pkg/pipeline.ts).
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

/** One value of a REST reply, after RESP2 → JSON. */
export type RestValue = string | number | null | RestValue[];
export type RestEntry = { result: RestValue } | { error: string };
export type CommandArgs = readonly [name: string, ...args: string[]];

/** Largest request body accepted; Upstash's own limit is lower, this only guards memory. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** A reply still in ioredis form (Buffers, numbers, nested arrays), or Redis's error message. */
export type Reply = { raw: unknown } | { error: string };

export function isAuthorized(request: IncomingMessage, expectedTokenDigest: Buffer): boolean {
  const header = headerValue(request, "authorization");
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  const presented = match?.[1] ?? new URL(request.url ?? "/", "http://localhost").searchParams.get("_token");
  if (!presented) return false;
  // Comparing fixed-length digests keeps the comparison constant-time even when lengths differ.
  return timingSafeEqual(sha256(presented), expectedTokenDigest);
}

export function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/** `["SET", "k", "v"]` → a command, or an error message for the client. */
export function parseCommand(body: Buffer): CommandArgs | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return "ERR failed to parse command: body is not JSON";
  }
  return toCommand(parsed);
}

export function parseCommandList(body: Buffer): CommandArgs[] | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return "ERR failed to parse pipeline request: body is not JSON";
  }
  if (!Array.isArray(parsed) || parsed.length === 0) return "ERR a pipeline must be a non-empty array of commands";
  const commands: CommandArgs[] = [];
  for (const item of parsed) {
    const command = toCommand(item);
    if (typeof command === "string") return command;
    commands.push(command);
  }
  return commands;
}

function toCommand(value: unknown): CommandArgs | string {
  if (!Array.isArray(value) || value.length === 0) return "ERR a command must be a non-empty JSON array";
  const args: string[] = [];
  for (const item of value) {
    // The client already turns every argument into a string; numbers and
    // booleans from hand-written requests are accepted as Redis would read them.
    if (typeof item === "string") args.push(item);
    else if (typeof item === "number" || typeof item === "boolean") args.push(String(item));
    else return "ERR command arguments must be strings, numbers or booleans";
  }
  const [name, ...rest] = args;
  if (name === undefined || name.length === 0) return "ERR empty command name";
  return [name, ...rest];
}

/** `/set/foo/bar` → `SET foo bar`; a POST body becomes the last argument, as Upstash does. */
export function pathCommand(pathname: string, body: Buffer): CommandArgs | string {
  const segments = pathname.split("/").filter((segment) => segment.length > 0).map((segment) => decodeURIComponent(segment));
  if (body.length > 0) segments.push(body.toString("utf8"));
  const [name, ...args] = segments;
  if (name === undefined) return "ERR empty command";
  return [name, ...args];
}

export function encodeEntry(reply: Reply, base64: boolean): RestEntry {
  return "error" in reply ? { error: reply.error } : { result: toRestValue(reply.raw, base64) };
}

/** RESP2 reply → JSON: strings (base64 when asked), integers, null, nested arrays. */
function toRestValue(value: unknown, base64: boolean): RestValue {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  if (Buffer.isBuffer(value)) return base64 ? value.toString("base64") : value.toString("utf8");
  if (typeof value === "string") return base64 ? Buffer.from(value, "utf8").toString("base64") : value;
  if (Array.isArray(value)) return value.map((item: unknown) => toRestValue(item, base64));
  // An error nested in an array (a Lua table holding an error reply) has no
  // REST form of its own; its message is the most useful thing to show.
  if (value instanceof Error) return toRestValue(value.message, base64);
  return toRestValue(String(value), base64);
}

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}

export function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
