/**
 * The one way the functions reach Upstash Redis: `@upstash/redis` over REST, every request bounded
 * in time, no retries (a tier that fails is skipped, never waited on), raw strings, no telemetry.
 */
import { Redis } from "@upstash/redis";

/** A client for `UPSTASH_REDIS_REST_URL` / `_TOKEN` with a per-request timeout. */
export function createUpstashClient(url: string, token: string, timeoutMs: number): Redis {
  return new Redis({
    url,
    token,
    // A fresh signal per request. A shared AbortSignal would make the client answer an aborted
    // request with a fake `{ result: "Aborted" }` instead of throwing.
    signal: () => AbortSignal.timeout(timeoutMs),
    retry: { retries: 0 },
    automaticDeserialization: false,
    enableTelemetry: false,
  });
}
