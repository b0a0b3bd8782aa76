/**
 * Work that continues after the response: `EdgeRuntime.waitUntil` on Supabase (the local runner
 * provides the same global), a detached promise elsewhere.
 */

interface EdgeRuntimeGlobal {
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * Keeps the instance alive until `promise` settles, without delaying the response. A rejection
 * is swallowed here: background work must log its own failures.
 */
export function waitUntil(promise: Promise<unknown>): void {
  const guarded = promise.catch(() => {});
  const runtime = (globalThis as { EdgeRuntime?: EdgeRuntimeGlobal }).EdgeRuntime;
  if (runtime && typeof runtime.waitUntil === "function") runtime.waitUntil(guarded);
}
