/**
 * The webhook-stats handler: `GET` answers the Idempotency-Key statistics (total / active /
 * expired / in-progress keys, per webhook type, replays served, table size, last cleanup run) and
 * the dead-letter counts (per function, pending, by replay result) for the service role only (its
 * JWT, or a secret API key). Any other caller gets 401 (no or invalid credential) or 403 (a valid
 * JWT of another role, or a publishable key).
 */
import { oneTrip } from "../_shared/core/db/one_trip.ts";
import { createPostgresPool, withinTimeout } from "../_shared/core/db/postgres_pool.ts";
import {
  type FetchHandler,
  handlerFromEnv,
  toErrorResponse,
} from "../_shared/core/error_response.ts";
import { jsonResponse, MethodNotAllowedError } from "../_shared/core/http.ts";
import type { AuthConfig } from "../_shared/core/auth_config.ts";
import { CallerAuth } from "../_shared/core/caller_auth.ts";
import { ForbiddenRoleError } from "../_shared/core/jwt.ts";
import { createLogger, type Logger } from "../_shared/core/log.ts";
import { parseStatsConfig, type StatsConfig } from "./config.ts";

export type { FetchHandler };

/** The function's name. */
export const FUNCTION_NAME = "webhook-stats";

/** Reads the statistics (one round trip); throws DatabaseUnavailableError on failure. */
export type StatsReader = () => Promise<Record<string, unknown>>;

/** Builds the handler from its dependencies. */
export function createStatsHandler(
  deps: {
    auth: AuthConfig;
    read: StatsReader;
    /** The dead-letter counts; left out of the answer without it. */
    readDeadLetters?: StatsReader;
    logger: Logger;
  },
): FetchHandler {
  const auth = new CallerAuth(deps.auth);
  return async (request) => {
    try {
      if ((await auth.authenticate(request)).kind !== "service") {
        throw new ForbiddenRoleError("webhook-stats is for the service role only");
      }
      if (request.method !== "GET") throw new MethodNotAllowedError(request.method, "GET");
      const idempotency = await deps.read();
      if (!deps.readDeadLetters) return jsonResponse(200, { idempotency });
      return jsonResponse(200, { idempotency, deadLetters: await deps.readDeadLetters() });
    } catch (error) {
      return toErrorResponse(error, deps.logger);
    }
  };
}

/**
 * Reads `public.webhook_idempotency_stats()` and `public.webhook_dead_letter_stats()` through
 * postgres.js.
 */
export function postgresStatsReader(
  config: StatsConfig,
): { read: StatsReader; readDeadLetters: StatsReader; close(): Promise<void> } {
  const sql = createPostgresPool({
    url: config.databaseUrl,
    poolMax: 1,
    timeoutMs: config.timeoutMs,
    applicationName: FUNCTION_NAME,
  });
  const call = oneTrip(sql, config.timeoutMs);
  return {
    read: async () => {
      const [row] = await withinTimeout(
        call<
          { stats: Record<string, unknown> }
        >`select public.webhook_idempotency_stats() as stats`,
        config.timeoutMs,
      );
      return row.stats;
    },
    readDeadLetters: async () => {
      const [row] = await withinTimeout(
        call<
          { stats: Record<string, unknown> }
        >`select public.webhook_dead_letter_stats() as stats`,
        config.timeoutMs,
      );
      return row.stats;
    },
    close: () => sql.end({ timeout: 1 }),
  };
}

/** The handler for `index.ts`: reads the environment once, on the first request. */
export function statsHandlerFromEnv(
  env: () => Record<string, string | undefined> = () => Deno.env.toObject(),
): FetchHandler {
  return handlerFromEnv(FUNCTION_NAME, (values) => {
    const config = parseStatsConfig(values);
    const reader = postgresStatsReader(config);
    return createStatsHandler({
      auth: config.auth,
      read: reader.read,
      readDeadLetters: reader.readDeadLetters,
      logger: createLogger(config.logLevel, { fn: FUNCTION_NAME }),
    });
  }, env);
}
