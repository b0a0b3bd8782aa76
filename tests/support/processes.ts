/**
 * Helpers for tests that start one of the project's commands as a child process, wait until it
 * is up, signal it, and check that nothing it started is left running.
 */
import { childProcessEnv } from "../../scripts/lib/child_env.ts";
import { descendants, isRunning, type ProcessInfo } from "../../scripts/lib/process_tree.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A command started by a test, its output collected as it comes. */
export interface StartedCommand {
  child: Deno.ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves once `pattern` appears in the output; returns its match. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/**
 * Runs `deno <args>` (e.g. `run -A scripts/dev.ts`, `task dev`) from the repository root with
 * only `env` (plus Deno's own).
 */
export function startDenoCommand(args: string[], env: Record<string, string>): StartedCommand {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { ...childProcessEnv(), ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  void collect(child.stdout).catch(() => {});
  void collect(child.stderr).catch(() => {});
  return {
    child,
    output: () => text,
    async waitForOutput(pattern, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = text.match(pattern);
        if (match) return match;
        if (Date.now() > deadline) {
          throw new Error(`no ${pattern} in the output within ${timeoutMs} ms:\n${text}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

/** Polls until `check` holds; throws with `what` (read at that moment) past the timeout. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      const text = typeof what === "string" ? what : what();
      throw new Error(`${text}: not reached within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether something accepts TCP connections on a loopback port. */
export async function listening(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** The processes `pid` started, directly or not, whose command line matches `pattern`. */
export function descendantsMatching(pid: number, pattern: RegExp): ProcessInfo[] {
  return descendants(pid).filter((p) => pattern.test(p.cmdline));
}

/** Of `processes`, those still running (same pid and start time). */
export function stillRunning(processes: ProcessInfo[]): ProcessInfo[] {
  return processes.filter(isRunning);
}

/** Waits for the child to exit, SIGKILLing it (and what it started) past the timeout. */
export async function exitOf(
  command: StartedCommand,
  timeoutMs = 60_000,
): Promise<Deno.CommandStatus | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  const status = await Promise.race([command.child.status, timeout]);
  clearTimeout(timer);
  if (status === undefined) {
    for (const p of descendants(command.child.pid)) {
      try {
        Deno.kill(p.pid, "SIGKILL");
      } catch { /* gone */ }
    }
    command.child.kill("SIGKILL");
    await command.child.status;
  }
  return status;
}

/** Stops whatever `processes` still runs (a failed test must not leave servers behind). */
export function killLeftovers(processes: ProcessInfo[]): void {
  for (const p of stillRunning(processes)) {
    try {
      Deno.kill(p.pid, "SIGKILL");
    } catch { /* gone */ }
  }
}
