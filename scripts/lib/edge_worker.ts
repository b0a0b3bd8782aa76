/**
 * One function instance: the code of a Web Worker the runner starts per instance (an isolate of
 * its own, as on the Edge Runtime). It provides `EdgeRuntime.waitUntil`, imports the function's
 * entry module, and calls its `fetch` with each request the runner hands over — method, URL,
 * headers and body bytes as received, the connection's address in `info.remoteAddr`, an
 * `info.completed` that resolves once the response is sent, and a signal that fires when the
 * client goes away. Terminating the worker ends everything the instance was doing.
 */
import { BackgroundTasks, installEdgeRuntime } from "./edge_runtime.ts";
import type { FromInstance, ToInstance } from "./edge_protocol.ts";

type Handler = (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;

/** What this module uses of the worker's global scope. */
interface WorkerScope {
  onmessage: ((event: MessageEvent<ToInstance>) => void) | null;
  postMessage(message: FromInstance, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;
const post = (message: FromInstance, transfer: Transferable[] = []) =>
  scope.postMessage(message, transfer);

// Before the function's module loads: code may look the global up at import time.
installEdgeRuntime(
  new BackgroundTasks({ onChange: (pending) => post({ type: "tasks", pending }) }),
);

let handler: Handler | undefined;
/** Requests not answered in full yet: their signal and `info.completed`. */
const open = new Map<number, { abort: AbortController; completed: () => void }>();

async function boot(entry: string): Promise<void> {
  try {
    const mod = await import(entry);
    const fetch = mod.default?.fetch;
    if (typeof fetch !== "function") throw new Error(`${entry} must export default { fetch }`);
    handler = fetch.bind(mod.default);
    post({ type: "booted" });
  } catch (error) {
    post({
      type: "boot-failed",
      error: error instanceof Error ? error.stack ?? error.message : String(error),
    });
  }
}

async function serve(message: Extract<ToInstance, { type: "request" }>): Promise<void> {
  const abort = new AbortController();
  let completed!: () => void;
  const done = new Promise<void>((resolve) => (completed = resolve));
  open.set(message.id, { abort, completed });
  const request = new Request(message.url, {
    method: message.method,
    headers: message.headers,
    body: message.body,
    signal: abort.signal,
  });
  const info = { remoteAddr: message.remoteAddr, completed: done } as Deno.ServeHandlerInfo;
  try {
    const response = await handler!(request, info);
    if (!(response instanceof Response)) {
      throw new TypeError("the function did not return a Response");
    }
    const body = response.body;
    post({
      type: "response",
      id: message.id,
      status: response.status,
      statusText: response.statusText,
      headers: [...response.headers],
      body,
    }, body ? [body] : []);
  } catch (error) {
    // As the runtime does with an uncaught error: logged, and the request gets a 500.
    console.error(error);
    open.delete(message.id);
    completed();
    post({ type: "failed", id: message.id, error: error instanceof Error ? error.name : "Error" });
  }
}

scope.onmessage = (event) => {
  const message = event.data;
  switch (message.type) {
    case "boot":
      void boot(message.entry);
      break;
    case "request":
      void serve(message);
      break;
    case "abort":
      open.get(message.id)?.abort.abort();
      break;
    case "completed": {
      const request = open.get(message.id);
      open.delete(message.id);
      request?.completed();
      break;
    }
  }
};
