/**
 * The platform's limits the local runner applies to function instances, from the environment:
 *
 * - `EDGE_WALL_CLOCK_MS` (default 150000, the free plan's; 0 = none): an instance lives this long
 *   from the end of its boot. Past half of it the instance takes no new request (the platform retires its
 *   worker so that each request gets at least half the limit); at the limit it is terminated with
 *   whatever it is doing — requests still unanswered get 546, `EdgeRuntime.waitUntil` work stops
 *   mid-way.
 * - `EDGE_EVICT_AFTER_RESPONSE` (`1`/`true`; default off): an instance takes no new request once
 *   it has answered one, and is dropped as soon as its responses and `waitUntil` work are done;
 *   the next request starts a fresh instance (fresh module state, as after the platform drops an
 *   idle worker).
 */

/** Limits of each function instance. */
export interface EdgeLimits {
  /** Life of an instance from its start (ms); 0 = unlimited. */
  wallClockMs: number;
  /** Drop an instance once it has answered and its `waitUntil` work is done. */
  evictAfterResponse: boolean;
}

/** Supabase's free-plan wall clock (paid plans: 400 s). */
export const DEFAULT_WALL_CLOCK_MS = 150_000;

/** Reads {@link EdgeLimits} from `env`; throws on a value that is not a number of ms. */
export function edgeLimitsFromEnv(env: Record<string, string | undefined>): EdgeLimits {
  const raw = env.EDGE_WALL_CLOCK_MS?.trim();
  const wallClockMs = raw === undefined || raw === "" ? DEFAULT_WALL_CLOCK_MS : Number(raw);
  if (!Number.isInteger(wallClockMs) || wallClockMs < 0) {
    throw new Error(`EDGE_WALL_CLOCK_MS must be a whole number of milliseconds, got "${raw}"`);
  }
  const evict = env.EDGE_EVICT_AFTER_RESPONSE?.trim().toLowerCase();
  return { wallClockMs, evictAfterResponse: evict === "1" || evict === "true" };
}
