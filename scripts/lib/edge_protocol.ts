/**
 * Messages between the local runner and a function instance (a Web Worker running
 * `edge_worker.ts`). Request and response bodies travel as transferred streams, so bytes pass
 * through as they come, unbuffered.
 */

/** The runner → instance messages. */
export type ToInstance =
  /** Import the function's entry module (`export default { fetch }`). */
  | { type: "boot"; entry: string }
  /** A request for the function, as the server received it. */
  | {
    type: "request";
    id: number;
    method: string;
    url: string;
    headers: [string, string][];
    body: ReadableStream<Uint8Array> | null;
    remoteAddr: Deno.Addr;
  }
  /** The client went away before the response was delivered: the request's signal fires. */
  | { type: "abort"; id: number }
  /** The response has been sent in full: `info.completed` resolves. */
  | { type: "completed"; id: number };

/** The instance → runner messages. */
export type FromInstance =
  | { type: "booted" }
  | { type: "boot-failed"; error: string }
  | {
    type: "response";
    id: number;
    status: number;
    statusText: string;
    headers: [string, string][];
    body: ReadableStream<Uint8Array> | null;
  }
  /** The function threw instead of answering. */
  | { type: "failed"; id: number; error: string }
  /** `EdgeRuntime.waitUntil` work still pending. */
  | { type: "tasks"; pending: number };
