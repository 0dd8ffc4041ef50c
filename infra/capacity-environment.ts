/**
 * The capacity configuration written back as the environment variables
 * parseCapacityConfig reads. The deploy parses the budgets once (the same
 * parser and defaults as dispatch) and hands every runner task the full,
 * explicit result, so a runner renews its ledger lease with the limits this
 * deploy validated instead of whatever defaults its own build carries.
 *
 * Plain TypeScript without SST globals: the tests import it directly.
 */
import { KIND_VARIABLES, type CapacityConfig } from "../supabase/functions/_shared/capacity-config.ts";
import { geminiEnvironment } from "../supabase/functions/_shared/gemini-config.ts";
import { JOB_KINDS } from "../supabase/functions/_shared/job-kinds.ts";

export function capacityEnvironment(config: CapacityConfig): Record<string, string> {
  const environment: Record<string, string> = {
    SERVER_MAX_CPU: decimal(config.server.maxVcpu),
    SERVER_MAX_RAM: decimal(config.server.maxRamGb),
    SERVER_RESERVE_CPU_PERCENT: decimal(config.server.reserveVcpuPercent),
    SERVER_RESERVE_RAM_PERCENT: decimal(config.server.reserveRamPercent),
    LEDGER_LEASE_TTL_SECONDS: decimal(config.leaseTtlMs / 1000),
    ...geminiEnvironment(config.gemini),
  };
  for (const kind of JOB_KINDS) {
    const names = KIND_VARIABLES[kind];
    const profile = config.profiles[kind];
    environment[names.vcpu] = decimal(profile.vcpu);
    environment[names.ramGb] = decimal(profile.ramGb);
    environment[names.priority] = decimal(profile.priority);
    // Unset means "no cap" to the parser; there is no value that says so.
    if (profile.maxTasks !== null) environment[names.maxTasks] = decimal(profile.maxTasks);
  }
  return environment;
}

/**
 * A plain decimal such as 8 or 0.75, the only form the capacity parser
 * accepts (String() would write 1e-7 for tiny numbers).
 */
function decimal(value: number): string {
  const text = String(value);
  if (!/^\d+(\.\d+)?$/.test(text)) throw new RangeError(`capacity value ${text} cannot be written as a plain decimal`);
  return text;
}
