// Running REST commands on Redis: one shared connection, pipelines, MULTI/EXEC transactions, blocking commands on a connection of their own.
import { Command, type Redis } from "ioredis";
import type { CommandArgs, Reply } from "./upstash-rest-protocol.ts";
import type { Prepared, ScriptRewriter } from "./upstash-script-rewriter.ts";

/**
 * Commands that change the state of the connection they run on. Every request
 * shares one connection, so these would leak from one request into the next.
 */
const CONNECTION_STATE_COMMANDS = new Set([
  "AUTH", "HELLO", "SELECT", "RESET", "QUIT", "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH",
  "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR", "SYNC", "PSYNC",
]);

/** Commands that can block; they get a connection of their own so they cannot stall everyone else. */
const BLOCKING_COMMANDS = new Set([
  "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", "WAITAOF",
]);

/**
 * Sends every command at once on the shared connection, in order, and waits
 * for all replies: that is exactly a Redis pipeline, errors stay per command.
 */
export async function runPipeline(redis: Redis, scripts: ScriptRewriter, commands: readonly CommandArgs[]): Promise<Reply[]> {
  const refused = commands.map(refusal);
  if (commands.some(isBlocking)) {
    // A blocking command would hold the shared connection; run the whole
    // pipeline on its own connection so the order between commands holds.
    const own = redis.duplicate();
    own.on("error", () => {});
    try {
      // The offline queue is off, so connect before the first command.
      await own.connect();
      const replies: Reply[] = [];
      for (const [i, command] of commands.entries()) {
        replies.push(refused[i] ?? (await runOne(own, scripts.prepare(command))));
      }
      return replies;
    } finally {
      own.disconnect();
    }
  }
  return Promise.all(commands.map((command, i) => refused[i] ?? runOne(redis, scripts.prepare(command))));
}

async function runOne(redis: Redis, prepared: Prepared): Promise<Reply> {
  const reply = await settle(send(redis, prepared.command));
  return "error" in reply ? reply : { raw: prepared.present(reply.raw) };
}

/**
 * MULTI, the commands and EXEC are written in the same tick on the shared
 * connection, so nothing from another request can land between them, and
 * Redis runs them as one transaction. A command Redis refuses while queuing
 * aborts the whole transaction (EXECABORT), which the REST API reports as one
 * error for the request; errors raised while executing stay per command.
 */
export async function runTransaction(
  redis: Redis,
  scripts: ScriptRewriter,
  commands: readonly CommandArgs[],
): Promise<{ entries: Reply[] } | { error: string }> {
  for (const [i, command] of commands.entries()) {
    const refused = refusal(command);
    if (refused) return { error: `EXECABORT Transaction discarded because of previous errors. Command ${i + 1}: ${refused.error}` };
  }
  const prepared = commands.map((command) => scripts.prepare(command));
  const multi = settle(send(redis, ["MULTI"]));
  const queued = prepared.map(({ command }) => settle(send(redis, command)));
  const exec = settle(send(redis, ["EXEC"]));
  const [multiReply, execReply, ...queuedReplies] = await Promise.all([multi, exec, ...queued]);
  if (multiReply && "error" in multiReply) return { error: multiReply.error };
  const queueError = queuedReplies.findIndex((reply) => "error" in reply);
  if (execReply && "error" in execReply) {
    const detail = queueError >= 0 ? ` Command ${queueError + 1}: ${(queuedReplies[queueError] as { error: string }).error}` : "";
    return { error: `${execReply.error}${detail}` };
  }
  if (!execReply || !Array.isArray(execReply.raw)) return { error: "ERR transaction aborted" };
  return {
    entries: execReply.raw.map((value: unknown, i) =>
      value instanceof Error ? { error: value.message } : { raw: prepared[i]?.present(value) ?? value },
    ),
  };
}


function send(redis: Redis, [name, ...args]: CommandArgs): Promise<unknown> {
  // Upper-case names skip ioredis' per-command argument and reply transformers
  // (`hgetall` → object, `hset` object arguments), which are keyed on lower-case
  // names: replies must stay RESP2-shaped. `replyEncoding: null` keeps bulk
  // strings as Buffers so bytes pass through untouched.
  return redis.sendCommand(new Command(name.toUpperCase(), args, { replyEncoding: null })) as Promise<unknown>;
}

async function settle(reply: Promise<unknown>): Promise<Reply> {
  try {
    return { raw: await reply };
  } catch (error) {
    if (error instanceof Error && error.name === "ReplyError") return { error: error.message };
    // Not an answer from Redis (connection lost, …): fail the whole request.
    throw error;
  }
}

function refusal([name]: CommandArgs): { error: string } | undefined {
  const upper = name.toUpperCase();
  if (CONNECTION_STATE_COMMANDS.has(upper)) return { error: `ERR command ${upper} is not supported over REST` };
  return undefined;
}

function isBlocking([name, ...args]: CommandArgs): boolean {
  const upper = name.toUpperCase();
  if (BLOCKING_COMMANDS.has(upper)) return true;
  return (upper === "XREAD" || upper === "XREADGROUP") && args.some((arg) => arg.toUpperCase() === "BLOCK");
}
