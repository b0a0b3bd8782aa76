/**
 * Stops what a command started, once, however it ends: `deno task dev`, `deno task test` and
 * `deno task bench` call {@link stopOnSignals}, and every local server or child process registers
 * its stop with {@link onCleanup} when it starts. On SIGINT or SIGTERM sent to the command's own
 * process (not only to its terminal's process group), or when the command ends, the callbacks
 * run once, last registered first; then every process the command started, directly or not, that
 * is still running gets SIGTERM, and SIGKILL if it lingers.
 */
import { descendants, isRunning, type ProcessInfo } from "./process_tree.ts";

/** A stop callback. */
export type Stop = () => void | Promise<void>;

/** Bound on one stop callback; the next one runs after it either way. */
const STOP_TIMEOUT_MS = 20_000;
/** How long leftover processes get between SIGTERM and SIGKILL. */
const SWEEP_GRACE_MS = 5_000;

const registry = new Map<number, Stop>();
let nextId = 0;
let running: Promise<void> | undefined;
let signalCode: number | undefined;
let listening = false;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function runOne(stop: Stop): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, STOP_TIMEOUT_MS);
  });
  try {
    await Promise.race([Promise.resolve().then(stop), timeout]);
  } catch (error) {
    console.error(`cleanup: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Registers `stop` to run at cleanup; returns a function that withdraws it (call it once the
 * thing is stopped). Registered after cleanup began, `stop` runs at once.
 */
export function onCleanup(stop: Stop): () => void {
  if (running) {
    void runOne(stop);
    return () => {};
  }
  const id = nextId++;
  registry.set(id, stop);
  return () => registry.delete(id);
}

/** Stops this process's remaining descendants: SIGTERM, then SIGKILL after a grace period. */
async function sweep(known: ProcessInfo[]): Promise<void> {
  const seen = new Set<string>();
  const targets = [...known, ...descendants(Deno.pid)].filter((p) => {
    const key = `${p.pid}:${p.startTime}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return p.pid !== Deno.pid;
  });
  const signal = (p: ProcessInfo, name: Deno.Signal) => {
    if (!isRunning(p)) return;
    try {
      Deno.kill(p.pid, name);
    } catch { /* gone meanwhile, or not ours to signal */ }
  };
  const alive = () => targets.filter(isRunning);
  if (alive().length === 0) return;
  for (const p of alive()) signal(p, "SIGTERM");
  const deadline = Date.now() + SWEEP_GRACE_MS;
  while (alive().length > 0 && Date.now() < deadline) await sleep(50);
  for (const p of alive()) signal(p, "SIGKILL");
}

/** SIGKILL, at once, to every process this one started that still runs (just before exiting). */
function killDescendants(): void {
  for (const p of descendants(Deno.pid)) {
    try {
      Deno.kill(p.pid, "SIGKILL");
    } catch { /* gone meanwhile */ }
  }
}

/**
 * Runs every registered callback once, last registered first, then stops any process this one
 * started that still runs. Later calls return the same promise.
 */
export function runCleanup(): Promise<void> {
  running ??= (async () => {
    // Taken first: a child stopped below must not leave its own children behind unnoticed.
    const started = descendants(Deno.pid);
    while (registry.size > 0) {
      const [id, stop] = [...registry].at(-1)!;
      registry.delete(id);
      await runOne(stop);
    }
    await sweep(started);
  })();
  return running;
}

/**
 * On SIGINT or SIGTERM to this process: runs the cleanup, then exits with 128 + the signal's
 * number (130, 143). Installed once however often it is called.
 */
export function stopOnSignals(): void {
  if (listening) return;
  listening = true;
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    Deno.addSignalListener(signal, () => {
      if (signalCode !== undefined) return;
      signalCode = code;
      runCleanup().finally(() => {
        // Anything the interrupted command started while the cleanup ran.
        killDescendants();
        Deno.exit(code);
      });
    });
  }
}

/** Runs the cleanup, then exits with `code` (or with the signal's code when one came first). */
export async function exitAfterCleanup(code: number): Promise<never> {
  await runCleanup();
  killDescendants();
  Deno.exit(signalCode ?? code);
}

/**
 * Registers a child process: at cleanup it gets `signal` (default SIGTERM), then SIGKILL if it
 * has not exited after `graceMs` (default 5000). Withdrawn by itself when the child exits.
 */
export function trackChild(
  child: Deno.ChildProcess,
  options: { signal?: Deno.Signal; graceMs?: number } = {},
): void {
  const forget = onCleanup(() => stopChild(child, options));
  child.status.then(forget, forget);
}

/** Sends `signal` (default SIGTERM) and waits for the exit; SIGKILL after `graceMs`. */
export async function stopChild(
  child: Deno.ChildProcess,
  options: { signal?: Deno.Signal; graceMs?: number } = {},
): Promise<void> {
  let exited = false;
  const status = child.status.finally(() => (exited = true));
  try {
    child.kill(options.signal ?? "SIGTERM");
  } catch { /* already gone */ }
  const timer = setTimeout(() => {
    if (exited) return;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, options.graceMs ?? 5_000);
  try {
    await status;
  } finally {
    clearTimeout(timer);
  }
}
