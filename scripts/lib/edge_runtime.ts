/**
 * The `EdgeRuntime` global of the Supabase Edge Runtime, as the local runner provides it:
 * `EdgeRuntime.waitUntil(promise)` keeps work running after the response. The runner tracks every
 * pending promise, logs a rejection (its error name only: messages can carry secrets or personal
 * data), and on shutdown waits for what is still pending, up to a bound.
 */

/** What functions see as `globalThis.EdgeRuntime`. */
export interface EdgeRuntimeGlobal {
  waitUntil<T>(promise: Promise<T>): Promise<T>;
}

/** Promises handed to `waitUntil` that have not settled yet. */
export class BackgroundTasks {
  readonly #pending = new Set<Promise<void>>();
  readonly #log: (line: string) => void;
  readonly #onChange: (pending: number) => void;
  #rejected = 0;

  /**
   * `log` receives one JSON line per rejected task (default: console.error); `onChange` the
   * number of pending tasks each time it changes.
   */
  constructor(
    options: { log?: (line: string) => void; onChange?: (pending: number) => void } = {},
  ) {
    this.#log = options.log ?? ((line) => console.error(line));
    this.#onChange = options.onChange ?? (() => {});
  }

  /** Tracks `promise` until it settles; returns it unchanged. */
  waitUntil<T>(promise: Promise<T>): Promise<T> {
    const tracked: Promise<void> = Promise.resolve(promise).then(
      () => {},
      (error: unknown) => {
        this.#rejected++;
        const name = error instanceof Error ? error.name : typeof error;
        this.#log(JSON.stringify({ level: "error", msg: "waitUntil task rejected", error: name }));
      },
    ).finally(() => {
      this.#pending.delete(tracked);
      this.#onChange(this.#pending.size);
    });
    this.#pending.add(tracked);
    this.#onChange(this.#pending.size);
    return promise;
  }

  /** Tasks not settled yet. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Tasks that rejected so far. */
  get rejected(): number {
    return this.#rejected;
  }

  /**
   * Waits until every pending task (including tasks they start meanwhile) has settled, or
   * `timeoutMs` has passed; resolves with how many are still pending (0 when all settled).
   */
  async drain(timeoutMs: number): Promise<number> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      while (this.#pending.size > 0) {
        const outcome = await Promise.race([Promise.all(this.#pending), deadline]);
        if (outcome === "timeout") break;
      }
    } finally {
      clearTimeout(timer);
    }
    return this.#pending.size;
  }
}

/** Sets `globalThis.EdgeRuntime` to forward `waitUntil` to `tasks`; returns `tasks`. */
export function installEdgeRuntime(
  tasks: BackgroundTasks = new BackgroundTasks(),
): BackgroundTasks {
  const runtime: EdgeRuntimeGlobal = { waitUntil: (promise) => tasks.waitUntil(promise) };
  (globalThis as { EdgeRuntime?: EdgeRuntimeGlobal }).EdgeRuntime = runtime;
  return tasks;
}
