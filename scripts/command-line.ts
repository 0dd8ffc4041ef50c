import { parseArgs, type ParseArgsConfig } from "node:util";
import type { z } from "zod";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";

/**
 * The flags of a command, read with node's parseArgs and checked with a zod
 * schema: an unknown flag or a bad value prints what is wrong (with the help
 * after an unknown flag) and asks for exit 2; `--help` prints the help and
 * asks for exit 0. Otherwise resolves with the parsed flags.
 */
export function readCommandLine<Schema extends z.ZodType>(
  options: NonNullable<ParseArgsConfig["options"]>,
  schema: Schema,
  help: string,
  /** The words to read. @default process.argv after the script (a command with a subcommand passes the rest) */
  words?: readonly string[],
): { args: z.output<Schema> } | { exitCode: 0 | 2 } {
  let raw;
  try {
    raw = parseArgs({ options, ...(words === undefined ? {} : { args: [...words] }) }).values;
  } catch (error) {
    process.stderr.write(`${errorMessage(error)}\n\n${help}`);
    return { exitCode: 2 };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    process.stderr.write(`${parsed.error.issues.map((issue) => `--${String(issue.path[0])} ${issue.message}`).join("\n")}\n`);
    return { exitCode: 2 };
  }
  if (raw["help"] === true) {
    process.stdout.write(help);
    return { exitCode: 0 };
  }
  return { args: parsed.data };
}
