/**
 * One instance of one function, as the Edge Runtime runs it: a Web Worker (an isolate of its own,
 * with its own module state) serving requests concurrently until it is terminated.
 *
 * The instance's wall clock starts once it has booted: past half of `wallClockMs` it is retired
 * (takes no new request), at `wallClockMs` it is terminated — requests still unanswered get 546,
 * a response still streaming is cut, and its `EdgeRuntime.waitUntil` work stops where it is. A
 * retired instance whose responses and `waitUntil` work are done is terminated at once; with
 * `evictAfterResponse` every instance retires as soon as it has answered one request.
 */
import type { EdgeLimits } from "./edge_limits.ts";
import type { FromInstance, ToInstance } from "./edge_protocol.ts";

/** Why an instance was terminated. */
export type EndReason = "wall-clock" | "idle" | "crashed" | "boot-failed" | "shutdown";

/** A request handed to the instance and not answered in full yet. */
interface OpenRequest {
  /** The response's head has reached the runner. */
  answered: boolean;
  respond(response: Response): void;
}

const WORKER = new URL("./edge_worker.ts", import.meta.url);

/** The runner's own answers, in the platform's shape (`code`, `message`). */
function runtimeError(status: number, code: string, message: string): Response {
  return Response.json({ code, message }, { status });
}

/** The answer to a request its instance ended before answering. */
function cutResponse(reason: EndReason): Response {
  if (reason === "boot-failed") {
    return runtimeError(503, "BOOT_ERROR", "Function failed to start (please check logs)");
  }
  if (reason === "crashed") {
    return runtimeError(500, "WORKER_ERROR", "Function exited due to an error (please check logs)");
  }
  return runtimeError(
    546,
    "WORKER_LIMIT",
    "Function failed due to not having enough compute resources (please check logs)",
  );
}

/** A running instance of a function. */
export class EdgeInstance {
  /** The function's name. */
  readonly name: string;
  readonly #limits: EdgeLimits;
  readonly #worker: Worker;
  readonly #booted: Promise<void>;
  readonly #open = new Map<number, OpenRequest>();
  readonly #timers: ReturnType<typeof setTimeout>[] = [];
  readonly #log: (line: string) => void;
  readonly #onRetired: () => void;
  readonly #onEnded: (reason: EndReason) => void;
  /** Rejects when the instance ends; a streaming response body races its reads against it. */
  readonly #ended: Promise<never>;
  #end!: (reason: EndReason) => void;
  #bootFailed!: (error: Error) => void;
  #nextId = 0;
  #pendingTasks = 0;
  #retired = false;
  #endReason: EndReason | undefined;

  /** Starts the instance's worker and imports `entry` in it. */
  constructor(options: {
    name: string;
    entry: URL;
    limits: EdgeLimits;
    /** Called once when the instance stops taking requests. */
    onRetired?: () => void;
    /** Called once when the instance has ended. */
    onEnded?: (reason: EndReason) => void;
    log?: (line: string) => void;
  }) {
    this.name = options.name;
    this.#limits = options.limits;
    this.#log = options.log ?? ((line) => console.error(line));
    this.#onRetired = options.onRetired ?? (() => {});
    this.#onEnded = options.onEnded ?? (() => {});
    this.#ended = new Promise<never>((_, reject) => {
      this.#end = (reason) => reject(new Error(`function instance ended (${reason})`));
    });
    this.#ended.catch(() => {});
    this.#worker = new Worker(WORKER.href, { type: "module", name: `${options.name} instance` });
    let booted!: () => void;
    this.#booted = new Promise<void>((resolve, reject) => {
      booted = resolve;
      this.#bootFailed = reject;
    });
    this.#booted.catch(() => {});
    this.#worker.onmessage = (event: MessageEvent<FromInstance>) => {
      const message = event.data;
      switch (message.type) {
        case "booted":
          booted();
          this.#startClock();
          break;
        case "boot-failed":
          this.#log(message.error);
          this.terminate("boot-failed");
          break;
        case "response":
          this.#answer(message);
          break;
        case "failed":
          this.#respond(message.id, cutResponse("crashed"));
          this.#finish(message.id);
          break;
        case "tasks":
          this.#pendingTasks = message.pending;
          this.#dropWhenIdle();
          break;
      }
    };
    this.#worker.onerror = (event) => {
      // An uncaught error ends this instance only, never the runner.
      event.preventDefault();
      this.#log(JSON.stringify({
        level: "error",
        msg: "function instance crashed",
        fn: this.name,
        error: event.message,
      }));
      this.terminate("crashed");
    };
    this.#post({ type: "boot", entry: options.entry.href });
  }

  /** Whether new requests may go to this instance. */
  get accepting(): boolean {
    return !this.#retired && this.#endReason === undefined;
  }

  /** Why the instance ended; undefined while it runs. */
  get endReason(): EndReason | undefined {
    return this.#endReason;
  }

  /** No request in progress and no `waitUntil` work pending. */
  get idle(): boolean {
    return this.#open.size === 0 && this.#pendingTasks === 0;
  }

  /** Hands `request` to the function; resolves with its response (or the runtime's error). */
  async fetch(request: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
    const id = this.#nextId++;
    const response = new Promise<Response>((respond) => {
      this.#open.set(id, { answered: false, respond });
    });
    try {
      await this.#booted;
    } catch {
      this.#respond(id, cutResponse("boot-failed"));
      return await response;
    }
    if (this.#endReason !== undefined) {
      this.#respond(id, cutResponse(this.#endReason));
      return await response;
    }
    const body = request.body;
    this.#post({
      type: "request",
      id,
      method: request.method,
      url: request.url,
      headers: [...request.headers],
      body,
      remoteAddr: info.remoteAddr,
    }, body ? [body] : []);
    // The connection closed before the response was delivered: the function's signal fires.
    info.completed?.catch(() => this.#post({ type: "abort", id }));
    return await response;
  }

  /** Takes no new request from now on; ends once its work is done. */
  retire(): void {
    if (this.#retired) return;
    this.#retired = true;
    this.#onRetired();
    this.#dropWhenIdle();
  }

  /** Ends the instance now, whatever it is doing. */
  terminate(reason: EndReason): void {
    if (this.#endReason !== undefined) return;
    const cut = this.#open.size;
    const tasks = this.#pendingTasks;
    this.#endReason = reason;
    this.#retired = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#worker.terminate();
    this.#bootFailed(new Error(`function instance ended (${reason})`));
    if (reason === "wall-clock" && (cut > 0 || tasks > 0)) {
      this.#log(JSON.stringify({
        level: "warn",
        msg: "wall clock limit reached: function instance terminated",
        fn: this.name,
        wall_clock_ms: this.#limits.wallClockMs,
        requests_cut: cut,
        wait_until_cut: tasks,
      }));
    }
    for (const [id, open] of this.#open) {
      if (!open.answered) this.#respond(id, cutResponse(reason));
    }
    this.#open.clear();
    this.#end(reason);
    this.#onRetired();
    this.#onEnded(reason);
  }

  /**
   * The wall clock runs from the end of the boot: loading a function's modules into a fresh
   * worker takes this runner far longer than the platform, which starts from a prepared bundle.
   */
  #startClock(): void {
    const { wallClockMs } = this.#limits;
    if (wallClockMs <= 0) return;
    this.#timer(() => this.retire(), Math.floor(wallClockMs / 2));
    this.#timer(() => this.terminate("wall-clock"), wallClockMs);
  }

  #post(message: ToInstance, transfer: Transferable[] = []): void {
    if (this.#endReason !== undefined) return;
    try {
      this.#worker.postMessage(message, transfer);
    } catch { /* the worker is closing */ }
  }

  #timer(fn: () => void, ms: number): void {
    const timer = setTimeout(fn, ms);
    // The runner's own server keeps the process alive; an instance's clock never does.
    Deno.unrefTimer(timer as unknown as number);
    this.#timers.push(timer);
  }

  #respond(id: number, response: Response): void {
    const open = this.#open.get(id);
    if (!open || open.answered) return;
    open.answered = true;
    open.respond(response);
  }

  #answer(message: Extract<FromInstance, { type: "response" }>): void {
    const body = message.body ? this.#watch(message.id, message.body) : null;
    this.#respond(
      message.id,
      new Response(body, {
        status: message.status,
        statusText: message.statusText,
        headers: message.headers,
      }),
    );
    if (!body) this.#finish(message.id);
  }

  /** The response body as the client reads it: done when read in full, cut when the instance ends. */
  #watch(id: number, source: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    const reader = source.getReader();
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const next = await Promise.race([reader.read(), this.#ended]);
          if (next.done) {
            controller.close();
            this.#finish(id);
          } else {
            controller.enqueue(next.value);
          }
        } catch (error) {
          controller.error(error);
          this.#finish(id);
        }
      },
      cancel: async (reason) => {
        this.#finish(id);
        await reader.cancel(reason).catch(() => {});
      },
    });
  }

  /** A request is over (response sent in full, or failed). */
  #finish(id: number): void {
    if (!this.#open.delete(id)) return;
    this.#post({ type: "completed", id });
    if (this.#limits.evictAfterResponse) this.retire();
    this.#dropWhenIdle();
  }

  #dropWhenIdle(): void {
    if (this.#retired && this.idle) this.terminate("idle");
  }
}
