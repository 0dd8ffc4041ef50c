// Lua scripts as stock Redis accepts them: Upstash-only script flags dropped, and the SHA1 the client knows mapped to the one Redis knows.
import { createHash } from "node:crypto";
import type { CommandArgs } from "./upstash-rest-protocol.ts";

/**
 * `@upstash/ratelimit` scripts start with `#!lua flags=allow-key-locking`, a
 * flag only Upstash knows: stock Redis 7.0 refuses the script ("Unexpected
 * flag in script shebang"). We drop that flag (and the shebang line when no
 * flag is left) before Redis sees the script.
 *
 * The client computes the SHA1 of the script it holds — with the shebang — and
 * sends `EVALSHA <that sha>`, falling back to EVAL on NOSCRIPT. Redis only
 * knows the SHA1 of the rewritten text, so we remember original → rewritten
 * for every script we rewrote and translate EVALSHA and SCRIPT EXISTS. An
 * unknown SHA passes through untouched, so Redis answers with its own NOSCRIPT
 * error and the client falls back to EVAL, which records the mapping.
 */
export class ScriptRewriter {
  readonly #rewrittenSha = new Map<string, string>();

  /** The command Redis should run, and how to turn its reply into the one Upstash would give. */
  prepare(command: CommandArgs): Prepared {
    const [name, ...args] = command;
    const upper = name.toUpperCase();
    if ((upper === "EVAL" || upper === "EVAL_RO") && args[0] !== undefined) {
      return unchangedReply([name, this.#strip(args[0]), ...args.slice(1)]);
    }
    if ((upper === "EVALSHA" || upper === "EVALSHA_RO") && args[0] !== undefined) {
      return unchangedReply([name, this.#translate(args[0]), ...args.slice(1)]);
    }
    if (upper === "SCRIPT" && args[0] !== undefined) {
      const sub = args[0].toUpperCase();
      if (sub === "LOAD" && args[1] !== undefined) {
        // Redis answers with the SHA1 of what it loaded; the client expects the one of what it sent.
        const originalSha = Buffer.from(sha1(args[1]), "utf8");
        return { command: [name, args[0], this.#strip(args[1])], present: () => originalSha };
      }
      if (sub === "EXISTS") return unchangedReply([name, args[0], ...args.slice(1).map((sha) => this.#translate(sha))]);
    }
    return unchangedReply(command);
  }

  /** The script as Redis 7.0 accepts it; records the SHA translation when the text changed. */
  #strip(script: string): string {
    const rewritten = withoutUpstashFlags(script);
    if (rewritten !== script) this.#rewrittenSha.set(sha1(script), sha1(rewritten));
    return rewritten;
  }

  #translate(sha: string): string {
    return this.#rewrittenSha.get(sha.toLowerCase()) ?? sha;
  }
}

/** A command ready for Redis, with what to do to its (successful) reply. */
export interface Prepared {
  readonly command: CommandArgs;
  present(raw: unknown): unknown;
}

function unchangedReply(command: CommandArgs): Prepared {
  return { command, present: (raw) => raw };
}

/** Script flags Upstash accepts but Redis 7.0 rejects. */
const UPSTASH_ONLY_SCRIPT_FLAGS = new Set(["allow-key-locking"]);

function withoutUpstashFlags(script: string): string {
  const match = /^#!lua([^\n]*)(\n|$)/.exec(script);
  if (!match) return script;
  const options = (match[1] ?? "").trim().split(/\s+/).filter((option) => option.length > 0);
  let changed = false;
  const kept = options.flatMap((option) => {
    if (!option.startsWith("flags=")) return [option];
    const flags = option.slice("flags=".length).split(",").filter((flag) => flag.length > 0);
    const supported = flags.filter((flag) => !UPSTASH_ONLY_SCRIPT_FLAGS.has(flag));
    if (supported.length === flags.length) return [option];
    changed = true;
    return supported.length > 0 ? [`flags=${supported.join(",")}`] : [];
  });
  if (!changed) return script;
  const rest = script.slice(match[0].length);
  // With no flag left the shebang line has nothing to say; an empty line in
  // its place keeps the line numbers in Lua error messages right.
  return kept.length > 0 ? `#!lua ${kept.join(" ")}\n${rest}` : `\n${rest}`;
}

function sha1(text: string): string {
  return createHash("sha1").update(text, "utf8").digest("hex");
}
