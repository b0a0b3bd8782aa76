/**
 * The processes a process started, directly or not, read from Linux's /proc: what a command stops
 * on exit, and what tests check is gone afterwards. Each process is named by its pid and its start
 * time, so a pid reused by an unrelated process is never mistaken for it.
 */

/** One process, as /proc shows it. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Start time in clock ticks since boot (field 22 of /proc/<pid>/stat). */
  startTime: number;
  /** 'R', 'S', 'Z' (zombie), … */
  state: string;
  /** Command line, arguments joined by spaces. */
  cmdline: string;
}

/** Reads one process; undefined when it is gone (or /proc is absent). */
export function readProcess(pid: number): ProcessInfo | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name is in parentheses and may itself contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    let cmdline = "";
    try {
      cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim();
    } catch { /* exited meanwhile */ }
    return {
      pid,
      state: fields[0],
      ppid: Number(fields[1]),
      startTime: Number(fields[19]),
      cmdline,
    };
  } catch {
    return undefined;
  }
}

/** Every process on the machine (empty without /proc). */
export function allProcesses(): ProcessInfo[] {
  const list: ProcessInfo[] = [];
  try {
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^[0-9]+$/.test(entry.name)) continue;
      const info = readProcess(Number(entry.name));
      if (info) list.push(info);
    }
  } catch { /* no /proc: nothing to list */ }
  return list;
}

/** The live (non-zombie) descendants of `pid`, children before grandchildren. */
export function descendants(pid: number): ProcessInfo[] {
  const byParent = new Map<number, ProcessInfo[]>();
  for (const p of allProcesses()) {
    const siblings = byParent.get(p.ppid) ?? [];
    siblings.push(p);
    byParent.set(p.ppid, siblings);
  }
  const found: ProcessInfo[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of byParent.get(queue.shift()!) ?? []) {
      if (child.state !== "Z") found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

/** Whether `process` still runs (same pid and start time, not a zombie). */
export function isRunning(process: Pick<ProcessInfo, "pid" | "startTime">): boolean {
  const now = readProcess(process.pid);
  return now !== undefined && now.startTime === process.startTime && now.state !== "Z";
}
