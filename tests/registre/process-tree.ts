/**
 * The Chromium processes a runner task owns: descendants of the task's
 * process, read from /proc. For checks that none outlives the task, and for
 * the benchmark's memory (PSS) figures.
 */
import { readdirSync, readFileSync } from "node:fs";

interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly command: string;
}

function processes(): ProcessInfo[] {
  const list: ProcessInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command sits in parentheses and may hold spaces; the fields after it are fixed.
      const close = stat.lastIndexOf(")");
      const command = stat.slice(stat.indexOf("(") + 1, close);
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      list.push({ pid: Number(entry), ppid, command });
    } catch {
      // Gone between the listing and the read.
    }
  }
  return list;
}

/** Pids of every Chromium process below `rootPid`. */
export function chromiumDescendants(rootPid: number): number[] {
  const all = processes();
  const children = new Map<number, ProcessInfo[]>();
  for (const info of all) children.set(info.ppid, [...(children.get(info.ppid) ?? []), info]);
  const found: number[] = [];
  const stack = [rootPid];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    for (const child of children.get(pid) ?? []) {
      if (/chrom/i.test(child.command)) found.push(child.pid);
      stack.push(child.pid);
    }
  }
  return found;
}

/** Whether `pid` still runs (a zombie counts as gone). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Proportional set size of `pids` together, in bytes (shared pages split between sharers). */
export function totalPssBytes(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
      const match = /^Pss:\s+(\d+) kB/m.exec(rollup);
      if (match?.[1] !== undefined) total += Number(match[1]) * 1024;
    } catch {
      // Exited meanwhile.
    }
  }
  return total;
}
