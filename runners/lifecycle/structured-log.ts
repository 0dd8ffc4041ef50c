/**
 * Runner logs: one JSON object per line on stdout, so CloudWatch (and the
 * local task server) can filter on `job_id`, `kind` and `environment`.
 *
 * Two rules hold whatever a caller passes:
 * - no secrets: fields whose name looks like a credential are replaced, and
 *   the secret values (database password, Upstash token, Gemini and Storage
 *   keys, and any secret learned at run time such as a leased registry
 *   password, see `addSecret`) are scrubbed from every string, including
 *   error messages;
 * - no document text: fields that hold OCR output are replaced by their
 *   length, and long strings are cut, so a page dump cannot slip through.
 */

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (e.g. `{ job_id }`). */
  child(fields: LogFields): Logger;
  /**
   * Registers a secret learned at run time (a leased registry password, a
   * session token): from now on this logger, its parent and every child
   * redact it. Values shorter than 4 characters are ignored.
   */
  addSecret(value: string): void;
  /**
   * The same redaction for text that leaves the process another way, e.g.
   * an error message written to a row: every known secret replaced, nothing
   * cut.
   */
  redact(text: string): string;
}

export interface LoggerOptions {
  /** Fields on every line, e.g. `{ kind, environment, worker_id }`. */
  base: LogFields;
  /** Lines below this level are dropped. @default "info" */
  level?: LogLevel;
  /** Values that must never appear in a line (passwords, tokens). Shorter than 4 characters are ignored. */
  secrets?: readonly string[];
  /** Where each line goes. @default a write to process.stdout */
  write?: (line: string) => void;
  /** @default () => new Date() */
  now?: () => Date;
}

export const REDACTED = "[redacted]";

/** Field names that hold credentials, whatever their case or separator (`db_password`, `apiKey`, `Authorization`). */
const SECRET_FIELD = /pass(word|wd)?|token|secret|key|authorization|cookie|credential|signature/i;
/** Field names that hold document text. */
const DOCUMENT_TEXT_FIELD = /^(boosted_?)?(file_?)?content$|^(document_?|page_?|ocr_?|boosted_?)?text$/i;
/** Longer strings are cut: no legitimate log field is a page long. */
const MAX_STRING_LENGTH = 2000;
const MAX_DEPTH = 6;

export function createLogger(options: LoggerOptions): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level ?? "info");
  // Shared by the whole family of loggers, so a secret one learns all redact.
  const known = [...(options.secrets ?? [])];
  let secrets = expandSecrets(known);
  const write = options.write ?? ((line: string) => void process.stdout.write(line));
  const now = options.now ?? (() => new Date());

  const make = (bound: LogFields): Logger => {
    const emit = (level: LogLevel, msg: string, fields: LogFields | undefined) => {
      if (LOG_LEVELS.indexOf(level) < threshold) return;
      const { time: _time, level: _level, msg: _msg, ...rest } = sanitize({ ...bound, ...fields }, secrets, 0) as Record<string, unknown>;
      // time, level and msg lead every line, and no caller's field replaces them.
      write(`${JSON.stringify({ time: now().toISOString(), level, msg: scrub(msg, secrets), ...rest })}\n`);
    };
    return {
      debug: (msg, fields) => emit("debug", msg, fields),
      info: (msg, fields) => emit("info", msg, fields),
      warn: (msg, fields) => emit("warn", msg, fields),
      error: (msg, fields) => emit("error", msg, fields),
      child: (fields) => make({ ...bound, ...fields }),
      addSecret: (value) => {
        if (value.length < 4 || known.includes(value)) return;
        known.push(value);
        secrets = expandSecrets(known);
      },
      redact: (text) => redactSecrets(text, secrets),
    };
  };
  return make(options.base);
}

/** A secret may appear as is or percent-encoded (inside a connection URL). */
function expandSecrets(secrets: readonly string[]): string[] {
  const all = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    all.add(secret);
    all.add(encodeURIComponent(secret));
  }
  // Longest first, so a secret that contains another is replaced whole.
  return [...all].sort((a, b) => b.length - a.length);
}

function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join(REDACTED);
  return out;
}

function scrub(text: string, secrets: readonly string[]): string {
  const out = redactSecrets(text, secrets);
  return out.length > MAX_STRING_LENGTH ? `${out.slice(0, MAX_STRING_LENGTH)}… [${out.length - MAX_STRING_LENGTH} more characters cut]` : out;
}

function sanitize(value: unknown, secrets: readonly string[], depth: number): unknown {
  if (typeof value === "string") return scrub(value, secrets);
  if (value === null || typeof value === "number" || typeof value === "boolean") return value;
  if (typeof value === "bigint") return value.toString();
  if (value === undefined || typeof value === "function" || typeof value === "symbol") return undefined;
  if (depth >= MAX_DEPTH) return "[too deep]";
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Error) return sanitize(describeError(value), secrets, depth + 1);
  if (Array.isArray(value)) return value.map((item) => sanitize(item, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    if (SECRET_FIELD.test(key)) out[key] = REDACTED;
    else if (DOCUMENT_TEXT_FIELD.test(key)) out[key] = typeof field === "string" ? `[document text: ${field.length} characters]` : REDACTED;
    else out[key] = sanitize(field, secrets, depth + 1);
  }
  return out;
}

/** The parts of an error worth a log line: no stack of internals, the SQLSTATE when Postgres sent one. */
function describeError(error: Error): Record<string, unknown> {
  const code = "code" in error && (typeof error.code === "string" || typeof error.code === "number") ? error.code : undefined;
  return {
    name: error.name,
    message: error.message,
    ...(code === undefined ? {} : { code }),
    ...(error.cause === undefined ? {} : { cause: error.cause }),
  };
}
